"""The model registry: bundles as versions of one MLflow registered model, the champion as an alias.

Works the same on the embedded sqlite store and on a tracking server. Each version's files
are the artifacts of an MLflow run in the experiment ``fvc/deployed_model``; the version
carries the bundle's digest and scores as tags. Promotions and rollbacks move the alias
and leave a tag on the version saying who moved it, when and why, so the history is in
the registry itself. (No dagster import: ``fvc serve`` and ``fvc model`` use it.)
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fvc_resources.store_lock import store_lock

REGISTERED_MODEL = "fvc-detector"
CHAMPION = "champion"
BUNDLE_EXPERIMENT = "fvc/deployed_model"
DIGEST_TAG = "bundle_digest"
PROMOTED_TAG = "promotion"  # what happened to this version: "champion since ...", "refused: ...", ...
PREVIOUS_TAG = "previous_champion"  # the version it replaced, for rollback


@dataclass(frozen=True)
class Version:
    version: str
    digest: str
    tags: dict[str, str]
    created: str
    source: str
    is_champion: bool


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ModelRegistry:
    def __init__(self, tracking_uri: str, artifact_root: str | None = None, name: str = REGISTERED_MODEL,
                 alias: str = CHAMPION):
        self.uri, self.artifact_root, self.name, self.alias = tracking_uri, artifact_root, name, alias
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name, description="The FVC platform's detector bundles; the alias "
                                       f"'{self.alias}' is the one `fvc serve` answers with.")

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(BUNDLE_EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        location = f"{self.artifact_root}/deployed_model" if self.artifact_root else None
        return self.client.create_experiment(BUNDLE_EXPERIMENT, artifact_location=location)

    def _champion_number(self) -> str | None:
        """The version the alias points at (None: no alias, or no registered model yet)."""
        from mlflow.exceptions import MlflowException

        try:
            aliases = self.client.get_registered_model(self.name).aliases or {}
        except MlflowException:
            return None
        return str(aliases[self.alias]) if self.alias in aliases else None

    def _as_version(self, found, champion: str | None) -> Version:
        created = datetime.fromtimestamp(found.creation_timestamp / 1000, timezone.utc).isoformat(timespec="seconds")
        return Version(str(found.version), found.tags.get(DIGEST_TAG, ""), dict(found.tags), created, found.source,
                       str(found.version) == champion)

    def versions(self) -> list[Version]:
        """Every version, newest first."""
        champion = self._champion_number()
        found = self.client.search_model_versions(f"name='{self.name}'")  # none when the model is not there yet
        return sorted((self._as_version(v, champion) for v in found), key=lambda v: -int(v.version))

    def version(self, version: str, champion: str | None = None) -> Version:
        """One version, looked up by its number (``champion``: the alias's version, when already known)."""
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            raise LookupError(f"{self.name} has no version {version}") from exc
        return self._as_version(found, champion if champion is not None else self._champion_number())

    def champion(self) -> Version | None:
        """The version the alias points at: what the service polls, so one lookup, not a listing."""
        number = self._champion_number()
        return self.version(number, champion=number) if number else None

    def register(self, bundle: Path, digest: str, tags: dict[str, str], description: str) -> Version:
        """The bundle as a new version, or the version that already holds this digest."""
        with store_lock(self.uri):
            self._ensure_model()
            for existing in self.versions():
                if existing.digest == digest:
                    return existing
            experiment_id = self._experiment_id()
            run = self.client.create_run(experiment_id, run_name=f"bundle-{digest}",
                                         tags={DIGEST_TAG: digest, "mlflow.source.name": "fvc deployed_model"})
            try:
                self.client.log_artifacts(run.info.run_id, str(bundle), artifact_path="bundle")
                self.client.set_terminated(run.info.run_id, "FINISHED")
            except Exception:
                self.client.set_terminated(run.info.run_id, "FAILED")
                raise
            created = self.client.create_model_version(
                self.name, source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id,
                tags={DIGEST_TAG: digest, PROMOTED_TAG: "candidate", **tags}, description=description)
        return self.version(str(created.version))

    def note(self, version: str, text: str) -> None:
        with store_lock(self.uri):
            self.client.set_model_version_tag(self.name, str(version), PROMOTED_TAG, text)

    def set_champion(self, version: str, by: str, reason: str) -> Version | None:
        """Move the alias to ``version``; returns the version it left (None if there was no champion)."""
        target = self.version(version)
        previous = self.champion()
        with store_lock(self.uri):
            if previous is not None and previous.version != target.version:
                self.client.set_model_version_tag(self.name, target.version, PREVIOUS_TAG, previous.version)
                self.client.set_model_version_tag(self.name, previous.version, PROMOTED_TAG,
                                                  f"champion until {_now()} (replaced by {target.version})")
            self.client.set_registered_model_alias(self.name, self.alias, target.version)
            self.client.set_model_version_tag(self.name, target.version, PROMOTED_TAG,
                                              f"champion since {_now()} ({by}: {reason})")
        return previous

    def rollback(self, to: str | None = None) -> tuple[Version, Version]:
        """The champion back to ``to``, or to the version it replaced; returns (left, now champion)."""
        current = self.champion()
        if current is None:
            raise LookupError(f"{self.name} has no {self.alias}: nothing to roll back")
        target = to or current.tags.get(PREVIOUS_TAG)
        if not target:
            raise LookupError(f"version {current.version} replaced no earlier {self.alias}: name a version to "
                              "roll back to")
        self.set_champion(target, "rollback", f"rolled back from version {current.version}")
        return current, self.version(target)

    def fetch(self, version: Version, cache: Path) -> Path:
        """The version's bundle folder under ``cache`` (downloaded once, atomically)."""
        import mlflow.artifacts

        target = cache / f"v{version.version}-{version.digest}"
        if target.exists():
            return target
        staging = cache / f".download-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(staging),
                                                           tracking_uri=self.uri))
            try:
                got.rename(target)
            except OSError:
                if not target.exists():  # else another process fetched the same version first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target
