"""Regional ``torch.compile``: each repeated block of a UNet compiled on its own.

Compiling the whole UNet costs minutes before the first step and again for every new input
shape. Compiling its repeated blocks instead (resnets, temporal convolutions, transformers,
attentions) costs one compilation per distinct block shape: blocks of the same class and size
share the compiled code (PyTorch treats the weights as inputs), and it is reused for every
step, window and stage that calls them with the same shapes.

diffusers' ``ModelMixin.compile_repeated_blocks`` compiles every module of the listed classes,
including attentions nested inside compiled transformers; a compiled module inside another then
runs through both wrappers on every call (measured about 300x slower per call on the CPU,
with the ``aot_eager`` backend). Only the outermost
block of each nest is compiled here.
"""

from __future__ import annotations

from torch import nn

from ..models import Show1UNet

RECOMPILE_LIMIT = 64
"""Compiled versions kept per block class: one per distinct block size of the five UNets, with room to spare
(PyTorch's default of 8 would drop the rest back to eager mode)."""


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The outermost modules of ``model`` whose class :class:`~show1_core.models.Show1UNet` lists in ``_repeated_blocks``.

    The IF first-frame UNet (diffusers' ``UNet2DConditionModel``) is built from the same 2-D blocks,
    but diffusers lists only its ``BasicTransformerBlock``; it is compiled by Show-1's list too.
    """
    return _outermost(model, frozenset(Show1UNet._repeated_blocks))


def _outermost(model: nn.Module, names: frozenset[str]) -> list[nn.Module]:
    found = []
    for child in model.children():
        if type(child).__name__ in names:
            found.append(child)
        else:
            found += _outermost(child, names)
    return found


def compile_repeated_blocks(model: nn.Module, backend: str = "inductor") -> int:
    """``torch.compile`` each repeated block of ``model`` in place with ``backend``; returns how many.

    Compilation happens on each block's first call (the first denoising step).
    """
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    blocks = repeated_blocks(model)
    for block in blocks:
        block.compile(backend=backend)
    return len(blocks)
