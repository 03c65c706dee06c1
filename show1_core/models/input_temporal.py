"""Show-1's optional input temporal transformer (``transfromer_in_opt`` in the configs).

Structurally this is diffusers' ``TransformerTemporalModel`` (8 heads x 64 dims), but
Show-1's copy lays its output back out differently: the per-pixel sequence, stored as
``(batch, height, width, frames, channels)``, is read as if it were
``(batch, height, width, channels, frames)``. The released sr2 weights were trained with
that layout, so it is reproduced here exactly; only ``forward`` differs from diffusers.
"""

from __future__ import annotations

import torch
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

INPUT_TEMPORAL_HEADS = 8
INPUT_TEMPORAL_HEAD_DIM = 64


class Show1InputTemporalTransformer(TransformerTemporalModel):
    """Temporal self-attention over each pixel's frame sequence, with Show-1's output layout."""

    def __init__(self, in_channels: int):
        super().__init__(
            num_attention_heads=INPUT_TEMPORAL_HEADS,
            attention_head_dim=INPUT_TEMPORAL_HEAD_DIM,
            in_channels=in_channels,
            num_layers=1,
        )

    def forward(self, hidden_states: torch.Tensor, num_frames: int = 1) -> torch.Tensor:  # type: ignore[override]
        """Map ``(batch*frames, C, H, W)`` to the same shape, residual included."""
        batch_frames, channels, height, width = hidden_states.shape
        batch = batch_frames // num_frames
        residual = hidden_states

        x = hidden_states.reshape(batch, num_frames, channels, height, width).permute(0, 2, 1, 3, 4)
        x = self.norm(x)
        x = x.permute(0, 3, 4, 2, 1).reshape(batch * height * width, num_frames, channels)
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x)
        x = self.proj_out(x)
        # Show-1's layout: frames and channels swap roles when the sequence is folded back.
        x = x.reshape(batch, height, width, channels, num_frames).permute(0, 3, 4, 1, 2).contiguous()
        return x.reshape(batch_frames, channels, height, width) + residual
