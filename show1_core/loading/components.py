"""Building each model component from its folder with diffusers' and transformers' ``from_pretrained``.

The libraries read configs and weights in every released layout (safetensors or pickled
``.bin``, shards, variants), restore tied weights and keep-in-fp32 modules, build on the
``meta`` device, and open ``.bin`` files only with ``torch.load(weights_only=True)``. What they
lack lives here:

* the stage a UNet config belongs to is checked before anything loads;
* the weight file to read is chosen explicitly (:func:`~.weights.find_weights`), so a library
  never falls back to another format or variant behind the user's back;
* missing, extra and mis-shaped keys are refused (the libraries would initialise missing
  weights randomly, drop extra ones and only log it);
* every failure becomes a :class:`~show1_core.errors.CheckpointError` that says what to do.
"""

from __future__ import annotations

import json
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from ..errors import (
    CheckpointError,
    CorruptCheckpointError,
    MissingFilesError,
    StateDictMismatchError,
    UnsafeCheckpointError,
    WrongStageError,
)
from ..models import Show1UNet
from ..schedulers import OriginalDPMSolverMultistepScheduler
from .detect import describe_stage, stage_of_state_dict, stage_of_unet_config
from .registry import ModelRole
from .weights import describe_weights, find_weights, read_state_dict, shard_map

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "DPMSolverMultistepScheduler": OriginalDPMSolverMultistepScheduler,
    "DDPMScheduler": DDPMScheduler,
    "DDIMScheduler": DDIMScheduler,
}
"""Scheduler classes by the name released configs give; DPM-Solver++ with the arithmetic Show-1 ran (0.19.3)."""
TEXT_ENCODERS = {"t5": "T5EncoderModel", "clip_text_model": "CLIPTextModel"}
ORIGINAL_ATTENTION = "eager"
"""transformers 4.29, which the original ran, had only this attention for T5 and CLIP (SDPA rounds otherwise)."""
IGNORED_KEY_SUFFIXES = ("position_ids",)
"""Buffers older transformers saved and current ones rebuild."""


def read_json(path: Path) -> dict[str, Any]:
    """Read a config file, turning absence, bad JSON or a non-object into a clear checkpoint error."""
    path = Path(path)
    if not path.is_file():
        raise MissingFilesError(f"{path} is missing; the checkpoint folder is incomplete. Download it again.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptCheckpointError(f"{path} is not valid JSON ({err}); download it again") from err
    if not isinstance(data, dict):
        raise CorruptCheckpointError(f"{path} holds {type(data).__name__} where a JSON object was expected; download it again")
    return data


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence the libraries' own load reports and progress bars: every problem they would log is raised
    here instead, and show1's callers report loading as they choose (the command line as a phase)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    saved = [(library.get_verbosity(), library.is_progress_bar_enabled()) for library in libraries]
    for library in libraries:
        library.set_verbosity_error()
        library.disable_progress_bar()
    try:
        yield
    finally:
        for library, (level, bars) in zip(libraries, saved):
            library.set_verbosity(level)
            if bars:
                library.enable_progress_bar()


def _mismatch_error(folder: Path, missing: list[str], unexpected: list[str], mis_shaped: list[str], shapes: dict) -> StateDictMismatchError:
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mis_shaped:
        key = mis_shaped[0]
        problems.append(f"{len(mis_shaped)} with the wrong shape (e.g. {key}: file {shapes[key][0]}, model {shapes[key][1]})")
    try:
        looks_like = stage_of_state_dict(read_state_dict(find_weights(folder)))
    except CheckpointError:
        looks_like = None
    hint = f" The weights look like {describe_stage(looks_like)}." if looks_like else ""
    return StateDictMismatchError(
        f"the weights in {folder} do not fit the model its config describes: {'; '.join(problems)}.{hint} "
        "Make sure the config.json and the weight files come from the same checkpoint."
    )


def _diagnose(folder: Path, what: str, skeleton: Callable[[], nn.Module], error: Exception) -> CheckpointError:
    """Why ``from_pretrained`` failed: the weight file, the config, or weights of the wrong shape."""
    try:
        state = read_state_dict(find_weights(folder))
    except CheckpointError as problem:
        return problem
    try:
        with init_empty_weights():
            expected = {k: tuple(v.shape) for k, v in skeleton().state_dict().items()}
    except (ValueError, TypeError, KeyError, AttributeError, ZeroDivisionError) as err:
        return CorruptCheckpointError(f"{folder}/config.json does not describe a usable {what}: {err}")
    shapes = {k: (tuple(state[k].shape), expected[k]) for k in state.keys() & expected.keys() if tuple(state[k].shape) != expected[k]}
    if shapes:
        return _mismatch_error(folder, [], [], sorted(shapes), shapes)
    return CorruptCheckpointError(f"{folder} could not be loaded as a {what} ({error}); download the checkpoint again")


def _from_pretrained(
    load: Callable[..., Any], folder: Path, what: str, skeleton: Callable[[], nn.Module], variant: str | None, **kwargs
) -> nn.Module:
    """``load(folder, ...)`` with the weight file chosen here, every key checked and every failure explained."""
    weights = find_weights(folder, variant=variant)
    if weights.name.endswith(".index.json"):
        shard_map(weights)  # shards outside the folder are refused before any library reads them
    use_safetensors, found_variant = describe_weights(weights)
    try:
        with _quiet_libraries():
            model, info = load(
                str(folder),
                variant=found_variant,
                use_safetensors=use_safetensors,
                output_loading_info=True,
                local_files_only=True,
                **kwargs,
            )
    except FileNotFoundError as err:
        raise MissingFilesError(f"{err.filename or folder} is missing; download the checkpoint again") from err
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError, ZeroDivisionError, pickle.UnpicklingError) as err:
        problem = _diagnose(folder, what, skeleton, err)
        raise problem from (None if isinstance(problem, UnsafeCheckpointError) else err)  # never pass on advice to unpickle
    missing, unexpected = (
        sorted(k for k in info.get(name) or () if not k.endswith(IGNORED_KEY_SUFFIXES)) for name in ("missing_keys", "unexpected_keys")
    )
    if missing or unexpected:
        raise _mismatch_error(folder, missing, unexpected, [], {})
    return model.eval().requires_grad_(False)


