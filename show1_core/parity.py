"""Reference-parity harness: compute the project's version of every tensor in a parity case.

    python -m show1_core.parity --case DIR --models DIR --out FILE [--only NAME[,NAME...]] [--dtype float64]

Reads ``case.json`` and the *input* tensors of ``tensors.safetensors`` from ``--case``,
loads the tiny models in ``--models`` with show1's own loading code, runs each piece, and
writes the results under the fixture's tensor names. It never reads the expected outputs:
comparing is the tests' job. Each stage is fed the fixture's own previous-stage tensors, so
errors do not compound. By default it computes every tensor the case lists in ``case.json``.

``--dtype float64`` runs every model, input and stage in float64 (noise drawn as float64, as
the original does for that dtype), for the float64 fixtures: there rounding is ~1e-16, so
what remains of a difference is the algorithm.

``run_parity(..., speed=SpeedSettings(...))`` runs every model with speed options applied
(attention backend, compilation, fp8 weights, block streaming, split guidance), which is how
the tests show which options leave the numbers unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .loading import ModelRole, StageModel, load_stage_model
from .loading.registry import CHECKPOINT_FOR_STAGE
from .settings import FirstFrameSettings, InterpolationSettings, KeyframeSettings, LatentSRSettings, PixelSRSettings, SpeedSettings
from .speed import apply_speed
from .stages import (
    PromptEmbeds,
    decode_latents,
    encode_video,
    generate_keyframes,
    interpolate_frames,
    prepare_input,
    refine_latents,
    super_resolve_latent,
    super_resolve_pixels,
    upscale_first_frame,
)
from .stages.sampling import seeded_generator

FORWARD_TIMESTEPS = {"fwd_base_out": 617, "fwd_interp_out": 333, "fwd_sr1_out": 801}
"""Timesteps of the single-forward fixtures (documented in the parity README)."""
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ParityCase:
    """A case folder: its parameters and lazy access to its input tensors only."""

    def __init__(self, case_dir: Path, models_dir: Path, dtype: torch.dtype = torch.float32, speed: SpeedSettings = SpeedSettings()):
        self.case_dir = Path(case_dir)
        self.models_dir = Path(models_dir)
        self.dtype = dtype
        self.speed = speed
        self.params = json.loads((self.case_dir / "case.json").read_text())
        self._models: dict[ModelRole, StageModel] = {}
        self._computed: dict[str, torch.Tensor] = {}

    def tensor(self, name: str) -> torch.Tensor:
        """One input tensor of the case, read on its own (floating tensors in the run's precision)."""
        with safe_open(str(self.case_dir / "tensors.safetensors"), "pt") as f:
            tensor = f.get_tensor(name)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def listed(self) -> list[str]:
        """The tensor names ``case.json`` lists (inputs and outputs)."""
        return list(self.params.get("shapes", {}))

    def once(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()`` the first time ``key`` is asked for; the same tensor afterwards."""
        if key not in self._computed:
            self._computed[key] = compute()
        return self._computed[key]

    def t5(self) -> PromptEmbeds:
        """The stand-in T5 prompt embeddings."""
        return PromptEmbeds(self.tensor("t5_pos"), self.tensor("t5_neg"))

    def model(self, stage: ModelRole) -> StageModel:
        """The case's tiny model of ``stage``, loaded once with the project's loader, with the case's speed settings."""
        if stage not in self._models:
            model = load_stage_model(self._model_dir(stage), stage, dtype=self.dtype)
            self._models[stage] = apply_speed(model, self.speed, "cpu")
        return self._models[stage]

    def _model_dir(self, stage: ModelRole) -> Path:
        name = CHECKPOINT_FOR_STAGE[stage].name
        for candidate in (name, f"{name}-tiny", f"{name.removesuffix('-v1.0')}-tiny"):
            if (self.models_dir / candidate).is_dir():
                return self.models_dir / candidate
        raise FileNotFoundError(f"no model folder for {stage.title} ({name}) in {self.models_dir}")

    @property
    def seed(self) -> int:
        """The case's seed."""
        return int(self.params["seed"])

    def guidance(self, stage: str) -> float:
        """Guidance scale of one stage from case.json."""
        return float(self.params["guidance"][stage])


def _forward(case: ParityCase, name: str, stage: ModelRole) -> torch.Tensor:
    t5 = case.t5()
    text = torch.cat([t5.negative, t5.positive])
    sample = case.tensor(name.replace("_out", "_in"))
    labels = None
    if stage == ModelRole.PIXEL_SR:
        labels = torch.full((sample.shape[0],), case.params["noise_level"]["sr1"], dtype=torch.long)
    with torch.no_grad():
        return case.model(stage).unet(sample, torch.tensor(FORWARD_TIMESTEPS[name]), text, class_labels=labels).sample


def _keyframes(case: ParityCase) -> torch.Tensor:
    p = case.params
    settings = KeyframeSettings(
        num_frames=p["frames"], height=p["height"], width=p["width"], steps=p["steps"], guidance=case.guidance("keyframes")
    )
    return generate_keyframes(case.model(ModelRole.KEYFRAMES), case.t5(), settings, seed=case.seed)


def _interpolated(case: ParityCase) -> torch.Tensor:
    frames = case.params["frames"]
    between = (case.params["shapes"]["interpolated"][2] - frames) // (frames - 1)
    settings = InterpolationSettings(frames_between=between, steps=case.params["steps"], guidance=case.guidance("interpolation"))
    return interpolate_frames(case.model(ModelRole.INTERPOLATION), case.tensor("keyframes"), case.t5(), settings, seed=case.seed)


def _first_frame(case: ParityCase) -> torch.Tensor:
    low = case.tensor("interpolated")[:, :, 0]
    settings = FirstFrameSettings(
        steps=case.params["steps"], guidance=case.guidance("first_frame"), noise_level=case.params["noise_level"]["first_frame"]
    )
    height, width = low.shape[-2] * 4, low.shape[-1] * 4
    return upscale_first_frame(case.model(ModelRole.FIRST_FRAME), low, case.t5(), height, width, settings, seed=case.seed)


def _sr1(case: ParityCase) -> torch.Tensor:
    p = case.params
    settings = PixelSRSettings(
        steps=p["steps"],
        guidance=case.guidance("sr1"),
        noise_level=p["noise_level"]["sr1"],
        window=p["sr1_window"],
        stride=p["sr1_stride"],
    )
    video = case.tensor("interpolated")
    return super_resolve_pixels(case.model(ModelRole.PIXEL_SR), video, case.t5(), case.tensor("sr1_first_frame"), settings, seed=case.seed)


def _sr2_settings(case: ParityCase) -> LatentSRSettings:
    p = case.params
    width, height = p["sr2_size"]
    return LatentSRSettings(
        width=width, height=height, steps=p["sr2_steps"], strength=p["sr2_strength"], guidance=case.guidance("sr2"), eta=p["sr2_eta"]
    )


def _sr2_input(case: ParityCase) -> torch.Tensor:
    settings = _sr2_settings(case)
    frames, _ = prepare_input(case.tensor("sr1"), settings.width, settings.height)
    return torch.from_numpy(frames[0])


def _sr2_video_and_clip(case: ParityCase) -> tuple[torch.Tensor, PromptEmbeds]:
    settings = _sr2_settings(case)
    _, video = prepare_input(case.tensor("sr1"), settings.width, settings.height)
    return video, PromptEmbeds(case.tensor("clip_pos"), case.tensor("clip_neg"))


def _sr2(case: ParityCase) -> torch.Tensor:
    video, clip = _sr2_video_and_clip(case)
    return super_resolve_latent(case.model(ModelRole.LATENT_SR), video, clip, _sr2_settings(case), seed=case.seed)


def _sr2_raw_latents(case: ParityCase) -> torch.Tensor:
    """The refined stage-4 latents, raw, as the decoder takes them (same random draws as :func:`super_resolve_latent`)."""

    def compute() -> torch.Tensor:
        video, clip = _sr2_video_and_clip(case)
        model, settings = case.model(ModelRole.LATENT_SR), _sr2_settings(case)
        generator = seeded_generator(case.seed)
        latents = encode_video(model.vae, video, generator, settings.vae_batch)
        return refine_latents(model, latents, clip, settings, generator)

    return case.once("sr2_latents", compute)


def _sr2_latents(case: ParityCase) -> torch.Tensor:
    """The final stage-4 latents as the fixtures store them: in the UNet's (scaled) space."""
    return _sr2_raw_latents(case) * case.model(ModelRole.LATENT_SR).vae.config.scaling_factor


def _sr2_decoded_in_run_precision(case: ParityCase) -> torch.Tensor:
    """Those latents decoded in the run's precision, without the original's final ``.float()``."""
    return decode_latents(case.model(ModelRole.LATENT_SR).vae, _sr2_raw_latents(case), dtype=case.dtype)


@dataclass(frozen=True)
class Piece:
    """One tensor the harness can produce."""

    name: str
    compute: Callable[[ParityCase], torch.Tensor]


PIECES: dict[str, Piece] = {
    p.name: p
    for p in (
        Piece("fwd_base_out", lambda c: _forward(c, "fwd_base_out", ModelRole.KEYFRAMES)),
        Piece("fwd_interp_out", lambda c: _forward(c, "fwd_interp_out", ModelRole.INTERPOLATION)),
        Piece("fwd_sr1_out", lambda c: _forward(c, "fwd_sr1_out", ModelRole.PIXEL_SR)),
        Piece("keyframes", _keyframes),
        Piece("interpolated", _interpolated),
        Piece("sr1_first_frame", _first_frame),
        Piece("sr1", _sr1),
        Piece("sr2_input_uint8", _sr2_input),
        Piece("sr2", _sr2),
        Piece("sr2_latents", _sr2_latents),
        Piece("sr2_f64decode", _sr2_decoded_in_run_precision),
    )
}


def run_parity(
    case_dir: Path,
    models_dir: Path,
    only: list[str] | None = None,
    dtype: torch.dtype = torch.float32,
    speed: SpeedSettings = SpeedSettings(),
) -> dict[str, torch.Tensor]:
    """Compute the requested pieces (every piece the case lists by default) in ``dtype`` with the models
    running as ``speed`` says; return them by name."""
    unknown = [n for n in only or () if n not in PIECES]
    if unknown:
        raise ValueError(f"unknown piece(s) {', '.join(unknown)}; choose from {', '.join(PIECES)}")
    case = ParityCase(case_dir, models_dir, dtype, speed)
    names = only or [name for name in PIECES if name in case.listed()]
    return {name: PIECES[name].compute(case).contiguous() for name in names}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m show1_core.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", required=True, type=Path, help="folder with case.json and tensors.safetensors")
    parser.add_argument("--models", required=True, type=Path, help="folder with the tiny model folders")
    parser.add_argument("--out", required=True, type=Path, help="safetensors file to write")
    parser.add_argument("--only", default=None, help=f"comma-separated pieces: {','.join(PIECES)}")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES), help="precision of models, inputs and stages")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        results = run_parity(args.case, args.models, only, DTYPES[args.dtype])
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(results, str(args.out), metadata={"case": str(args.case)})
    for name, tensor in results.items():
        print(f"{name}: {tuple(tensor.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
