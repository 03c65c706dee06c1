"""Memory policy bookkeeping and out-of-memory retries (device moves themselves need a GPU: see bench/)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from show1_core.errors import OutOfMemoryError
from show1_core.memory import MemoryPolicy, ModelPlacer, retry_smaller_on_oom


def test_balanced_keeps_nothing_resident_after_a_stage():
    placer = ModelPlacer("cpu", MemoryPolicy.BALANCED)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    with placer.on_device(a):
        assert placer._resident == [a]
        with placer.on_device(b):
            assert placer._resident == [b]  # a had to leave first
    assert placer._resident == []


def test_all_resident_keeps_models():
    placer = ModelPlacer("cpu", MemoryPolicy.ALL_RESIDENT)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    with placer.on_device(a):
        pass
    with placer.on_device(b):
        pass
    assert placer._resident == [a, b]


def test_a_failing_stage_does_not_strand_models():
    placer = ModelPlacer("cpu", MemoryPolicy.LOW_VRAM)
    with pytest.raises(RuntimeError):
        with placer.on_device(nn.Linear(2, 2)):
            raise RuntimeError("stage failed")
    assert placer._resident == []


def test_oom_retries_with_smaller_chunks():
    tried = []

    def run(chunk):
        tried.append(chunk)
        if chunk > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return chunk

    assert retry_smaller_on_oom(run, 8, "cpu", "decoding") == 2
    assert tried == [8, 4, 2]


def test_oom_at_chunk_one_becomes_an_actionable_error():
    def run(chunk):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(OutOfMemoryError, match="low-vram"):
        retry_smaller_on_oom(run, 4, "cpu", "decoding")


def test_other_errors_are_not_retried():
    def run(chunk):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        retry_smaller_on_oom(run, 4, "cpu", "decoding")
