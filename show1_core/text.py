"""Text encoders: T5-XXL for stages 1-3 and CLIP for stage 4, with an embeddings cache.

Tokenisation follows the original exactly: T5 prompts are lower-cased and stripped (or
cleaned, on request), padded to 77 tokens, and encoded with their attention mask; CLIP
prompts are padded to the tokenizer's 77 tokens and encoded without a mask, as diffusers'
video-to-video pipeline does. Embeddings are cached by (encoder, prompt), in memory and
optionally on disk, so re-runs never load the ~9 GB T5 encoder again; the encoder is
loaded only when a prompt is missing. Where it runs and whether it stays loaded between
prompts is its :class:`EncoderPlacement`'s choice: show1_core's default releases it right
after use; a host with its own model management (ComfyUI) keeps it and offloads it itself.
The T5 weights may also come from one ``.safetensors`` file (:mod:`.loading.t5_file`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .captions import preprocess_prompt
from .embeds import PromptEmbeds
from .errors import InputError, MissingFilesError, OutputError
from .loading.components import load_text_encoder
from .loading.t5_file import load_t5_file
from .memory import ModelPlacer
from .outputs import atomic_write
from .speed import store_in_fp8

MAX_TOKENS = 77
EMBEDDINGS_FOLDER = ".embeddings"
HASHED_FILE_LIMIT = 64 * 1024 * 1024
"""Files up to this size (configs, tokenizers) are identified by content; larger ones (weights) by size and mtime."""
_logger = logging.getLogger("show1")
_content_hashes: dict[tuple[str, int, int], str] = {}


class EncoderKind(str, Enum):
    """Which text encoder a stage uses."""

    T5 = "t5"
    CLIP = "clip"


def _usable_embedding(tensor: torch.Tensor, shape: tuple[int, ...] | None) -> bool:
    """Of ``shape`` (where given), floating point and finite: what an encoder writes."""
    shape_ok = shape is None or tuple(tensor.shape) == shape
    return shape_ok and tensor.is_floating_point() and bool(torch.isfinite(tensor).all())


def check_prompt(text: object, name: str = "prompt") -> str:
    """``text`` if it is a string that can be written as UTF-8; otherwise :class:`InputError` saying where it is not."""
    if not isinstance(text, str):
        raise InputError(f"the {name} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(
            f"the {name} holds {text[err.start]!r} at character {err.start + 1}, which is not text (a byte that is not "
            "UTF-8, from a terminal in another encoding?); give it as UTF-8"
        ) from None
    return text


class EmbeddingCache:
    """Prompt embeddings by (encoder key, prompt): an in-memory LRU plus optional safetensors files."""

    def __init__(self, directory: Path | None = None, max_entries: int = 64, max_files: int = 256):
        """Keep ``max_entries`` embeddings in memory and the newest ``max_files`` on disk (a T5 one is 1.3 MB)."""
        self.directory = Path(directory) if directory else None
        self.max_entries = max_entries
        self.max_files = max_files
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(encoder_key: str, prompt: str) -> str:
        return hashlib.sha256(f"{encoder_key}\0{prompt}".encode()).hexdigest()

    def get(self, encoder_key: str, prompt: str, shape: tuple[int, ...] | None = None) -> torch.Tensor | None:
        """The cached ``(1, tokens, width)`` embedding, or ``None``.

        A file that cannot be read, or holds another ``shape`` (where given), a dtype that is not
        floating point, or NaN or infinite values, is deleted and answered ``None``: it is recomputed.
        """
        key = self._key(encoder_key, prompt)
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        path = self.directory / f"{key}.safetensors" if self.directory is not None else None
        if path is not None and path.is_file():
            try:
                tensor = load_file(str(path))["embedding"]
            except Exception:  # a damaged cache file is simply recomputed
                tensor = None
            if tensor is None or not _usable_embedding(tensor, shape):
                path.unlink(missing_ok=True)
                return None
            self._remember(key, tensor)
            return tensor
        return None

    def put(self, encoder_key: str, prompt: str, embedding: torch.Tensor) -> None:
        """Store an embedding (kept on the CPU)."""
        key = self._key(encoder_key, prompt)
        embedding = embedding.detach().to("cpu").contiguous()
        self._remember(key, embedding)
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with atomic_write(self.directory / f"{key}.safetensors") as temporary:
                    save_file({"embedding": embedding}, str(temporary))
                self._prune_files()
            except (OSError, OutputError) as err:  # the embedding is still in memory; later runs recompute it
                _logger.warning("note: cannot write the embeddings cache in %s (%s); keeping it in memory only", self.directory, err)
                self.directory = None

    def _prune_files(self) -> None:
        files = sorted(self.directory.glob("[!.]*.safetensors"), key=lambda f: f.stat().st_mtime)  # not others' unfinished
        for old in files[: max(0, len(files) - self.max_files)]:
            old.unlink(missing_ok=True)

    def _remember(self, key: str, tensor: torch.Tensor) -> None:
        with self._lock:
            self._memory[key] = tensor
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)


def _file_identity(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > HASHED_FILE_LIMIT:
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _content_hashes:
        _content_hashes[memo] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _content_hashes[memo]


def encoder_identity(folder: Path) -> str:
    """A digest of a checkpoint's ``text_encoder/`` and ``tokenizer/`` files, independent of where they live.

    Configs and tokenizer files count by content, weight files by size and modification time, so
    rewriting or replacing the encoder changes the identity while moving or copying it with its
    times (``cp -p``) keeps it. Missing folders count as empty.
    """
    digest = hashlib.sha256()
    for part in ("text_encoder", "tokenizer"):
        root = Path(folder) / part
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for file in files:
            digest.update(f"{file.relative_to(folder).as_posix()}\0{_file_identity(file)}\0".encode())
    return digest.hexdigest()


@dataclass
class TextEncoderSpec:
    """Where an encoder lives: a checkpoint folder holding ``text_encoder/`` and ``tokenizer/``.

    With ``weights_file`` (T5 only) the weights come from that single ``.safetensors`` file and
    the folder supplies only the tokenizer and ``text_encoder/config.json``.
    """

    folder: Path
    kind: EncoderKind
    dtype: torch.dtype = torch.float32
    weights_file: Path | None = None
    fp8_weights: bool = False
    """Store the encoder's weights in fp8 (computing in ``dtype``): half the memory, slightly different embeddings."""

    @property
    def key(self) -> str:
        """Identity of the encoder for the cache: kind, precision (fp8 storage included) and the digest of its files (never its path)."""
        identity = encoder_identity(Path(self.folder))
        if self.weights_file is not None:
            identity += ":" + _file_identity(Path(self.weights_file))
        storage = ":fp8" if self.fp8_weights else ""
        return f"{self.kind.value}:{identity}:{self.dtype}{storage}"