def load_unet(
    folder: Path, expected_stage: ModelRole | None = None, dtype: torch.dtype = torch.float32, variant: str | None = None
) -> nn.Module:
    """Load a Show-1 UNet (or the IF-II-L 2-D UNet) from a ``unet/`` folder.

    Raises :class:`WrongStageError` if ``expected_stage`` is given and the config belongs to
    another stage, naming the stage it looks like.
    """
    folder = Path(folder)
    config = read_json(folder / "config.json")
    found = stage_of_unet_config(config)
    if expected_stage is not None and found != expected_stage:
        raise WrongStageError(
            f"{folder} holds {describe_stage(found)}, but the {expected_stage.title} model was expected. "
            f"Pick the checkpoint made for that stage."
        )
    cls = UNet2DConditionModel if found == ModelRole.FIRST_FRAME else Show1UNet
    return _from_pretrained(cls.from_pretrained, folder, cls.__name__, lambda: cls.from_config(config), variant, torch_dtype=dtype)


def load_vae(folder: Path, dtype: torch.dtype = torch.float32, variant: str | None = None) -> AutoencoderKL:
    """Load the stage-4 ``AutoencoderKL`` from a ``vae/`` folder."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    skeleton = lambda: AutoencoderKL.from_config(config)  # noqa: E731
    return _from_pretrained(AutoencoderKL.from_pretrained, folder, "AutoencoderKL", skeleton, variant, torch_dtype=dtype)


def load_text_encoder(folder: Path, dtype: torch.dtype = torch.float32, variant: str | None = None) -> nn.Module:
    """Load a T5 encoder (stages 1-3) or CLIP text model (stage 4) from a ``text_encoder/`` folder.

    Attention runs as in the original (transformers' eager attention); in fp16, T5's
    overflow-prone feed-forward output layers stay in fp32, as transformers keeps them.
    """
    import transformers

    folder = Path(folder)
    config = read_json(folder / "config.json")
    kind = config.get("model_type")
    if kind not in TEXT_ENCODERS:
        raise WrongStageError(f"{folder} holds a {kind!r} model; Show-1 uses a T5 encoder (stages 1-3) or a CLIP text model (stage 4)")
    cls = getattr(transformers, TEXT_ENCODERS[kind])

    def skeleton() -> nn.Module:
        return cls(cls.config_class.from_dict(config))

    return _from_pretrained(
        cls.from_pretrained, folder, cls.__name__, skeleton, variant, dtype=dtype, attn_implementation=ORIGINAL_ATTENTION
    )


def load_scheduler(folder: Path) -> SchedulerMixin:
    """Build a scheduler from ``scheduler_config.json``, as the released diffusers version ran it.

    ``DPMSolverMultistepScheduler`` configs load as
    :class:`~show1_core.schedulers.OriginalDPMSolverMultistepScheduler` (diffusers 0.19.3's
    arithmetic, which Show-1 ran); configs from before ``final_sigmas_type`` existed end at
    ``sigma_min`` as 0.19.3 did, which is made explicit here.
    """
    path = Path(folder) / "scheduler_config.json"
    config = read_json(path)
    name = config.get("_class_name")
    if name not in SCHEDULERS:
        raise CorruptCheckpointError(f"{path} names scheduler {name!r}; supported: {', '.join(SCHEDULERS)}")
    overrides = {}
    if name == "DPMSolverMultistepScheduler" and "final_sigmas_type" not in config:
        overrides["final_sigmas_type"] = "sigma_min"
    try:
        return SCHEDULERS[name].from_config(config, **overrides)
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as err:
        raise CorruptCheckpointError(f"{path} does not describe a usable {name} ({err}); download the checkpoint again") from err
