# The two set-up commands of the README: `make repro` (the CPU demo end to end) and `make test`.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
# Stage commands call `python`: run them with the project's environment.
export PATH := $(BIN):$(PATH)

.PHONY: install repro test clean

install: $(STAMP)

# Re-runs only when requirements.txt, pyproject.toml or the npm lock file changed since the last install.
# npm: the vega libraries `dvc plots show` loads from node_modules/ (.dvc/plots/index.html), so plots draw offline.
$(STAMP): requirements.txt pyproject.toml package.json package-lock.json
	command -v npm >/dev/null || { echo "make install: npm is missing (the offline plots need it): install Node.js and npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

repro: install
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) node_modules
