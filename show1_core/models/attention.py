"""Temporal attention in bounded batches.

A temporal transformer attends along the frames of every pixel, so its attention batch is
``videos x 2 (guidance) x height x width``: 81,920 sequences for one guided 256x160 video, more
with batched interpolation windows or several videos. CUDA's fused attention kernels put the
batch in a grid dimension limited to 65,535 and fail with "invalid configuration argument"
beyond it (not an out-of-memory error, so no retry would catch it). Every temporal attention
of :class:`~show1_core.models.Show1UNet` therefore runs its batch in chunks of at most
:data:`TEMPORAL_ATTENTION_BATCH` sequences; each sequence is attended on its own, so the
result is the same.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention
from torch import nn

TEMPORAL_ATTENTION_BATCH = 32768
"""Sequences per attention call: half the CUDA grid limit, leaving room for kernels that split further."""


class BatchChunkedProcessor:
    """Runs another attention processor on at most ``max_batch`` sequences at a time."""

    def __init__(self, inner, max_batch: int = TEMPORAL_ATTENTION_BATCH):
        self.inner = inner
        self.max_batch = max_batch

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Attention over ``hidden_states`` ``(batch, tokens, channels)``, chunked along the batch."""
        batch = hidden_states.shape[0]
        if batch <= self.max_batch:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)
        parts = []
        for start in range(0, batch, self.max_batch):
            part = slice(start, start + self.max_batch)
            context = None if encoder_hidden_states is None else encoder_hidden_states[part]
            mask = attention_mask[part] if attention_mask is not None and attention_mask.shape[0] == batch else attention_mask
            parts.append(self.inner(attn, hidden_states[part], context, mask, **kwargs))
        return torch.cat(parts)


def temporal_attentions(model: nn.Module) -> list[Attention]:
    """Every attention layer inside the temporal transformers a Show-1 UNet names (``in_temporal_transformer``)."""
    return [m for name, m in model.named_modules() if isinstance(m, Attention) and model.in_temporal_transformer(name)]


def limit_temporal_attention_batch(model: nn.Module, max_batch: int = TEMPORAL_ATTENTION_BATCH) -> None:
    """Make every temporal attention of the Show-1 UNet ``model`` run at most ``max_batch`` sequences per call."""
    for attention in temporal_attentions(model):
        inner = attention.processor
        inner = inner.inner if isinstance(inner, BatchChunkedProcessor) else inner
        attention.set_processor(BatchChunkedProcessor(inner, max_batch))
