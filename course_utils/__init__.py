"""Shared helpers for the AlexNet course.

One home per concept:

- :mod:`course_utils.config`   profiles (``COURSE_PROFILE``), seeding, device choice
- :mod:`course_utils.data`     Fashion-MNIST, offline first, as uint8 tensors; splits
- :mod:`course_utils.layers`   Local Response Normalization, the input adapter
- :mod:`course_utils.models`   AlexNet (227x227) and AlexNetSmall (67x67)
- :mod:`course_utils.training` the skorch classifier factory and its callbacks
- :mod:`course_utils.plots`    history, confusion matrix, galleries
- :mod:`course_utils.tools.runner`   executes the notebooks headless (``make run``)
"""
from .config import (PROFILES, CourseError, DeviceUnavailableError, Profile, ProfileError,
                     describe_environment, get_device, get_profile, seed_everything)

__version__ = "0.1.0"

__all__ = [
    "PROFILES", "CourseError", "DeviceUnavailableError", "Profile", "ProfileError",
    "describe_environment", "get_device", "get_profile", "seed_everything", "__version__",
]
