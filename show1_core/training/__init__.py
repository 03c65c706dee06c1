"""Motion LoRA training (``show1 train-motion``): temporal-attention adapters for the keyframe and interpolation models.

Modules: :mod:`.clips` (reading and sampling clips), :mod:`.batches` (stage inputs),
:mod:`.objective` (the stages' diffusion loss), :mod:`.trainer` (the loop, checkpoints,
resuming), :mod:`.preparation` (models, precision, cached T5 embeddings), :mod:`.command`
(the command line). This package imports nothing at import time, so the command line stays fast.
"""
