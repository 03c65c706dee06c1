"""What ``show1 generate`` and ``show1 demo`` show while they run.

A line per phase that has no steps (``loading show-1-base …``, ``encoding the prompt …``),
one progress bar per stage that closes when the stage ends, and at the end the time each
phase took. Everything goes to stderr, so stdout keeps only the files written. The Python
API prints nothing by itself; pass a :class:`RunDisplay`'s methods to
:meth:`~show1_core.cascade.Show1Cascade.run` to get the same.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

import torch

from .cascade import Phase
from .stages import StepEvent


class RunDisplay:
    """Phases, progress bars and a time summary for one run of the cascade."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.perf_counter):
        self._stream = stream or sys.stderr
        self._clock = clock
        self._bar = None
        self._bar_stage: str | None = None
        self._current: tuple[str, float] | None = None
        self.times: list[tuple[str, float]] = []
        """(phase label, seconds) of every finished phase, in order."""

    def phase(self, phase: Phase) -> None:
        """A phase begins: the previous one ends; phases without steps print a line."""
        self._end_phase()
        if phase.kind != "stage":
            print(f"{phase.label} …", file=self._stream, flush=True)
        self._current = (phase.label, self._clock())

    def step(self, event: StepEvent) -> None:
        """A stage's step event: opens the stage's bar on its first event, then moves it."""
        from tqdm.auto import tqdm

        if self._bar is None or event.stage != self._bar_stage:
            self.close()
            self._bar = tqdm(total=event.total, desc=event.stage, unit="step", file=self._stream)
            self._bar_stage = event.stage
        self._bar.n = event.step
        self._bar.refresh()

    def stage_done(self, name: str, video: torch.Tensor, fps: float) -> None:
        """A stage finished (the cascade's ``on_stage``): its bar closes and its time is taken."""
        self._end_phase()

    def summary(self) -> str:
        """The time of every phase and the total, one per line (ends the current phase)."""
        self._end_phase()
        width = max((len(label) for label, _ in self.times), default=0)
        lines = [f"  {label:<{width}}  {seconds:7.1f} s" for label, seconds in self.times]
        total = sum(seconds for _, seconds in self.times)
        return "\n".join([f"time per phase (total {total:.1f} s):", *lines])

    def close(self) -> None:
        """Close an open bar (after an error or a cancel)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _end_phase(self) -> None:
        self.close()
        if self._current is not None:
            label, began = self._current
            self.times.append((label, self._clock() - began))
            self._current = None
