"""show1_core: the Show-1 text-to-video cascade on PyTorch, diffusers and transformers."""

__version__ = "0.1.0"
