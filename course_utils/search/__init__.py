"""The instructors' grid search: resumable, parallel, Dask for many GPUs, successive halving.

    python -m course_utils.search grids/smoke.yaml --out build/search/smoke
    python -m course_utils.search grids/reference.yaml --out runs/ref --jobs 2
    python -m course_utils.search grids/reference.yaml --out runs/ref --dask tcp://host:8786
    python -m course_utils.search grids/reference.yaml --out runs/ref-halving --halving
    python -m course_utils.search --report --out runs/ref

- :mod:`.spec`: grid files (YAML) checked into a :class:`GridSpec`;
- :mod:`.store`: the output folder (results.jsonl and its schema, grid.json, the lock);
- :mod:`.execute`: one configuration through the run layer, joblib, Dask, halving;
- :mod:`.report`: summary.csv, best.json, heatmaps;
- :mod:`.cli`: the command line.

Nothing here imports Dask unless a Dask address is given.
"""
from .errors import (DaskError, EmptyGridError, GridError, GridFileError, GridMismatchError,
                     GridTooLargeError, OutputFolderError, ParameterTypeError, ResultsError,
                     SearchBusyError, SearchError, TornLineWarning, UnknownParameterError)
from .execute import (DASK_TIMEOUT, build_net, connect_dask, grid_splits, halving_schedule,
                      run_config, run_search, train_config)
from .report import (best_result, heatmap_axes, load_summary, plot_heatmaps, records_frame,
                     summarize, write_report)
from .spec import GRID_DIR, MAX_CONFIGS, GridSpec, config_id, grid_path, load_grid, run_key
from .store import (CHECKPOINT_DIR, GRID_FILE, REPORT_FILES, RESULT_KEYS, RESULTS_FILE,
                    SearchFolder, append_result, read_results)
from .cli import main

__all__ = [
    "CHECKPOINT_DIR", "DASK_TIMEOUT", "GRID_DIR", "GRID_FILE", "MAX_CONFIGS", "REPORT_FILES",
    "RESULTS_FILE", "RESULT_KEYS", "DaskError", "EmptyGridError", "GridError", "GridFileError",
    "GridMismatchError", "GridSpec", "GridTooLargeError", "OutputFolderError",
    "ParameterTypeError", "ResultsError", "SearchBusyError", "SearchError", "SearchFolder",
    "TornLineWarning", "UnknownParameterError", "append_result", "best_result", "build_net",
    "config_id", "connect_dask", "grid_path", "grid_splits", "halving_schedule",
    "heatmap_axes", "load_grid", "load_summary", "main", "plot_heatmaps", "read_results",
    "records_frame", "run_config", "run_key", "run_search", "summarize", "train_config",
    "write_report",
]
