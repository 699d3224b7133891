#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use (ffmpeg; slurm-wlm and
# munge for the SLURM executor's tests; PostgreSQL for the cluster's instance storage;
# chromium and chromium-driver for the browser test of the UI), only when missing.
# Idempotent; needs root (or sudo) the first time on a fresh machine.
set -euo pipefail

# Daemons live in /usr/sbin, which a non-root PATH may lack.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have ffmpeg || missing+=(ffmpeg)
# A single-node SLURM cluster for the SLURM executor's tests (scripts/slurm-local.sh).
{ have slurmctld && have slurmd && have sbatch; } || missing+=(slurm-wlm)
have munged || missing+=(munge)
# The cluster's Dagster instance and MLflow store (scripts/postgres-local.sh).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# Headless browser for tests/test_browser.py (Selenium drives it through chromedriver).
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: need root to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