class EncoderPlacement(Protocol):
    """Where a text encoder runs, and whether the loaded model stays loaded between prompts."""

    device: torch.device
    keeps_model: bool

    def running(self, model: nn.Module) -> AbstractContextManager[nn.Module]:
        """Put ``model`` where it runs for one encode; yields the module to call."""

    def release(self, model: nn.Module) -> None:
        """Free a model that is not kept (called after each encode when ``keeps_model`` is false)."""


class PlacerEncoderPlacement:
    """show1_core's placement: the :class:`ModelPlacer` streams or places the encoder, which is released after use."""

    keeps_model = False

    def __init__(self, placer: ModelPlacer):
        self.placer = placer
        self.device = placer.device

    def running(self, model: nn.Module) -> AbstractContextManager[nn.Module]:
        """Block by block on an accelerator (per the policy), else whole."""
        return self.placer.streamed(model)

    def release(self, model: nn.Module) -> None:
        """Back to the CPU, forgotten by the placer."""
        self.placer.release(model)


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "show1" / "embeddings"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        return False
    return True


def embeddings_cache_dir(models_dir: Path) -> Path | None:
    """``<models_dir>/.embeddings``, or the user cache folder when that cannot be written, else ``None``.

    A fallback is announced in one line (logger ``show1``); with ``None`` embeddings stay in memory.
    """
    preferred = Path(models_dir) / EMBEDDINGS_FOLDER
    if _writable(preferred):
        return preferred
    fallback = _user_cache_dir()
    if _writable(fallback):
        _logger.warning("note: %s cannot be written; caching prompt embeddings in %s instead", preferred, fallback)
        return fallback
    _logger.warning("note: neither %s nor %s can be written; prompt embeddings are cached in memory only", preferred, fallback)
    return None


