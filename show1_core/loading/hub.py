"""Turning a checkpoint reference (local folder, known name or Hub repo id) into a local folder.

Downloads go through ``huggingface_hub.snapshot_download`` into ``<models_dir>/<name>``
(not the hidden Hub cache), fetch only the files a stage needs, show progress bars and
resume after an interruption. Offline, gated and unknown repositories become clear
:class:`~show1_core.errors.HubError` messages that say what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import socket
from pathlib import Path
from typing import Iterator

from ..errors import CorruptCheckpointError, GatedRepoAccessError, HubError, MissingFilesError, OfflineError
from .registry import KnownCheckpoint, known_checkpoint
from .verify import check_recorded, hub_record, read_marker, recorded_files, verify_folder
from .weights import find_weights

MODEL_COMPONENTS = ("unet", "vae", "text_encoder")
DEFAULT_MODELS_DIR_ENV = "SHOW1_MODELS_DIR"


def default_models_dir() -> Path:
    """``$SHOW1_MODELS_DIR`` or ``~/.cache/show1/models``."""
    configured = os.environ.get(DEFAULT_MODELS_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "show1" / "models"


def _component_ready(folder: Path, component: str) -> bool:
    if component in MODEL_COMPONENTS:
        if not (folder / "config.json").is_file():
            return False
        try:
            find_weights(folder)
        except MissingFilesError:
            return False
        return True
    if component.endswith("scheduler"):
        return (folder / "scheduler_config.json").is_file()
    return folder.is_dir() and any(folder.iterdir())


def missing_components(folder: Path, components: list[str]) -> list[str]:
    """Components of a checkpoint folder that are absent or incomplete."""
    return [c for c in components if not _component_ready(folder / c, c)]


def _components_for(checkpoint: KnownCheckpoint | None, with_text_encoder: bool) -> list[str]:
    if checkpoint is None:
        return ["unet", "scheduler"]
    extra = ["text_encoder", "tokenizer"] if with_text_encoder else []
    return list(dict.fromkeys(list(checkpoint.components) + extra))


def download_patterns(checkpoint: KnownCheckpoint | None, components: list[str]) -> list[str]:
    """Hub file patterns of ``components`` (a known checkpoint narrows them to one weight variant)."""
    return checkpoint.allow_patterns(components) if checkpoint else ["model_index.json"] + [f"{c}/*" for c in components]


def _manual_download_hint(repo_id: str, target: Path, patterns: list[str]) -> str:
    includes = " ".join(f"--include '{p}'" for p in patterns)
    return f"hf download {repo_id} {includes} --local-dir {target}"


def download_command(repo_id: str, models_dir: Path | str | None = None, *flags: str) -> str:
    """The ``show1 download`` command line that fetches ``repo_id`` into ``models_dir`` (omitted when the default)."""
    words = ["show1", "download", repo_id]
    if models_dir is not None and Path(models_dir).expanduser().absolute() != default_models_dir().absolute():
        words += ["--models-dir", str(models_dir)]
    return shlex.join(words + list(flags))


def _is_repo_id(text: str) -> bool:
    """Whether ``text`` is ``owner/name`` as the Hub allows it (huggingface_hub's check: no path tricks such as ``..``)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return text.count("/") == 1


def _is_network_error(err: Exception) -> bool:
    """Connection failures: the operating system's, or those of the HTTP stack huggingface_hub uses (httpx or requests)."""
    if isinstance(err, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return type(err).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "requests", "urllib3")


def _is_cut_download(err: OSError) -> bool:
    """huggingface_hub's "Consistency check failed" (a file arrived shorter than announced): a plain ``OSError``, so only its text tells."""
    return type(err) is OSError and "consistency check" in str(err).lower()


@contextlib.contextmanager
def _hub_errors(repo_id: str, target: Path, patterns: list[str], checkpoint: KnownCheckpoint | None) -> Iterator[None]:
    """Turn the Hub's exceptions into :class:`HubError` messages that say what to do."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    hint = _manual_download_hint(repo_id, target, patterns)
    try:
        yield
    except GatedRepoError as err:
        url = checkpoint.licence_url if checkpoint and checkpoint.licence_url else f"https://huggingface.co/{repo_id}"
        raise GatedRepoAccessError(
            f"{repo_id} is gated: open {url}, log in and accept its licence, then authenticate this machine with "
            f"`hf auth login` (or set HF_TOKEN) and run again. Without it, use the bilinear first frame "
            f"(--no-first-frame-model)."
        ) from err
    except RepositoryNotFoundError as err:
        raise HubError(f"{repo_id} was not found on the Hub (or it is private and you are not logged in)") from err
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        raise OfflineError(
            f"cannot download {repo_id}: the Hub is not reachable (or HF_HUB_OFFLINE is set) and {target} is incomplete. "
            f"On a machine with internet access run `{hint}` and copy the folder to {target}."
        ) from err
    except HfHubHTTPError as err:
        raise HubError(f"downloading {repo_id} failed: {err}. Run again to resume, or download manually: `{hint}`") from err
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise HubError(f"not enough disk space in {target.parent} to download {repo_id}") from err
        if _is_network_error(err) or _is_cut_download(err):
            raise OfflineError(f"cannot download {repo_id} ({err}). Run again to resume, or download manually: `{hint}`") from err
        raise
    except Exception as err:
        if _is_network_error(err):
            raise OfflineError(
                f"the download of {repo_id} into {target} was interrupted ({type(err).__name__}: {err}); the incomplete "
                f"file was not kept. Run the same command again to resume, or download manually: `{hint}`"
            ) from err
        raise


def download(repo_id: str, target: Path, patterns: list[str], checkpoint: KnownCheckpoint | None = None) -> Path:
    """Fetch ``patterns`` of ``repo_id`` into ``target`` (resumable, with progress bars), then verify every file.

    Files whose size or checksum differ from the Hub's record are deleted and fetched once more;
    if they are still wrong, :class:`CorruptCheckpointError` names them.
    """
    from huggingface_hub import snapshot_download

    bad: list[str] = []
    with _hub_errors(repo_id, target, patterns, checkpoint):
        for _ in range(2):
            snapshot_download(repo_id, local_dir=target, allow_patterns=patterns)
            revision, expected = hub_record(repo_id, patterns)
            bad = verify_folder(target, repo_id, revision, expected)
            if not bad:
                return target
            for name in bad:
                (target / name).unlink(missing_ok=True)
    raise CorruptCheckpointError(
        f"{', '.join(bad)} of {repo_id} did not match the Hub's checksums twice and were deleted from {target}. "
        "Check the network (a proxy rewriting downloads?) and run again"
    )


def _recorded(folder: Path, repo_id: str, models_dir: Path | str | None) -> tuple[str, dict]:
    """The folder's own record of its last verified download (commit, files), without the network."""
    marker = read_marker(folder)
    if marker is None:
        raise OfflineError(
            f"{folder} holds no record of a verified download (show1 download writes one), so it cannot be verified "
            f"offline. Run `{download_command(repo_id, models_dir, '--verify')}` without --offline to check it against the Hub"
        )
    return str(marker.get("revision", "")), recorded_files(marker)


def _hub_or_recorded(folder: Path, repo_id: str, patterns: list[str], checkpoint: KnownCheckpoint | None) -> tuple[str, dict]:
    """The Hub's record of ``patterns`` (commit, files), or the folder's own record when the Hub is unreachable."""
    try:
        with _hub_errors(repo_id, folder, patterns, checkpoint):
            return hub_record(repo_id, patterns)
    except OfflineError:
        marker = read_marker(folder)
        if marker is None:
            raise
        return str(marker.get("revision", "")), recorded_files(marker)


def models_folder(models_dir: Path | str | None) -> Path:
    """The folder of checkpoint folders (``models_dir``, default :func:`default_models_dir`).

    Raises :class:`MissingFilesError` for a file, and for one checkpoint folder given in its place
    (one holding ``model_index.json`` or ``unet/``), naming the folder that was meant.
    """
    folder = Path(models_dir or default_models_dir()).expanduser()
    if folder.exists() and not folder.is_dir():
        raise MissingFilesError(
            f"the models folder {folder} is a file; give the folder that holds the checkpoint folders (show-1-base, ...)"
        )
    if (folder / "model_index.json").is_file() or (folder / "unet").is_dir():
        raise MissingFilesError(
            f"the models folder {folder} is one checkpoint folder, not the folder that holds them; give its parent "
            f"({folder.parent}), where the checkpoints sit as show-1-base, show-1-interpolation, ..."
        )
    return folder


def verify_checkpoint(
    reference: str, models_dir: Path | str | None = None, *, with_text_encoder: bool = False, allow_download: bool = True
) -> list[str]:
    """Re-hash a known checkpoint's downloaded files against the Hub's record and return the damaged ones.

    Damaged files are deleted and downloaded again when ``allow_download``; otherwise, or if that
    fails, :class:`CorruptCheckpointError` names them. Without ``allow_download`` (``--offline``) or
    without the Hub, the record kept from the last download is used and the network is never
    contacted offline (a folder never verified then raises :class:`OfflineError`).
    """
    checkpoint = known_checkpoint(str(reference))
    if checkpoint is None:
        raise MissingFilesError(f"{reference} is not a known checkpoint name or repo id")
    folder = models_folder(models_dir) / checkpoint.name
    patterns = download_patterns(checkpoint, _components_for(checkpoint, with_text_encoder))
    if allow_download:
        revision, expected = _hub_or_recorded(folder, checkpoint.repo_id, patterns, checkpoint)
    else:
        revision, expected = _recorded(folder, checkpoint.repo_id, models_dir)
    bad = verify_folder(folder, checkpoint.repo_id, revision, expected, full=True)
    if bad and not allow_download:
        raise CorruptCheckpointError(
            f"{', '.join(bad)} in {folder} do not match the checksums of {checkpoint.repo_id}. Run "
            f"`{download_command(checkpoint.repo_id, models_dir, '--verify')}` without --offline to fetch them again"
        )
    for name in bad:
        (folder / name).unlink()
    if bad:
        download(checkpoint.repo_id, folder, patterns, checkpoint)
    return bad


def _checked(folder: Path) -> Path:
    """``folder``, after checking that the files verified when it was downloaded are unchanged."""
    marker = read_marker(folder)
    if marker is None:
        return folder
    repo_id = str(marker.get("repo_id"))
    known = known_checkpoint(repo_id)
    if known is not None and folder.name == known.name:
        hint = f"Fetch them again with `{download_command(repo_id, folder.parent, '--verify')}`."
    else:
        hint = f"Download {repo_id} into {folder} again."
    check_recorded(folder, hint)
    return folder


def resolve_checkpoint(
    reference: str | Path,
    models_dir: Path | str | None = None,
    *,
    with_text_encoder: bool = False,
    allow_download: bool = True,
) -> Path:
    """Local folder for a checkpoint reference, downloading what is missing.

    Args:
        reference: a known name (``show-1-base``) or repo id (``showlab/show-1-base``), which
            always resolve inside ``models_dir``; another Hub repo id; or an existing folder.
        models_dir: where downloads go (one subfolder per checkpoint); default
            :func:`default_models_dir`.
        with_text_encoder: also fetch the T5 ``text_encoder``/``tokenizer`` (19 GB for show-1-base).
        allow_download: if ``False``, raise :class:`MissingFilesError` instead of downloading.
    """
    text = str(reference)
    checkpoint = known_checkpoint(text)
    path = Path(reference).expanduser()
    if checkpoint is None and path.is_dir():  # known names and repo ids always mean the models folder
        return _checked(path)
    if checkpoint is None and not _is_repo_id(text):
        raise MissingFilesError(f"{reference} is not a folder, a known checkpoint name or a Hub repo id")
    repo_id = checkpoint.repo_id if checkpoint else text
    target = models_folder(models_dir) / (checkpoint.name if checkpoint else text.split("/")[1])
    components = _components_for(checkpoint, with_text_encoder)
    absent = missing_components(target, components)
    if not absent:
        return _checked(target)
    patterns = download_patterns(checkpoint, components)
    if not allow_download:
        raise MissingFilesError(
            f"{target} lacks {', '.join(absent)} of {repo_id}. Download it with `{download_command(repo_id, models_dir)}` "
            f"or `{_manual_download_hint(repo_id, target, patterns)}`"
        )
    download(repo_id, target, patterns, checkpoint)
    still = missing_components(target, components)
    if still:
        raise MissingFilesError(f"after downloading {repo_id}, {target} still lacks {', '.join(still)}")
    return target


T5_CONFIG_PATTERNS = ["tokenizer/*", "text_encoder/config.json"]
"""What a single-file T5 needs from show-1-base: its tokenizer and the encoder's config (about 1 MB)."""


def resolve_t5_tokenizer(models_dir: Path | str | None = None, allow_download: bool = True) -> Path:
    """The show-1-base folder holding the T5 tokenizer and ``text_encoder/config.json``, fetching only those.

    A single-file T5-XXL (:mod:`.t5_file`) brings the weights; Show-1's tokenisation and the
    architecture come from here.
    """
    checkpoint = known_checkpoint("showlab/show-1-base")
    target = models_folder(models_dir) / checkpoint.name
    if _component_ready(target / "tokenizer", "tokenizer") and (target / "text_encoder" / "config.json").is_file():
        return target
    if not allow_download:
        raise MissingFilesError(
            f"{target} lacks the T5 tokenizer and text_encoder/config.json of {checkpoint.repo_id}, which a single-file T5 "
            f"uses. Download them (about 1 MB) with `{_manual_download_hint(checkpoint.repo_id, target, T5_CONFIG_PATTERNS)}`"
        )
    download(checkpoint.repo_id, target, T5_CONFIG_PATTERNS, checkpoint)
    return target
