"""Motion LoRA files: safetensors in the diffusers/peft LoRA layout, with Show-1 metadata.

Tensors are stored as ``unet.<module>.lora_A.weight`` (``rank x in``) and
``unet.<module>.lora_B.weight`` (``out x rank``), the layout diffusers pipelines save. The
header's metadata holds ``lora_adapter_metadata`` (the peft ``LoraConfig``, as diffusers
writes it) and ``show1_motion_lora``: a JSON object naming the stage, the base checkpoint and
its architecture fingerprint, rank, alpha, target modules, training steps, prompts and the
show1 version. Reading a file checks all of it, so a file for another stage, another layout,
or a damaged file is refused with a message before anything touches a model.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .. import __version__
from ..errors import CorruptCheckpointError, InputError, MissingFilesError, StateDictMismatchError, WrongStageError
from ..loading.registry import ModelRole
from ..outputs import atomic_write
from ..validation.ranges import MAX_LORA_STRENGTH, lora_strength_problems, raise_problems
from .targets import TRAINABLE_STAGES, is_temporal_attention_target

FORMAT = "show1-motion-lora/1"
SHOW1_KEY = "show1_motion_lora"
PEFT_KEY = "lora_adapter_metadata"
"""Header key diffusers' ``save_lora_adapter`` uses for the ``LoraConfig``."""
PREFIX = "unet."
_KEY = re.compile(r"^unet\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")


