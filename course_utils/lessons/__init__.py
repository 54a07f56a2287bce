"""One helper module per notebook: only what that notebook shows.

``chNN_topic.py`` belongs to ``notebooks/NN_*.ipynb``. A lesson module may use the
building blocks (config, data, layers, models, training, plots), the run layer
(:mod:`course_utils.experiment`) and the budget table (:mod:`course_utils.budgets`);
no building block imports a lesson.
"""
