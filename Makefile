# The AlexNet course. `make run` and `make test` set everything up on a fresh machine.
#   make setup   .venv + `pip install -e ".[dev]"` + check that Fashion-MNIST is there
#   make run     execute every notebook in order -> build/*.ipynb, build/*.html
#   make test    unit tests + nbval over notebooks/ in the smoke profile
#   make lab     JupyterLab on 127.0.0.1 with a token

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: help setup data run test test-unit test-notebooks lab outputs clean

help:
	@sed -n '2,6p' Makefile

setup: $(STAMP) data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

# Finds Fashion-MNIST ($$COURSE_DATA_DIR, data/, Debian's package, else downloads it)
# and says where it came from; fails with the three fixes when it cannot.
data: $(STAMP)
	$(BIN)/python -m course_utils.data

run: setup
	COURSE_PROGRESS=0 $(BIN)/python -m course_utils.runner

# Refresh the outputs committed in notebooks/ (a clean top-to-bottom run each).
outputs: setup
	COURSE_PROGRESS=0 $(BIN)/python -m course_utils.runner --inplace $(NB)

test: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -v

test-unit: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest tests -v

test-notebooks: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 \
	  $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -v

lab: setup
	$(BIN)/python -m course_utils.lab --port $(PORT)

clean:
	rm -rf build

# Grid search (course_utils.search), resumable: run the same command again to go on.
#   make grid GRID=grids/smoke.yaml [OUT=build/search/smoke] [ARGS="--jobs 2" | ARGS=--halving | ARGS=--report]
GRID ?= grids/smoke.yaml
.PHONY: grid
grid: setup
	$(BIN)/python -m course_utils.search $(GRID) $(if $(OUT),--out $(OUT)) $(ARGS)
