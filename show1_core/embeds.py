"""Prompt embeddings: what the text encoders produce and every stage takes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InputError


@dataclass(frozen=True)
class PromptEmbeds:
    """Text embeddings of a prompt and its negative prompt, each ``(batch, tokens, width)``."""

    positive: torch.Tensor
    negative: torch.Tensor

    def __post_init__(self) -> None:
        if self.positive.ndim != 3 or self.positive.shape != self.negative.shape:
            raise InputError(
                f"prompt and negative-prompt embeddings must both be (batch, tokens, width) of one shape; got "
                f"{tuple(self.positive.shape)} and {tuple(self.negative.shape)}"
            )

    @property
    def width(self) -> int:
        """Embedding width (4096 for T5-XXL, 1024 for the stage-4 CLIP)."""
        return self.positive.shape[-1]

    def repeat(self, times: int) -> "PromptEmbeds":
        """The same prompts for ``times`` consecutive groups of the batch."""
        return PromptEmbeds(self.positive.repeat(times, 1, 1), self.negative.repeat(times, 1, 1))

    def to(self, device: torch.device, dtype: torch.dtype) -> "PromptEmbeds":
        """Move both embeddings."""
        return PromptEmbeds(self.positive.to(device, dtype), self.negative.to(device, dtype))
