"""Where the instance and the data live: ``DAGSTER_HOME`` and ``FVC_DATA_DIR``, with project defaults."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DAGSTER_YAML = PROJECT_ROOT / "dagster_home" / "dagster.yaml"


def configure_environment() -> tuple[Path, Path]:
    """Set absolute ``DAGSTER_HOME`` and ``FVC_DATA_DIR`` (defaults ``./dagster_home``, ``./data``).

    A ``DAGSTER_HOME`` without a ``dagster.yaml`` gets a copy of the project's
    embedded default, so a fresh folder is a working instance.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or "dagster_home").absolute()
    data = Path(os.environ.get("FVC_DATA_DIR") or "data").absolute()
    home.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and DEFAULT_DAGSTER_YAML.exists():
        shutil.copyfile(DEFAULT_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["FVC_DATA_DIR"] = str(data)
    return home, data
