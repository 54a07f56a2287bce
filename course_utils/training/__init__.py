"""Training with skorch: the course's classifier, its callbacks and its fast path.

- :mod:`.classifier`: :func:`make_classifier`, the one factory every notebook uses,
  and :class:`CourseClassifier`, skorch's ``NeuralNetClassifier`` with the fast path;
- :mod:`.callbacks`: the callbacks it installs (and two more for notebook 07);
- :mod:`.fastpath`: batches sliced from in-memory tensors, data resident on the GPU.
"""
from .callbacks import (CHECKPOINT_ENV, PROGRESS_ENV, EvalModeTrainScore, LinearWarmup, RecipeError,
                        RunCheckpoint, Throughput, course_callbacks, default_checkpoint_root,
                        images_per_second, progress_enabled)
from .classifier import (AMP_CHOICES, AMP_ENV, EVAL_BATCH_SIZE, AmpError, CourseClassifier,
                         accuracy, best_epoch, make_classifier, train_seconds)
from .fastpath import TensorBatches, resident, same_device, tensor_source
from .predict import (accuracy_from_scores, batched_outputs, batched_softmax, capture_outputs,
                      dead_unit_share, find_layer, module_accuracy, predict_proba)

__all__ = [
    "AMP_CHOICES", "AMP_ENV", "CHECKPOINT_ENV", "EVAL_BATCH_SIZE", "PROGRESS_ENV", "AmpError",
    "CourseClassifier", "EvalModeTrainScore", "LinearWarmup", "RecipeError", "RunCheckpoint",
    "TensorBatches", "Throughput", "accuracy", "accuracy_from_scores", "batched_outputs",
    "batched_softmax", "best_epoch", "capture_outputs", "course_callbacks", "dead_unit_share",
    "default_checkpoint_root", "find_layer", "images_per_second", "make_classifier",
    "module_accuracy", "predict_proba", "progress_enabled", "resident", "same_device",
    "tensor_source", "train_seconds",
]
