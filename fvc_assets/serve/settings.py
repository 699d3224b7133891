"""The service's configuration: a YAML file (``fvc serve --config``), each key overridable on the command line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_file: Path = Field(description="File holding the bearer token every request but health must send")
    host: str = Field("127.0.0.1", description="Address to bind (loopback by default; put TLS in front for more)")
    port: int = Field(8000, ge=0, le=65535, description="Port to bind (0: any free port, printed at start)")
    tracking_uri: str | None = Field(None, description="MLflow store holding the registry (default: the embedded "
                                                       "store of DAGSTER_HOME, or MLFLOW_TRACKING_URI)")
    registered_model: str = Field("fvc-detector", description="Registered model whose versions are served")
    alias: str = Field("champion", description="Alias followed (the service switches when it moves)")
    model_version: str | None = Field(None, description="Serve this registry version instead of the alias")
    operating_point: str = Field("fpr_5", description="Default operating point of each decision")
    workers: int = Field(2, ge=1, description="Scoring processes (each holds the model and scores one video)")
    threads_per_worker: int = Field(1, ge=1, description="Torch / OpenCV / BLAS threads in each scoring process")
    queue_size: int = Field(4, ge=0, description="Requests waiting beyond the busy workers; more get 503")
    max_upload_mb: float = Field(512, gt=0, description="Largest upload (MiB), per video")
    max_duration_s: float = Field(600, gt=0, description="Longest video (seconds)")
    max_batch: int = Field(16, ge=1, description="Most videos in one batch request")
    request_timeout_s: float = Field(120, gt=0, description="Time limit of a request (upload, wait and scoring)")
    reload_interval_s: float = Field(10, gt=0, description="How often the service looks for a new model version")
    paths_root: Path | None = Field(None, description="Folder whose videos /v1/score/paths may read (off when unset)")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def load(cls, config: Path | None, overrides: dict) -> "ServeSettings":
        values = {}
        if config is not None:
            values = yaml.safe_load(config.read_text()) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{config}: expected a mapping of settings")
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def read_token(path: Path) -> str:
    """The token, stripped; a missing, empty or group/world-readable file is refused with the reason."""
    if not path.is_file():
        raise ValueError(f"token file {path}: not found")
    token = path.read_text().strip()
    if len(token) < 16:
        raise ValueError(f"token file {path}: the token must be at least 16 characters")
    if path.stat().st_mode & 0o077:
        raise ValueError(f"token file {path}: readable by others (mode {path.stat().st_mode & 0o777:o}); "
                         f"chmod 600 it")
    return token
