"""Where the loaders find checkpoints: ComfyUI's ``models/show1``, ``$SHOW1_MODELS_DIR``, and the Hub.

A loader's ``model`` value is either a known Hugging Face repo id (``showlab/show-1-base``),
downloaded on first use into ``<models root>/<name>``, or the name of a checkpoint folder
inside one of the model roots. Names come from workflow JSON that anyone can write, so
they resolve only inside the roots: absolute paths, ``..`` and links that lead out of a
root are refused with an explanation.

Messages go to the ComfyUI client, so they name folders from their model root
(``models/show1/show-1-base``, ``$SHOW1_MODELS_DIR/show-1-base``), never by the server's
absolute path: :func:`display_path` for the pack's own messages, :func:`client_safe` for
errors raised by show1_core.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, TypeVar

from show1_core import (
    CHECKPOINT_FOR_STAGE,
    DEFAULT_MODELS_DIR_ENV,
    T5_CHECKPOINT,
    EncoderKind,
    InputError,
    MissingFilesError,
    ModelRole,
    Show1Error,
    default_models_dir,
    known_checkpoint,
    resolve_checkpoint,
)
from show1_core.host import stage_of_unet_config

from .model_names import RefusedName, relative_name

FOLDER_NAME = "show1"
"""The ComfyUI model folder name (``models/show1``, and the key in ``extra_model_paths.yaml``)."""
ENCODER_REPO = {EncoderKind.T5: T5_CHECKPOINT.repo_id, EncoderKind.CLIP: CHECKPOINT_FOR_STAGE[ModelRole.LATENT_SR].repo_id}
ENCODER_MODEL_TYPE = {"t5": EncoderKind.T5, "clip_text_model": EncoderKind.CLIP}


def _folder_paths() -> ModuleType | None:
    try:
        return importlib.import_module("folder_paths")
    except ImportError:
        return None


def comfy_folders(name: str) -> list[Path]:
    """ComfyUI's folders registered as ``name`` (``loras``, ``text_encoders``); none outside ComfyUI or where a ComfyUI
    has no such folder registered."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return []
    try:
        return [Path(p) for p in folder_paths.get_folder_paths(name)]
    except KeyError:
        return []


