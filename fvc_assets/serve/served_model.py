"""Which model the service answers with: the registry's champion (or a pinned version), fetched as a bundle.

The version a client sees is the registry's version number with the bundle's digest, so two
answers with the same version came from the same files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fvc_assets.promote.bundle import MODELS_DIR, Manifest
from fvc_resources.model_registry import ModelRegistry


class NoModelInService(RuntimeError):
    """Nothing to serve: no champion yet, or the pinned version does not exist."""


@dataclass(frozen=True)
class ServedModel:
    name: str  # the model family, e.g. logistic_regression
    version: str  # "<registry version>-<bundle digest>"
    train_dir: Path  # the bundle's models/ folder (fold folders of the model and its members)
    thresholds: dict[str, float] = field(default_factory=dict)
    source: str = ""  # registered model and alias or pinned version
    details: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"model": self.name, "version": self.version, "source": self.source,
                "operating_points": self.thresholds, **self.details}


def served_model(registry: ModelRegistry, cache: Path, pinned: str | None = None) -> ServedModel:
    """The champion (or ``pinned``), its bundle downloaded under ``cache`` once."""
    if pinned:
        try:
            version = registry.version(pinned)
        except LookupError as exc:
            raise NoModelInService(str(exc)) from exc
        source = f"{registry.name} v{version.version} (pinned)"
    else:
        version = registry.champion()
        if version is None:
            raise NoModelInService(
                f"{registry.name} has no '{registry.alias}' in the registry at {registry.uri}: run `fvc run` (its "
                "promotion makes a champion when a candidate passes the gate), or promote a version by hand "
                "(`fvc model list`, `fvc model promote VERSION --reason TEXT`)")
        source = f"{registry.name}@{registry.alias}"
    bundle = registry.fetch(version, cache)
    manifest = Manifest.read(bundle)
    return ServedModel(manifest.model, f"{version.version}-{manifest.digest}", bundle / MODELS_DIR,
                       manifest.thresholds, source,
                       {"registry_version": version.version, "bundle_digest": manifest.digest,
                        "score": manifest.score, "score_kind": manifest.score_kind,
                        "shuffled_control": manifest.control, "code_version": manifest.code_version,
                        "trained_on_videos": manifest.videos, "data_fingerprint": manifest.data_fingerprint,
                        "bundled_at": manifest.created_at,
                        "scaled_by": manifest.scaled_by})
