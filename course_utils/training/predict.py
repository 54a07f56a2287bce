"""Forward passes of a plain module over many images, in batches: the one loop, the one
forward-hook capture of inner layers, and what is measured from them (accuracy from
scores, the share of dead units)."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch import nn

__all__ = ["accuracy_from_scores", "batched_outputs", "batched_softmax", "capture_outputs",
           "dead_unit_share", "find_layer", "module_accuracy", "predict_proba"]


@torch.no_grad()
def batched_outputs(module: torch.nn.Module, X: torch.Tensor, batch_size: int = 256,
                    fn=None) -> torch.Tensor:
    """``fn(module(batch))`` for every batch of ``X`` (on the module's device), joined on
    the CPU. The module stays in whatever mode (train or eval) it is in: MC dropout
    relies on that. ``fn`` defaults to the identity."""
    param = next(module.parameters(), None)
    dev = param.device if param is not None else torch.device("cpu")
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


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule of ``model`` called ``name``: its full dotted name (``"features.act1"``)
    or its last part (``"act1"``). Raises ValueError naming the layers there are."""
    named = {n: m for n, m in model.named_modules() if n}
    if name in named:
        return named[name]
    by_short = {n.rsplit(".", 1)[-1]: m for n, m in named.items()}
    if name in by_short:
        return by_short[name]
    raise ValueError(f"no layer {name!r} in this model; choose one of "
                     f"{', '.join(sorted(by_short))}")


def _resolve(model: nn.Module, layers) -> dict[str, nn.Module]:
    """``layers``: a module class (every such submodule, keyed by its last name), a
    sequence of dotted names or last names, or a mapping label -> name or module."""
    named = dict(model.named_modules())
    if isinstance(layers, type):
        found = {n.rsplit(".", 1)[-1]: m for n, m in named.items() if isinstance(m, layers)}
        if not found:
            raise ValueError(f"the model has no {layers.__name__} layers")
        return found
    items = layers.items() if isinstance(layers, Mapping) else ((n, n) for n in layers)
    return {label: ref if isinstance(ref, nn.Module) else find_layer(model, ref)
            for label, ref in items}


def capture_outputs(model: nn.Module, X: torch.Tensor,
                    layers: type | Sequence[str] | Mapping[str, str | nn.Module],
                    batch_size: int = 256, inputs: bool = False,
                    fn: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
    """What inner layers produce for ``X``, caught with forward hooks, in eval mode.

    Parameters
    ----------
    model : nn.Module
        A plain module (a skorch net's ``module_``); it is put back in its mode after.
    X : torch.Tensor
        The inputs, run in batches of ``batch_size`` on the model's device.
    layers : type, sequence of str or mapping
        Which layers: a module class (``nn.ReLU``: every one, keyed by its last name),
        names (``"features.act1"`` or ``"act1"``), or ``{label: name or module}``.
    inputs : bool
        Catch each layer's input instead of its output (what an LRN layer divides).
    fn : callable, optional
        Applied to each caught batch before it is kept (e.g. a flatten).

    Returns
    -------
    dict of str to torch.Tensor
        One tensor per layer, float32 on the CPU, the batches joined.
    """
    targets = _resolve(model, layers)
    caught: dict[str, list[torch.Tensor]] = {label: [] for label in targets}

    def keep(label):
        def hook(_module, args, output):
            value = (args[0] if inputs else output).detach()
            caught[label].append((value if fn is None else fn(value)).float().cpu())
        return hook

    handles = [m.register_forward_hook(keep(label)) for label, m in targets.items()]
    was_training = model.training
    model.eval()
    try:
        batched_outputs(model, X, batch_size, fn=lambda z: z[:0])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {label: torch.cat(parts) for label, parts in caught.items()}


def accuracy_from_scores(scores: torch.Tensor, y) -> float:
    """Share of rows of ``scores`` (N, classes: logits or probabilities) whose largest
    entry is at the label ``y``."""
    scores = torch.as_tensor(scores)
    y = torch.as_tensor(y).reshape(-1)
    if scores.ndim != 2 or len(scores) != len(y):
        raise ValueError(f"scores must be (N, classes) for N labels: got {tuple(scores.shape)} "
                         f"for {len(y)} labels")
    return float((scores.argmax(1).cpu() == y.cpu()).float().mean())


def module_accuracy(model: nn.Module, X: torch.Tensor, y, batch_size: int = 512) -> float:
    """Share of ``X`` that a plain module, in eval mode, classifies as ``y``."""
    was_training = model.training
    model.eval()
    try:
        return accuracy_from_scores(batched_outputs(model, X, batch_size), y)
    finally:
        model.train(was_training)


def dead_unit_share(acts: torch.Tensor, tol: float = 1.0) -> float:
    """Share (0-1) of units that are inactive (never above 0) for at least a share
    ``tol`` of the images.

    ``acts`` is (N, units, ...) after a ReLU: a unit is a channel of a feature map
    (active on an image where any position is above 0) or a neuron of a flat layer.
    ``tol=1.0``: dead means inactive on every image.
    """
    if not 0 < tol <= 1:
        raise ValueError(f"tol must be in (0, 1], got {tol}")
    a = torch.as_tensor(acts)
    if a.ndim < 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"no images or no units: activations of shape {tuple(a.shape)}")
    active = (a.reshape(a.shape[0], a.shape[1], -1) > 0).any(dim=2)  # (N, units)
    inactive_share = (~active).double().mean(dim=0)
    return float(inactive_share.ge(tol - 1e-12).double().mean())
