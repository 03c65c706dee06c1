"""Errors that show1 raises on purpose.

Every error a user can cause (a wrong file, an offline Hub, a cancelled run, odd input)
is one of these, with a message that says what happened and what to do about it.
Catch :class:`Show1Error` to catch them all.
"""

from __future__ import annotations

from typing import Callable, Sequence


class Show1Error(Exception):
    """Base class of every deliberate show1 error."""


class CheckpointError(Show1Error):
    """A checkpoint folder or file cannot be used."""


class MissingFilesError(CheckpointError):
    """Files a component needs are not there."""


class CorruptCheckpointError(CheckpointError):
    """A weights file exists but cannot be read (truncated download, wrong format)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickled ``.bin`` file holds more than tensors and was refused."""


class WrongStageError(CheckpointError):
    """A checkpoint of one cascade stage was given where another stage was expected."""


class StateDictMismatchError(CheckpointError):
    """Weights do not fit the model built from the config (missing, extra or mis-shaped keys)."""


class HubError(Show1Error):
    """A Hugging Face Hub download failed (offline, gated, unknown repo)."""


class GatedRepoAccessError(HubError):
    """The repository needs its licence accepted and a logged-in token."""


class OfflineError(HubError):
    """The Hub cannot be reached and the files are not on disk."""


class InputError(Show1Error, ValueError):
    """Stage inputs are invalid (sizes, frame counts, embeddings, settings)."""


class GenerationCancelled(Show1Error):
    """A run was cancelled between denoising steps."""


class NonFiniteOutputError(Show1Error):
    """A stage produced NaN or infinite values (usually fp16 overflow)."""


class OutOfMemoryError(Show1Error):
    """The accelerator ran out of memory even after retrying with smaller chunks."""


class OutputError(Show1Error):
    """An output file cannot be written where asked, or was written but does not read back."""


class InvalidSettingsError(InputError):
    """Stage settings that cannot be used, every problem at once, before any model runs.

    ``problems`` holds ``(setting, why)`` pairs: ``("pixel_sr.noise_level", "must be ...")``,
    with ``None`` as the setting of a problem of a whole stage (such as its memory). ``label``
    names a setting in the message (the command line names its flags).
    """

    def __init__(self, problems: Sequence[tuple[str | None, str]], label: Callable[[str], str] = str):
        self.problems = list(problems)
        lines = [why if setting is None else f"{label(setting)} {why}" for setting, why in self.problems]
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{len(lines)} settings cannot be used:\n  " + "\n  ".join(lines))
