# The AlexNet course. `make run` and `make test` set everything up on a fresh machine.
#   make setup   .venv + `pip install -e ".[dev]"` + check that Fashion-MNIST is there
#   make run     execute every notebook in order -> build/*.ipynb, build/*.html
#   make test    unit tests + nbval over notebooks/ in the smoke profile
#   make lab     JupyterLab on 127.0.0.1 with a token (make lab PORT=8890 for another port)
#   make test-browser  notebook 00 run in JupyterLab in headless Chromium (needs apt chromium)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: help setup data run test test-unit test-notebooks test-browser lab outputs clean

help:
	@sed -n '2,7p' Makefile

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
	COURSE_PROGRESS=0 $(BIN)/python -m course_utils.tools.runner

# Refresh the outputs committed in notebooks/ (a clean top-to-bottom run each).
outputs: setup
	COURSE_PROGRESS=0 $(BIN)/python -m course_utils.tools.runner --inplace $(NB)

test: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest tests notebooks --ignore=tests/browser --nbval-lax --nbval-current-env -v \
	    --durations=15 --junitxml=build/test-report.xml

test-unit: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/browser -v

test-notebooks: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 \
	  $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -v

lab: setup
	$(BIN)/python -m course_utils.tools.lab --port $(PORT)

# JupyterLab (make lab's command) driven by Playwright in Debian's Chromium: runs notebook 00,
# checks it, saves build/lab-00.png. Needs `apt-get install chromium`; never downloads a browser.
test-browser: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
	  $(BIN)/python -m pytest tests/browser -v -s

clean:
	rm -rf build

# Grid search (course_utils.search), resumable: run the same command again to go on.
#   make grid GRID=grids/smoke.yaml [OUT=build/search/smoke] [ARGS="--jobs 2" | ARGS=--halving | ARGS=--report]
GRID ?= grids/smoke.yaml
.PHONY: grid
grid: setup
	$(BIN)/python -m course_utils.search $(GRID) $(if $(OUT),--out $(OUT)) $(ARGS)

# GPU regression: every notebook in the full profile on a CUDA machine; the notebooks'
# profile-aware asserts are the check. Fails at once, with one line, where CUDA is missing.
.PHONY: test-gpu
TORCH_PY = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
test-gpu:
	@$(TORCH_PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
	  >/dev/null 2>&1 || { echo "make test-gpu: CUDA is not available here; run it on a machine with an NVIDIA GPU (it trains every notebook in the full profile)." >&2; exit 1; }
	@$(MAKE) --no-print-directory setup
	COURSE_PROFILE=full COURSE_PROGRESS=0 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=7200 notebooks -v

# Training images/s: per-image PIL pipeline (a) vs the course's tensor pipeline (b), interleaved
# in one run; prints a table, writes build/bench.json. make bench ARGS="--models small full"
.PHONY: bench
bench: setup
	$(BIN)/python -m course_utils.tools.bench $(ARGS)
