"""The instructors' grid search on an Optuna study: resumable, parallel, many machines,
successive halving.

    python -m course_utils.search grids/smoke.yaml --out build/search/smoke
    python -m course_utils.search grids/reference.yaml --out runs/ref --jobs 2
    python -m course_utils.search grids/reference.yaml --out runs/ref --dask tcp://host:8786
    python -m course_utils.search grids/reference.yaml --out runs/ref \\
        --storage postgresql://USER:PASSWORD@HOST/DB        # the same on every machine
    python -m course_utils.search grids/reference.yaml --out runs/ref-halving --halving
    python -m course_utils.search --report --out runs/ref
    make grid-dashboard OUT=runs/ref                        # optuna-dashboard on 127.0.0.1

- :mod:`.spec`: grid files (YAML) checked into a :class:`GridSpec`;
- :mod:`.folder`: the output folder (what it may hold, the results schema, safe writes);
- :mod:`.study`: the Optuna study (DIR/study.db or --storage URL): the queue of grid points;
- :mod:`.execute`: one configuration through the run layer, joblib, Dask, halving;
- :mod:`.report`: summary.csv, best.json, heatmaps;
- :mod:`.cli`: the command line.

Nothing here imports Dask unless a Dask address is given.
"""
from .errors import (DaskError, EmptyGridError, GridError, GridFileError, GridMismatchError,
                     GridTooLargeError, OutputFolderError, ParameterTypeError, ResultsError,
                     SearchError, UnknownParameterError)
from .execute import (DASK_IDLE_TIMEOUT, DASK_TIMEOUT, build_net, connect_dask, grid_splits,
                      halving_schedule, run_config, run_search, train_config)
from .folder import (CHECKPOINT_DIR, DB_FILE, GRID_FILE, LOCK_FILE, REPORT_FILES, RESULT_KEYS,
                     RESULTS_FILE, SearchFolder, read_results)
from .report import (best_result, heatmap_axes, load_summary, plot_heatmaps, records_frame,
                     summarize, write_report)
from .spec import GRID_DIR, MAX_CONFIGS, GridSpec, config_id, grid_path, load_grid, run_key
from .study import HEARTBEAT, StudyStore, storage_url
from .cli import main

__all__ = [
    "CHECKPOINT_DIR", "DASK_IDLE_TIMEOUT", "DASK_TIMEOUT", "DB_FILE", "GRID_DIR", "GRID_FILE",
    "HEARTBEAT", "LOCK_FILE", "MAX_CONFIGS", "REPORT_FILES", "RESULTS_FILE", "RESULT_KEYS",
    "DaskError", "EmptyGridError", "GridError", "GridFileError", "GridMismatchError",
    "GridSpec", "GridTooLargeError", "OutputFolderError", "ParameterTypeError",
    "ResultsError", "SearchError", "SearchFolder", "StudyStore", "UnknownParameterError",
    "best_result", "build_net", "config_id", "connect_dask", "grid_path", "grid_splits",
    "halving_schedule", "heatmap_axes", "load_grid", "load_summary", "main", "plot_heatmaps",
    "read_results", "records_frame", "run_config", "run_search", "run_key", "storage_url",
    "summarize", "train_config", "write_report",
]
