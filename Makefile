# The AlexNet course. `make run` and `make test` set everything up on a fresh machine.
#   make setup   .venv + `pip install -e ".[dev]"` + check that Fashion-MNIST is there
#   make run     execute every notebook in order -> build/*.ipynb, build/*.html
#   make test    ruff, then unit tests + nbval over notebooks/ in the smoke profile
#   make lab     JupyterLab on 127.0.0.1 with a token (make lab PORT=8890 for another port)
#   make test-browser  notebook 00 run in JupyterLab in headless Chromium (needs apt chromium)
#   make budgets [PROFILE=full]  what each notebook trains, and an estimated time
#   make test-gpu-dry  the full profile rehearsed on the CPU (every full branch, shrunk)
#   make test-gpu [NB=05]  the full profile on a CUDA GPU, one notebook per pytest call
#   make gpu-kit       wheels + data for a bare GPU machine (.gpu-kit/, < 64 MiB)
#   make test-seeds    smoke asserts under seeds 0-9, bf16 and float32
#   make test-faults   the slow fault probes make test skips: signals, kills, full disks, workers
#   make grid-dashboard OUT=DIR  optuna-dashboard on 127.0.0.1 for a search's study

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: help setup data run test test-unit test-notebooks test-browser lab outputs clean budgets

help:
	@sed -n '2,13p' Makefile

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
	$(BIN)/ruff check .
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg \
	  $(BIN)/python -m pytest tests notebooks --ignore=tests/browser -m "not faults" --nbval-lax --nbval-current-env -v \
	    --durations=15 --junitxml=build/test-report.xml

test-unit: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/browser -m "not faults" -v

# The slow fault probes (@pytest.mark.faults): signals to a real JupyterLab, killed runs and
# workers, full disks, concurrent workers on one study, PostgreSQL where a server is at hand.
.PHONY: test-faults
test-faults: setup
	COURSE_PROFILE=smoke COURSE_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/browser -m faults -v --durations=0

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
	rm -rf build .gpu-kit

PROFILE ?=
budgets: setup
	$(BIN)/python -m course_utils.budgets $(if $(PROFILE),--profile $(PROFILE))

# Grid search (course_utils.search), resumable: run the same command again to go on.
#   make grid GRID=grids/smoke.yaml [OUT=build/search/smoke] [ARGS="--jobs 2" | ARGS=--halving | ARGS=--report]
GRID ?= grids/smoke.yaml
.PHONY: grid
grid: setup
	$(BIN)/python -m course_utils.search $(GRID) $(if $(OUT),--out $(OUT)) $(ARGS)

# optuna-dashboard on 127.0.0.1 for a search's study: make grid-dashboard OUT=DIR [DASHBOARD_PORT=8080]
DASHBOARD_PORT ?= 8080
.PHONY: grid-dashboard
grid-dashboard: setup
	@test -n "$(OUT)" || { echo "error: give the search's folder: make grid-dashboard OUT=DIR"; exit 2; }
	@test -f "$(OUT)/study.db" || { echo "error: no study.db in $(OUT): run the search first"; exit 2; }
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port $(DASHBOARD_PORT) "sqlite:///$(abspath $(OUT))/study.db"

# GPU regression: every notebook in the full profile on a CUDA machine, one pytest call per
# notebook (make test-gpu NB=05 for one). Fails at once, with one line, where CUDA is missing.
# On a bare GPU machine without a venv, `source .gpu-kit/install.sh` first (make gpu-kit).
.PHONY: test-gpu test-gpu-dry gpu-kit test-seeds
TORCH_PY = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
NOTEBOOKS = $(if $(NB),$(wildcard notebooks/$(NB)_*.ipynb),$(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb)))
NBVAL = -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env -q
test-gpu:
	@$(TORCH_PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
	  >/dev/null 2>&1 || { echo "make test-gpu: CUDA is not available here; run it on a machine with an NVIDIA GPU (it trains every notebook in the full profile)." >&2; exit 1; }
	@test -n "$(NOTEBOOKS)" || { echo "make test-gpu: no notebook matches NB=$(NB)" >&2; exit 2; }
	@mkdir -p build/results
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  COURSE_PROFILE=full COURSE_PROGRESS=0 MPLBACKEND=Agg \
	    $(TORCH_PY) $(NBVAL) --nbval-cell-timeout=3600 $$nb || exit 1; \
	done

# The GPU regression rehearsed on the CPU: every notebook's full-profile branches, with the
# data and epochs shrunk by COURSE_SCALE (see course_utils/budgets.py) and the smoke
# profile's pipeline checks in place of the accuracy bounds. CI runs it.
DRY_SCALE ?= 0.001
test-gpu-dry: setup
	COURSE_PROFILE=full COURSE_SCALE=$(DRY_SCALE) COURSE_DEVICE=cpu COURSE_PROGRESS=0 MPLBACKEND=Agg \
	  $(BIN)/python $(NBVAL) --durations=0 $(NOTEBOOKS)

# One folder (.gpu-kit/, under 64 MiB) with the wheels and data a bare GPU machine lacks.
gpu-kit: setup
	$(BIN)/python -m course_utils.tools.gpukit

# Smoke asserts under seeds 0-9, bf16 and float32 (COURSE_AMP=off): make test-seeds [NB=05] [SEEDS="0 1"]
SEEDS ?= 0 1 2 3 4 5 6 7 8 9
test-seeds: setup
	@for amp in auto off; do for seed in $(SEEDS); do \
	  echo "== seed $$seed, amp $$amp"; \
	  COURSE_PROFILE=smoke COURSE_SEED=$$seed COURSE_AMP=$$amp COURSE_PROGRESS=0 MPLBACKEND=Agg \
	    $(BIN)/python $(NBVAL) $(NOTEBOOKS) || exit 1; \
	done; done

# Training images/s: per-image PIL pipeline (a) vs the course's tensor pipeline (b), interleaved
# in one run; prints a table, writes build/bench.json. make bench ARGS="--models small full"
.PHONY: bench
bench: setup
	$(BIN)/python -m course_utils.tools.bench $(ARGS)