def register_model_folder() -> None:
    """Register ``models/show1`` with ComfyUI's ``folder_paths`` (no-op outside ComfyUI; idempotent)."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return
    default = os.path.join(folder_paths.models_dir, FOLDER_NAME)
    registered = folder_paths.folder_names_and_paths.get(FOLDER_NAME)
    if registered is None or default not in registered[0]:
        folder_paths.add_model_folder_path(FOLDER_NAME, default)


@dataclass(frozen=True)
class ModelRoot:
    """A folder searched for checkpoints, and the name messages give it instead of its absolute path."""

    path: Path
    label: str


def labelled_model_roots() -> list[ModelRoot]:
    """Folders searched for checkpoints, in order: ``$SHOW1_MODELS_DIR``, then ComfyUI's ``show1`` folders.

    Labels: ``$SHOW1_MODELS_DIR``; ``models/show1`` (any folder inside ComfyUI's models folder is
    named from it); ``<show1 folder N of extra_model_paths.yaml>`` for one elsewhere. Outside
    ComfyUI (and without the variable) the root is show1_core's default, shared with the
    ``show1`` command, named from the home folder (``~/.cache/show1/models``).
    """
    roots: dict[Path, str] = {}
    configured = os.environ.get(DEFAULT_MODELS_DIR_ENV)
    if configured:
        roots[Path(configured).expanduser()] = f"${DEFAULT_MODELS_DIR_ENV}"
    folder_paths = _folder_paths()
    if folder_paths is not None:
        register_model_folder()
        models_dir, extra = Path(folder_paths.models_dir), 0
        for folder in map(Path, folder_paths.get_folder_paths(FOLDER_NAME)):
            if folder.is_relative_to(models_dir):
                label = f"models/{folder.relative_to(models_dir).as_posix()}"
            else:
                extra += 1
                label = f"<{FOLDER_NAME} folder {extra} of extra_model_paths.yaml>"
            roots.setdefault(folder, label)
    elif not configured:
        default = default_models_dir()
        home = Path.home()
        roots[default] = f"~/{default.relative_to(home).as_posix()}" if default.is_relative_to(home) else str(default)
    return [ModelRoot(path, label) for path, label in roots.items()]


def _comfy_model_dirs() -> list[ModelRoot]:
    """ComfyUI's models folder itself (``models``), so files in its other folders are named from it too, and its
    ``input``, ``output`` and ``temp`` folders (a video's file is named from ``input``)."""
    folder_paths = _folder_paths()
    if folder_paths is None:
        return []
    roots = [ModelRoot(Path(folder_paths.models_dir), "models")]
    for label in ("input", "output", "temp"):
        where = getattr(folder_paths, f"get_{label}_directory", None)
        if where is not None:
            roots.append(ModelRoot(Path(where()), label))
    return roots


def model_roots() -> list[Path]:
    """The paths of :func:`labelled_model_roots`."""
    return [root.path for root in labelled_model_roots()]


def display_path(path: Path) -> str:
    """``path`` (inside a model root) as messages name it: from its root, ``models/show1/show-1-base``."""
    return public_message(str(path))


def _roots_text() -> str:
    return ", ".join(root.label for root in labelled_model_roots())


def public_message(text: str) -> str:
    """``text`` with every model root's absolute path (as given and with links resolved) replaced by its label."""
    replacements = {}
    for root in labelled_model_roots() + _comfy_model_dirs():
        for form in (str(root.path), os.path.realpath(root.path)):
            replacements.setdefault(form, root.label)
    for form in sorted(replacements, key=len, reverse=True):  # a root inside another root first
        text = re.sub(re.escape(form) + r"(?![\w-])", lambda _: replacements[form], text)
    return text


Method = TypeVar("Method", bound=Callable)


def client_safe(method: Method) -> Method:
    """Decorate a node method so the :class:`Show1Error` it raises names model folders by :func:`public_message`.

    show1_core names real paths (right for the ``show1`` command); what a node raises is sent
    to the ComfyUI client, which must not learn the server's folders. The error keeps its type.
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Show1Error as err:
            message = public_message(str(err))
            if message == str(err):
                raise
            raise type(err)(message) from err

    return wrapper


def download_root() -> Path:
    """Where a Hub repo id is downloaded on first use: the first model root."""
    return model_roots()[0]


def _checkpoint_folders() -> Iterator[Path]:
    for root in model_roots():
        if root.is_dir():
            yield from (child for child in sorted(root.iterdir()) if child.is_dir() and not child.name.startswith("."))


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stage_of_folder(folder: Path) -> ModelRole | None:
    """The stage a checkpoint folder's UNet belongs to (``None`` if it has no Show-1 UNet)."""
    return stage_of_unet_config(_read_config(folder / "unet" / "config.json"))


def encoder_of_folder(folder: Path) -> EncoderKind | None:
    """The text encoder a checkpoint folder holds with its tokenizer (``None`` if none)."""
    if not (folder / "tokenizer").is_dir():
        return None
    return ENCODER_MODEL_TYPE.get(_read_config(folder / "text_encoder" / "config.json").get("model_type"))


def _choices(repo_id: str, accept: Callable[[Path], bool]) -> list[str]:
    local = [folder.name for folder in _checkpoint_folders() if accept(folder)]
    return list(dict.fromkeys([repo_id] + local))


def stage_choices(stage: ModelRole) -> list[str]:
    """Loader options for a stage: its released repo id, then local folders holding that stage's UNet."""
    return _choices(CHECKPOINT_FOR_STAGE[stage].repo_id, lambda folder: stage_of_folder(folder) == stage)


def encoder_choices(kind: EncoderKind) -> list[str]:
    """Loader options for a text encoder: the repo id that ships it, then local folders holding one."""
    return _choices(ENCODER_REPO[kind], lambda folder: encoder_of_folder(folder) == kind)


def is_known_repo_id(name: str) -> bool:
    """Whether ``name`` is the Hub repo id of a released checkpoint (it may still need downloading)."""
    checkpoint = known_checkpoint(name)
    return checkpoint is not None and checkpoint.repo_id.lower() == name.lower()


def _refuse_name(name: str, why: str) -> InputError:
    # No leading "model": ComfyUI shows a VALIDATE_INPUTS message as "model - <message>".
    return InputError(
        f"{name!r}: {why}. Choose a checkpoint folder inside the Show-1 model folders ({_roots_text()}) "
        "or a Hub repo id such as showlab/show-1-base"
    )


def _relative_name(name: str) -> Path:
    if not str(name).strip():
        raise InputError("no model was chosen")
    try:
        relative = relative_name(name, "folder")
    except RefusedName as why:
        raise _refuse_name(name, str(why)) from None
    if not relative.parts:
        raise _refuse_name(name, "'.' is the models folder itself, not a checkpoint folder in it")
    return Path(*relative.parts)


def _outside_error(path: Path, root: Path) -> InputError:
    return InputError(
        f"{display_path(path)} is a link that leads outside the Show-1 models folder {display_path(root)}. Move the "
        f"files into that folder, or add the link's target as a model root (${DEFAULT_MODELS_DIR_ENV}, or a "
        f"'{FOLDER_NAME}:' entry in ComfyUI's extra_model_paths.yaml)"
    )


def check_contained(folder: Path, root: Path) -> None:
    """Refuse ``folder`` if it, or any file or folder a load could open below it, resolves outside ``root``.

    Links are followed (each resolved folder once), so a link inside a checkpoint folder that
    leads elsewhere is refused as well as a checkpoint folder that is itself such a link.
    """
    real_root = Path(os.path.realpath(root))

    def inside(path: Path) -> Path:
        real = Path(os.path.realpath(path))
        if real != real_root and real_root not in real.parents:
            raise _outside_error(path, root)
        return real

    visited = {inside(folder)}
    if not Path(folder).is_dir():
        return
    for current, dirs, files in os.walk(folder, followlinks=True):
        for name in files:
            inside(Path(current) / name)
        for name in list(dirs):
            real = inside(Path(current) / name)
            if real in visited:
                dirs.remove(name)  # a link back into a folder already walked: no loops
            visited.add(real)


def local_folder(name: str) -> Path:
    """The checkpoint folder ``name`` inside a model root; refuses paths and links leading out of the root."""
    relative = _relative_name(name)
    for root in model_roots():
        candidate = root / relative
        if not (candidate.exists() or candidate.is_symlink()):
            continue
        check_contained(candidate, root)
        if not candidate.is_dir():
            raise InputError(f"{display_path(candidate)} is a file; the loaders need a checkpoint folder (with unet/ and scheduler/)")
        return candidate
    raise MissingFilesError(
        f"no checkpoint folder {name!r} in {_roots_text()}. Put the folder there, or choose a Hub "
        "repo id (for example showlab/show-1-base) to download it there on first use"
    )


def _check_repo_folders(name: str) -> None:
    """Refuse a known repo id whose folder in any model root leads out of that root."""
    folder_name = known_checkpoint(name).name
    for root in model_roots():
        candidate = root / folder_name
        if candidate.exists() or candidate.is_symlink():
            check_contained(candidate, root)


def check_model_name(name: str) -> None:
    """Raise a clear error unless ``name`` is a known repo id or an existing folder inside a model root."""
    if is_known_repo_id(name):
        _check_repo_folders(name)
    else:
        local_folder(name)


def resolve_model(name: str, with_text_encoder: bool = False) -> Path:
    """The local folder for a loader's ``model`` value, downloading a known repo id on first use.

    A repo id is looked for in every model root (as ``<root>/<name>``) before it is
    downloaded into :func:`download_root`. Every path the load will open is checked to stay
    inside its root, after links are resolved.
    """
    if not is_known_repo_id(name):
        return local_folder(name)
    _check_repo_folders(name)
    for root in model_roots():
        try:
            return resolve_checkpoint(name, root, with_text_encoder=with_text_encoder, allow_download=False)
        except MissingFilesError:
            continue
    folder = resolve_checkpoint(name, download_root(), with_text_encoder=with_text_encoder, allow_download=True)
    check_contained(folder, download_root())
    return folder
