"""DuckDB clients other than the one installed here, for the tests that open ``fvc.duckdb`` with them.

Installed once with pip (``--target``, no dependencies) into ``.venv/test-tools/``: the Python
package of the oldest DuckDB the README and docs/pipeline.md promise, and the DuckDB command line of the 1.x line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

OLDEST_PYTHON_CLIENT = "duckdb==1.0.0"
CLI = "duckdb-cli==1.5.6"
TOOLS = REPO_ROOT / ".venv" / "test-tools"


def installed(requirement: str) -> Path:
    target = TOOLS / requirement.replace("==", "-")
    if not (target / ".complete").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        requirement], check=True)
        (target / ".complete").touch()
    return target


def oldest_python_client_path() -> Path:
    """A folder to put first on PYTHONPATH: ``import duckdb`` is then DuckDB 1.0."""
    return installed(OLDEST_PYTHON_CLIENT)


def cli_command() -> tuple[Path, dict[str, str]]:
    """The ``duckdb`` command and the environment it runs in (its launcher imports ``duckdb_cli``,
    installed beside it with ``--target``)."""
    import os

    target = installed(CLI)
    return target / "bin" / "duckdb", {**os.environ, "PYTHONPATH": str(target)}
