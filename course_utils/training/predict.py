"""Forward passes of a plain module over many images, in batches: the one loop."""
from __future__ import annotations

import torch

__all__ = ["batched_outputs", "batched_softmax", "predict_proba"]


@torch.no_grad()
def batched_outputs(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256,
                    fn=None) -> torch.Tensor:
    """``fn(module(batch))`` for every batch of ``X`` (on the module's device), joined on
    the CPU. The module stays in whatever mode (train or eval) it is in: MC dropout
    relies on that. ``fn`` defaults to the identity."""
    dev = next(module.parameters()).device
    outs = []
    for i in range(0, len(X), batch_size):
        out = module(X[i:i + batch_size].to(dev))
        outs.append((out if fn is None else fn(out)).float().cpu())
    return torch.cat(outs)


def batched_softmax(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256
                    ) -> torch.Tensor:
    """Softmax outputs of ``module`` for ``X``, in batches, in the module's current mode."""
    return batched_outputs(module, X, batch_size, fn=lambda z: torch.softmax(z, 1))


def predict_proba(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256
                  ) -> torch.Tensor:
    """Softmax outputs of a plain module in eval mode for ``X``."""
    module.eval()
    return batched_softmax(module, X, batch_size)
