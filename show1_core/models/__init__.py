"""Models owned by show1: the Show-1 video UNet and its building blocks."""

from .unet import Show1UNet, Show1UNetOutput

__all__ = ["Show1UNet", "Show1UNetOutput"]
