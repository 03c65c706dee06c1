"""Memory policies, seen through where the parameters are (``meta`` stands in for the accelerator), and out-of-memory retries."""

from __future__ import annotations

import contextlib

import pytest
import torch
from devices import ACCELERATOR, RoundTrip, where

from show1_core.errors import OutOfMemoryError
from show1_core.memory import MemoryPolicy, ModelPlacer, retry_smaller_on_oom, tiled_vae


def test_balanced_keeps_one_model_on_the_accelerator_until_another_needs_it():
    placer = ModelPlacer(ACCELERATOR, MemoryPolicy.BALANCED)
    a, b = RoundTrip(), RoundTrip()
    with placer.on_device(a):
        assert where(a) == "meta"
    assert where(a) == "meta"  # stays for the next run of the same stage
    with placer.on_device(b):
        assert (where(a), where(b)) == ("cpu", "meta")  # a had to leave first
    assert where(b) == "meta"


def test_all_resident_keeps_every_model_on_the_accelerator():
    placer = ModelPlacer(ACCELERATOR, MemoryPolicy.ALL_RESIDENT)
    a, b = RoundTrip(), RoundTrip()
    with placer.on_device(a):
        pass
    with placer.on_device(b):
        assert (where(a), where(b)) == ("meta", "meta")


@pytest.mark.parametrize("fails", [False, True])
def test_low_vram_returns_the_model_after_its_stage_even_when_the_stage_fails(fails):
    placer = ModelPlacer(ACCELERATOR, MemoryPolicy.LOW_VRAM)
    a = RoundTrip()
    weight = a.weight.detach().clone()
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with placer.on_device(a):
            assert where(a) == "meta"
            if fails:
                raise RuntimeError("stage failed")
    assert where(a) == "cpu" and torch.equal(a.weight, weight)


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


def test_tiled_vae_decodes_close_to_untiled_and_restores_the_vae(tiny_models):
    from show1_core.loading import load_stage_model
    from show1_core.stages import decode_latents

    vae = load_stage_model(tiny_models["show-1-sr2"]).vae
    latents = torch.randn(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    whole = decode_latents(vae, latents)
    with tiled_vae(vae, True, tile=64):
        assert vae.use_tiling
        tiled = decode_latents(vae, latents)
    assert not vae.use_tiling and vae.tile_sample_min_size == vae.config.sample_size
    assert tiled.shape == whole.shape == (1, 3, 2, 128, 128)
    assert not torch.equal(tiled, whole)  # tiles were decoded separately and blended ...
    other = decode_latents(vae, torch.randn(1, 4, 2, 16, 16, generator=torch.Generator().manual_seed(1)))

    def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    # ... into the same picture: far closer to the untiled decode than to another latent's decode (per-tile
    # GroupNorm statistics keep a random tiny VAE from matching closely, so the bound is relative)
    assert correlation(tiled, whole) > 0.3 and correlation(tiled, whole) > correlation(tiled, other) + 0.2


def _hooks(model: torch.nn.Module) -> dict[str, set[str]]:
    """The names of the diffusers hooks on each of ``model``'s modules that has any."""
    registries = {name: getattr(module, "_diffusers_hook", None) for name, module in model.named_modules()}
    return {name: set(registry.hooks) for name, registry in registries.items() if registry is not None and registry.hooks}


@pytest.mark.parametrize("fp8, fails", [(False, False), (False, True), (True, False)])
def test_streamed_encoder_runs_through_group_offloading_hooks_and_is_restored(tiny_models, monkeypatch, fp8, fails):
    """The layer-by-layer path (diffusers' group offloading), exercised with the CPU as the onload device.

    Afterwards, also after an error, only the hooks the encoder had before remain (fp8 storage's casting).
    """
    from show1_core.loading import load_text_encoder
    from show1_core.speed import store_in_fp8

    encoder = load_text_encoder(tiny_models["show-1-base"] / "text_encoder")
    if fp8:
        store_in_fp8(encoder, compute_dtype=torch.float32)
    ids = torch.tensor([[5, 6, 7, 1]])
    expected = encoder(ids).last_hidden_state
    before = _hooks(encoder)
    placer = ModelPlacer("cpu", MemoryPolicy.BALANCED)
    monkeypatch.setattr(placer, "streams_large_encoders", lambda: True)
    with pytest.raises(RuntimeError, match="encode failed") if fails else contextlib.nullcontext():
        with placer.streamed(encoder) as running:
            hooks = _hooks(running)
            layers = [name for name, m in running.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Embedding))]
            assert layers and all("group_offloading" in hooks.get(name, ()) for name in layers)
            assert torch.equal(running(ids).last_hidden_state, expected)
            if fails:
                raise RuntimeError("encode failed")
    assert _hooks(encoder) == before
    assert all(p.device.type == "cpu" for p in encoder.parameters())
    assert torch.equal(encoder(ids).last_hidden_state, expected)


def test_out_of_memory_in_a_stage_becomes_actionable():
    from show1_core.memory import explain_out_of_memory

    with pytest.raises(OutOfMemoryError, match="the keyframes ran out of accelerator memory.*low-vram"):
        with explain_out_of_memory("the keyframes"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
    with pytest.raises(ValueError):
        with explain_out_of_memory("the keyframes"):
            raise ValueError("not memory")
