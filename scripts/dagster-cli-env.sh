#!/usr/bin/env bash
# Plain `dagster` commands from the project folder, on the project's instance and data root
# (run by `make venv`; ROOT defaults to the current folder):
#
# - ROOT/.env: Dagster reads it from the working folder (dagster dev, dagster job launch,
#   dagster asset materialize, dagster run list...): DAGSTER_HOME and FVC_DATA_DIR, each
#   unless the environment already sets it (so tests and other instances are left alone).
# - ROOT/.venv/bin/activate: the commands that load code from a Python module rather than
#   from pyproject.toml/workspace.yaml (dagster asset list / materialize) take it from
#   click's DAGSTER_CLI_* variables, exported on activation.
set -euo pipefail
root="$(realpath "${1:-.}")"
module="fvc_assets.definitions"

tmp="$(mktemp "$root/.env.XXXXXX")"
cat > "$tmp" <<ENV
# Written by scripts/dagster-cli-env.sh: the project's instance and data root for dagster commands
# run from this folder. A value already in the environment wins.
DAGSTER_HOME=\${DAGSTER_HOME:-$root/dagster_home}
FVC_DATA_DIR=\${FVC_DATA_DIR:-$root/data}
ENV
mv "$tmp" "$root/.env"

activate="$root/.venv/bin/activate"
marker="# fvc: dagster commands that load a module"
if [ -f "$activate" ] && ! grep -qF "$marker" "$activate"; then
  {
    echo "$marker"
    for command in ASSET_LIST ASSET_MATERIALIZE; do
      echo "export DAGSTER_CLI_${command}_MODULE_NAME=\${DAGSTER_CLI_${command}_MODULE_NAME:-$module}"
    done
  } >> "$activate"
fi