@dataclass(frozen=True)
class MotionLoraInfo:
    """What a motion LoRA was trained for and how (stored in the file's metadata)."""

    stage: ModelRole
    base_checkpoint: str
    """Folder or repo name of the model it was trained on (e.g. ``show-1-base``)."""
    base_fingerprint: str
    """:func:`~show1_core.motion_lora.targets.unet_fingerprint` of that model."""
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    steps: int
    prompts: tuple[str, ...]
    frames: int
    height: int
    width: int
    show1_version: str = __version__
    format: str = FORMAT

    def to_json(self) -> str:
        """The metadata as stored in the file."""
        data = asdict(self)
        data["stage"] = self.stage.value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: Path) -> "MotionLoraInfo":
        """Parse stored metadata; anything missing or malformed is a :class:`CorruptCheckpointError`."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r} is not {FORMAT!r}")
            info = cls(
                stage=ModelRole(data["stage"]),
                base_checkpoint=str(data["base_checkpoint"]),
                base_fingerprint=str(data["base_fingerprint"]),
                rank=int(data["rank"]),
                alpha=float(data["alpha"]),
                target_modules=tuple(str(t) for t in data["target_modules"]),
                steps=int(data["steps"]),
                prompts=tuple(str(p) for p in data["prompts"]),
                frames=int(data["frames"]),
                height=int(data["height"]),
                width=int(data["width"]),
                show1_version=str(data["show1_version"]),
                format=FORMAT,
            )
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptCheckpointError(
                f"{source} has unreadable Show-1 motion LoRA metadata ({err}); train or download it again"
            ) from err
        if info.rank < 1 or not info.target_modules or not math.isfinite(info.alpha):
            raise CorruptCheckpointError(
                f"{source} declares an invalid LoRA (rank {info.rank}, alpha {info.alpha}, {len(info.target_modules)} targets)"
            )
        return info

    def peft_config(self) -> dict:
        """The peft ``LoraConfig`` arguments of this adapter."""
        return {"r": self.rank, "lora_alpha": self.alpha, "target_modules": list(self.target_modules), "init_lora_weights": True}


@dataclass(frozen=True)
class MotionLora:
    """A motion LoRA read from a file, with the strength to apply it at."""

    info: MotionLoraInfo
    weights: dict[str, torch.Tensor] = field(repr=False)
    """``<module>.lora_A.weight`` / ``<module>.lora_B.weight`` tensors (no ``unet.`` prefix)."""
    scale: float = 1.0
    source: Path | None = None

    @property
    def name(self) -> str:
        """Short name for messages: the file name, or the base checkpoint for in-memory adapters."""
        return self.source.name if self.source else f"motion LoRA for {self.info.base_checkpoint}"

    def with_scale(self, scale: float) -> "MotionLora":
        """The same adapter at another strength (0 leaves the model's output exactly unchanged)."""
        return replace(self, scale=check_scale(scale))


def check_scale(scale: float) -> float:
    """A LoRA strength in its range (:func:`show1_core.validation.ranges.lora_strength_problems`), as float."""
    raise_problems(lora_strength_problems(scale))
    return float(scale)


def save_motion_lora(path: Path | str, weights: dict[str, torch.Tensor], info: MotionLoraInfo) -> Path:
    """Write ``weights`` (peft names without prefix) and ``info`` to ``path`` atomically; returns the path."""
    path = Path(path)
    check_layout(weights, info, path)
    tensors = {PREFIX + k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    metadata = {"format": "pt", SHOW1_KEY: info.to_json(), PEFT_KEY: json.dumps(info.peft_config(), sort_keys=True)}
    with atomic_write(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


def read_motion_lora_info(path: Path | str) -> MotionLoraInfo:
    """Only the metadata of a motion LoRA file (reads the header, not the tensors)."""
    path = _existing(path)
    with _opened(path) as handle:
        return _info_from(handle.metadata(), path)


def load_motion_lora(path: Path | str, scale: float = 1.0) -> MotionLora:
    """Read and check a motion LoRA file.

    Raises :class:`CorruptCheckpointError` for a file that is not safetensors, truncated or
    has broken metadata, :class:`StateDictMismatchError` for a file that is no Show-1 motion
    LoRA or whose tensors do not match its declared rank and targets, and
    :class:`WrongStageError` for a LoRA of a stage motion LoRAs do not exist for.
    """
    path = _existing(path)
    with _opened(path) as handle:
        info = _info_from(handle.metadata(), path)
        try:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as err:  # safetensors raises its own error types for damaged data
            raise CorruptCheckpointError(f"{path} is damaged ({err}); train or download it again") from err
    weights = {}
    for key, tensor in tensors.items():
        match = _KEY.match(key)
        if match is None:
            raise StateDictMismatchError(
                f"{path} holds {key!r}, which is not a LoRA weight of a Show-1 UNet module (expected unet.<module>.lora_A.weight)"
            )
        weights[key.removeprefix(PREFIX)] = tensor
    check_layout(weights, info, path)
    return MotionLora(info=info, weights=weights, scale=check_scale(scale), source=path)


def check_layout(weights: dict[str, torch.Tensor], info: MotionLoraInfo, source: Path) -> None:
    """Refuse weights that do not form one rank-``info.rank`` A/B pair per declared temporal-attention target."""
    expected = {f"{m}.lora_{part}.weight" for m in info.target_modules for part in "AB"}
    missing, extra = sorted(expected - weights.keys()), sorted(weights.keys() - expected)
    if missing or extra:
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise StateDictMismatchError(
            f"{source}: the LoRA tensors do not match the {len(info.target_modules)} target modules its metadata declares "
            f"({len(missing)} missing, {len(extra)} unexpected, e.g. {detail}); the file is inconsistent, train it again"
        )
    off_target = [m for m in info.target_modules if not is_temporal_attention_target(m)]
    if off_target:
        raise StateDictMismatchError(
            f"{source} adapts {off_target[0]}, which is not a temporal attention projection; motion LoRAs only adapt temporal attention"
        )
    for module in info.target_modules:
        a, b = weights[f"{module}.lora_A.weight"], weights[f"{module}.lora_B.weight"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != info.rank or b.shape[1] != info.rank:
            raise StateDictMismatchError(
                f"{source}: {module} has LoRA shapes A {tuple(a.shape)}, B {tuple(b.shape)}, which is not the rank-{info.rank} "
                "layout the metadata declares (A: rank x in, B: out x rank)"
            )
        if not (a.is_floating_point() and b.is_floating_point()) or not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            raise CorruptCheckpointError(
                f"{source}: the LoRA weights of {module} are not finite floats; the training diverged or the file is damaged"
            )


def parse_lora_spec(spec: str) -> tuple[Path, float]:
    """``FILE`` or ``FILE:SCALE`` (as ``--motion-lora`` takes it) -> (path, scale); the scale defaults to 1.

    A file name holding a colon (an existing file, or one ending in ``.safetensors``) is taken whole; otherwise a
    ``SCALE`` that is not a number, or is out of range, raises :class:`InputError` naming it.
    """
    head, sep, tail = spec.rpartition(":")
    whole_name = tail.startswith(("/", "\\")) or tail.lower().endswith(".safetensors") or Path(spec).expanduser().is_file()
    if not sep or not head or whole_name:
        return Path(spec), 1.0
    try:
        scale = float(tail)
    except ValueError:
        raise InputError(
            f"--motion-lora {spec!r}: bad strength {tail!r}; write FILE:STRENGTH with a number from "
            f"{-MAX_LORA_STRENGTH:g} to {MAX_LORA_STRENGTH:g}"
        ) from None
    raise_problems(lora_strength_problems(scale, f"--motion-lora {spec!r}: the strength"))
    return Path(head), scale


def _existing(path: Path | str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFilesError(f"motion LoRA file {path} does not exist")
    return path


class _opened:
    """``safe_open`` with every failure to parse the file turned into a :class:`CorruptCheckpointError`."""

    def __init__(self, path: Path):
        self.path = path
        self._context = None

    def __enter__(self):
        try:
            self._context = safe_open(str(self.path), framework="pt", device="cpu")
            return self._context.__enter__()
        except Exception as err:  # safetensors reports bad headers and truncation with its own error types
            raise CorruptCheckpointError(
                f"{self.path} is not a readable safetensors file ({err}); it may be truncated or not a LoRA at all. "
                "Motion LoRAs are .safetensors files written by `show1 train-motion`"
            ) from err

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)


def _info_from(metadata: dict[str, str] | None, path: Path) -> MotionLoraInfo:
    if not metadata or SHOW1_KEY not in metadata:
        raise StateDictMismatchError(
            f"{path} is not a Show-1 motion LoRA (it has no '{SHOW1_KEY}' metadata). LoRAs made for image models "
            "(Stable Diffusion, Flux, ...) do not fit Show-1; train one with `show1 train-motion`"
        )
    info = MotionLoraInfo.from_json(metadata[SHOW1_KEY], path)
    if info.stage not in TRAINABLE_STAGES:
        raise WrongStageError(f"{path} says it adapts the {info.stage.title} model; motion LoRAs exist for stages 1 and 2 only")
    return info
