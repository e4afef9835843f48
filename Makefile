# Two entry points: `make demo` (set up, then run the default job) and `make test`.
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes, the
# pretrained backbone only when its recipe does, and a finished demo is not recomputed (delete
# runs/ to start again).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench gpu-check clean

# set-up ends with the cpu presets' pretrained backbone, their stand-in for downloading ImageNet
# weights: built once per machine under $HARNESS_CACHE (about 50 s on a 2-core Xeon), then read from
# there. The tests do not need it (they build their own in a throw-away cache).
setup: $(STAMP)
	$(PY) -m harness pretrain

# pyproject.toml asks for torch and torchvision as ranges (a GPU user keeps the build that
# matches their CUDA); set-up here pins the builds of this machine's local wheels, per
# architecture. `make setup TORCH_PINS=` installs whatever the ranges and the index give.
TORCH_PINS ?= $(if $(filter aarch64,$(shell uname -m)),torch==2.9.1 torchvision==0.24.1,torch==2.14.1 torchvision==0.29.1)

$(STAMP): pyproject.toml $(wildcard */__init__.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" $(TORCH_PINS)
	touch $(STAMP)

demo: setup
	$(PY) -m harness compare --strategies delr,ssod,random --dataset digits

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n auto --dist loadscope tests

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only
	$(PY) benchmarks/speed_report.py
	$(PY) benchmarks/profile_step.py
	$(PY) benchmarks/frcnn_learning_curve.py --minutes 1,2,3,5
	$(PY) benchmarks/frcnn_learning_curve.py --fig1 --fraction 0.05 --minutes 2
	$(PY) benchmarks/backends_side_by_side.py --minutes 3

# the GPU check (benchmarks/gpu_check.py): harness vs plain torchvision img/s, a two-cycle DeLR
# campaign, the paper's campaigns' hours estimated; writes gpu_check.json
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py --json gpu_check.json

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
