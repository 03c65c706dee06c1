"""The shipped workflows at tiny-model cost: one rule for the pack's tests and the real-ComfyUI checks.

Imports nothing but the standard library, so ComfyUI's Python can use it too
(``tests/real_comfy_checks.py`` gives it to the harness).
"""

from __future__ import annotations

import copy

TINY_SIZES = {(64, 40): (16, 8), (576, 320): (64, 32)}
"""The paper's keyframe and stage-4 sizes, and the sizes the tiny models run at in these tests."""
TINY_STEPS, TINY_KEYFRAMES = 2, 3
SIZE_WIDGETS = (("width", "height"), ("stage3_width", "stage3_height"))
STEP_WIDGETS = ("steps", "first_frame_steps", "pixel_sr_steps", "latent_sr_steps")


def shrink(prompt: dict) -> dict:
    """The prompt at tiny-model cost: sizes, step counts and the keyframe count lowered; graph, models, prompts and seeds as shipped."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        inputs = node["inputs"]
        for width, height in SIZE_WIDGETS:
            size = (inputs.get(width), inputs.get(height))
            if size in TINY_SIZES:
                inputs[width], inputs[height] = TINY_SIZES[size]
        for name in STEP_WIDGETS:
            if name in inputs:
                inputs[name] = TINY_STEPS
        if node["class_type"] == "Show1Keyframes":
            inputs["frames"] = TINY_KEYFRAMES
    return prompt
