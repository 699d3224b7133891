# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv
# themselves (pinned dependencies from pyproject.toml); `make test` also installs
# the system packages the tests use (ffmpeg) when they are missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export FVC_DATA_DIR ?= $(CURDIR)/data

.PHONY: venv system-deps demo test bench ui validate clean-data

# Byte-compiling: pip would compile the dependencies' ~19,000 modules one after another; compileall -j 0
# does it on every core (the venv in 153 s instead of 174-185 s on 2 cores). The .pyc files must exist
# before any run: where PYTHONDONTWRITEBYTECODE is set (as on the development machine), Python never writes
# what it compiles, so every process would compile again each module it imports. The project's own
# packages are compiled for the same reason. A file that does not compile (some packages ship Python 2
# examples) is skipped, as pip skips it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib fvc_assets fvc_core fvc_resources >/dev/null || true
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)
	@bash scripts/dagster-cli-env.sh $(CURDIR)

system-deps:
	bash scripts/install-system-deps.sh

# Main job on the embedded default: demo corpus -> inbox -> every asset, every partition.
demo: venv
	$(BIN)/fvc demo-corpus --out $(FVC_DATA_DIR)/inbox
	$(BIN)/fvc run

test: venv system-deps
	$(BIN)/python -m pytest

bench: venv system-deps
	$(BIN)/python -m benchmarks

ui: venv
	$(BIN)/fvc ui

validate: venv
	$(BIN)/dagster definitions validate -w workspace.yaml

clean-data:
	rm -rf $(FVC_DATA_DIR)
	find $(DAGSTER_HOME) -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