class TextEncoder:
    """Encodes prompts for one kind of stage, loading the model only on a cache miss."""

    def __init__(
        self,
        spec: TextEncoderSpec,
        placer: ModelPlacer | None = None,
        cache: EmbeddingCache | None = None,
        loader: Callable[[], tuple[object, nn.Module]] | None = None,
        placement: EncoderPlacement | None = None,
    ):
        """``placement`` decides where the model runs (default: ``placer``'s, released after each encode)."""
        self.spec = spec
        self.placement = placement or PlacerEncoderPlacement(placer or ModelPlacer("cpu"))
        self.cache = cache if cache is not None else EmbeddingCache()
        self._loader = loader
        self._kept: tuple[object, nn.Module] | None = None
        self.loads = 0
        """How many times the encoder model was loaded (0 when every prompt came from the cache)."""

    def _load(self) -> tuple[object, nn.Module]:
        tokenizer, model = self._load_as_stored()
        if self.spec.fp8_weights:
            store_in_fp8(model, compute_dtype=self.spec.dtype)
        return tokenizer, model

    def _load_as_stored(self) -> tuple[object, nn.Module]:
        if self._loader is not None:
            self.loads += 1
            return self._loader()
        folder = Path(self.spec.folder)
        for part in ("text_encoder", "tokenizer"):
            if not (folder / part).is_dir():
                raise MissingFilesError(
                    f"{folder / part} is missing: the {self.spec.kind.value.upper()} text encoder needs both "
                    "text_encoder/ and tokenizer/ folders"
                )
        tokenizer = load_tokenizer(folder / "tokenizer", self.spec.kind)
        if self.spec.weights_file is not None:
            model = load_t5_file(self.spec.weights_file, folder / "text_encoder" / "config.json", self.spec.dtype)
        else:
            model = load_text_encoder(folder / "text_encoder", dtype=self.spec.dtype)
        self.loads += 1
        return tokenizer, model

    def _prepare(self, prompt: str, clean_caption: bool) -> str:
        return preprocess_prompt(prompt, clean_caption) if self.spec.kind == EncoderKind.T5 else prompt

    def _shape(self) -> tuple[int, int, int] | None:
        """Shape of one prompt's embedding, from the encoder's config (``None`` if it cannot be read)."""
        try:
            config = json.loads((Path(self.spec.folder) / "text_encoder" / "config.json").read_text())
        except (OSError, ValueError):
            return None
        width = config.get("d_model", config.get("hidden_size"))
        return (1, MAX_TOKENS, width) if isinstance(width, int) else None

    def _cached(self, text: str) -> torch.Tensor | None:
        return self.cache.get(self.spec.key, text, self._shape())

    def is_cached(self, prompt: str, negative_prompt: str = "", clean_caption: bool = False) -> bool:
        """Whether :meth:`encode` would answer from the cache, without loading the encoder."""
        check_prompt(prompt)
        check_prompt(negative_prompt, "negative prompt")
        texts = (self._prepare(prompt, clean_caption), self._prepare(negative_prompt, clean_caption))
        return all(self._cached(t) is not None for t in texts)

    @torch.no_grad()
    def encode(self, prompt: str, negative_prompt: str = "", clean_caption: bool = False) -> PromptEmbeds:
        """Embeddings of ``prompt`` and ``negative_prompt`` (each ``(1, 77, width)``, on the CPU).

        Raises :class:`InputError` for a prompt that is not text or cannot be written as UTF-8.
        """
        check_prompt(prompt)
        check_prompt(negative_prompt, "negative prompt")
        texts = [self._prepare(prompt, clean_caption), self._prepare(negative_prompt, clean_caption)]
        found = [self._cached(t) for t in texts]
        missing = [t for t, e in zip(texts, found) if e is None]
        if missing:
            tokenizer, model = self._kept or self._load()
            if self.placement.keeps_model:
                self._kept = (tokenizer, model)
            try:
                with self.placement.running(model) as running:
                    for text in missing:
                        self.cache.put(self.spec.key, text, self._run(tokenizer, running, text))
            finally:
                if not self.placement.keeps_model:
                    self.placement.release(model)  # the encoder leaves memory right after use
                del model
            found = [self._cached(t) for t in texts]
        return PromptEmbeds(positive=found[0], negative=found[1])

    def _run(self, tokenizer, model: nn.Module, text: str) -> torch.Tensor:
        tokens = tokenizer(
            [text], padding="max_length", max_length=MAX_TOKENS, truncation=True, add_special_tokens=True, return_tensors="pt"
        )
        device = self.placement.device
        mask = tokens.attention_mask.to(device) if self.spec.kind == EncoderKind.T5 else None
        return model(tokens.input_ids.to(device), attention_mask=mask)[0]


def load_tokenizer(folder: Path, kind: EncoderKind):
    """The T5 or CLIP tokenizer of a ``tokenizer/`` folder (local files only)."""
    from transformers import CLIPTokenizer, T5Tokenizer

    cls = T5Tokenizer if kind == EncoderKind.T5 else CLIPTokenizer
    try:
        return cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise MissingFilesError(f"cannot load the {kind.value.upper()} tokenizer from {folder}: {err}") from err
