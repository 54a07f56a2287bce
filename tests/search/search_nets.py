"""Networks for the grid-search tests, allowed with ``--allow-module search_nets``."""
from __future__ import annotations

from course_utils.models import AlexNetSmall

NOT_A_NET = 42


class ExplodingNet(AlexNetSmall):
    """The small AlexNet, except that ``explode=True`` makes its forward pass raise
    (as CUDA out of memory would): a configuration that fails only while training."""

    def __init__(self, explode: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.explode = explode

    def forward(self, x):
        if self.explode:
            raise RuntimeError("boom: this configuration fails while training")
        return super().forward(x)
