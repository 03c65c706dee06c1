"""Estimate what motion LoRA training needs at the released size, without a GPU and without weights.

    python bench/motion_lora_estimate.py [--stage keyframes|interpolation] [--rank 16] [--batch 1]

Builds the released UNet on the ``meta`` device (no memory, no computation) and runs one
forward pass on meta tensors at the stage's paper size, counting: the base and adapter
parameters, the bytes every layer outputs (an upper bound on the activations kept for the
backward pass; per-block gradient checkpointing keeps only the largest block's), and the
forward FLOPs (``torch.utils.flop_counter``). These are estimates from shapes; they are no
substitute for a measurement on a GPU.
"""

from __future__ import annotations

import argparse
import collections
import json

import torch
from accelerate import init_empty_weights
from torch.utils.flop_counter import FlopCounterMode

from show1_core.loading.registry import CHECKPOINT_FOR_STAGE, ModelRole
from show1_core.models import Show1UNet
from show1_core.motion_lora import temporal_attention_targets
from show1_core.training.preparation import stage_defaults

BF16_BYTES = 2


def _top_block(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("down_blocks", "up_blocks") else parts[0]


def estimate(stage: ModelRole, rank: int, batch: int) -> dict:
    """Parameter counts, activation bytes (bf16) and forward FLOPs of one training sample batch."""
    config = CHECKPOINT_FOR_STAGE[stage].expected_config("unet")
    with init_empty_weights():
        unet = Show1UNet.from_config(config)
    layers = dict(unet.named_modules())
    targets = temporal_attention_targets(unet)
    outputs: collections.Counter[str] = collections.Counter()

    def count(block: str):
        def hook(module, args, output):
            for tensor in output if isinstance(output, (tuple, list)) else (output,):
                if isinstance(tensor, torch.Tensor):
                    outputs[block] += tensor.numel() * BF16_BYTES

        return hook

    for name, module in layers.items():
        if name and not list(module.children()):
            module.register_forward_hook(count(_top_block(name)))
    size = stage_defaults(stage)
    sample = torch.empty(batch, config["in_channels"], size["frames"], size["height"], size["width"], device="meta")
    text = torch.empty(batch, 77, config["encoder_hid_dim"], device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        unet(sample, torch.tensor([500], device="meta"), text)
    base = sum(p.numel() for p in unet.parameters())
    adapters = sum(rank * (layers[t].in_features + layers[t].out_features) for t in targets)
    return {
        "stage": stage.value,
        "sample": f"{batch} x {size['frames']} frames x {size['width']}x{size['height']}",
        "base_parameters_M": round(base / 1e6, 1),
        "base_weights_bf16_GB": round(base * BF16_BYTES / 1e9, 2),
        "adapted_layers": len(targets),
        "adapter_parameters_M": round(adapters / 1e6, 2),
        "adapter_training_state_GB": round(adapters * 16 / 1e9, 3),  # fp32 weights, gradients, two Adam moments
        "layer_outputs_bf16_GB": round(sum(outputs.values()) / 1e9, 2),
        "largest_block_outputs_bf16_GB": round(max(outputs.values()) / 1e9, 2),
        "forward_TFLOP": round(flops.get_total_flops() / 1e12, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the estimate as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=ModelRole.KEYFRAMES.value, choices=[ModelRole.KEYFRAMES.value, ModelRole.INTERPOLATION.value])
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(estimate(ModelRole(args.stage), args.rank, args.batch), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
