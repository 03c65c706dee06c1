"""The model class against the released checkpoints' structure (built on ``meta``: no memory used)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel

from show1_core.loading import KNOWN_CHECKPOINTS
from show1_core.loading.detect import stage_of_state_dict, stage_of_unet_config
from show1_core.models import Show1UNet

MANIFESTS = sorted((Path(__file__).parent / "fixtures" / "manifests").glob("*.unet.json"))


def _meta_model(cls, config):
    with init_empty_weights():
        return cls.from_config(config)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_released_state_dict_names_shapes_and_count(manifest):
    data = json.loads(manifest.read_text())
    model = _meta_model(Show1UNet, data["config"])
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == data["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == data["num_parameters"]


@pytest.mark.parametrize("name", sorted(KNOWN_CHECKPOINTS))
def test_known_configs_build_and_name_their_stage(name):
    checkpoint = KNOWN_CHECKPOINTS[name]
    config = checkpoint.expected_config("unet")
    cls = UNet2DConditionModel if config["down_block_types"][0].endswith("2D") else Show1UNet
    model = _meta_model(cls, config)
    assert stage_of_unet_config(config) == checkpoint.stage
    assert stage_of_state_dict(model.state_dict()) == checkpoint.stage


def test_released_sr2_sizes_match_the_released_file():
    """The assumed sr2 config gives the released 2.82 GB fp16 file (1.41 G parameters)."""
    model = _meta_model(Show1UNet, KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("unet"))
    fp16_gb = sum(p.numel() for p in model.parameters()) * 2 / 1e9
    assert 2.77 < fp16_gb < 2.87
    vae = _meta_model(AutoencoderKL, KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("vae"))
    assert 0.16 < sum(p.numel() for p in vae.parameters()) * 2 / 1e9 < 0.17


def test_misspelled_input_transformer_key_is_honoured():
    config = dict(KNOWN_CHECKPOINTS["show-1-sr2"].expected_config("unet"), transfromer_in_opt=False)
    assert _meta_model(Show1UNet, config).transformer_in is None
    config["transfromer_in_opt"] = True
    assert _meta_model(Show1UNet, config).transformer_in is not None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_attention_heads": 8}, "num_attention_heads"),
        ({"down_block_types": ["NoSuchBlock3D"] * 4}, "unknown down block"),
        ({"time_embedding_type": "fourier"}, "time_embedding_type"),
        ({"block_out_channels": [320, 640]}, "same length"),
        ({"attention_head_dim": 48}, "multiple of attention_head_dim"),
    ],
)
def test_unsupported_configs_are_refused_clearly(change, message):
    config = dict(KNOWN_CHECKPOINTS["show-1-base"].expected_config("unet"), **change)
    with pytest.raises(ValueError, match=message):
        _meta_model(Show1UNet, config)


def _small_base_unet() -> Show1UNet:
    config = dict(
        KNOWN_CHECKPOINTS["show-1-base"].expected_config("unet"),
        block_out_channels=[32, 32],
        down_block_types=["ResnetDownsampleBlock3D", "SimpleCrossAttnDownBlock3D"],
        up_block_types=["SimpleCrossAttnUpBlock3D", "ResnetUpsampleBlock3D"],
        layers_per_block=1,
        attention_head_dim=8,
        cross_attention_dim=32,
        encoder_hid_dim=16,
        addition_embed_type_num_heads=4,
    )
    torch.manual_seed(0)
    model = Show1UNet.from_config(config).eval()
    with torch.no_grad():  # diffusers zero-initialises some temporal outputs; make every layer count
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def test_spatial_layers_see_each_frame_alone_and_temporal_layers_connect_them():
    """With the temporal layers silenced, frame f of a video comes out as if f were run alone: the
    frames/batch folding is right. With them, changing one frame changes the others."""
    model = _small_base_unet()
    sample, text = torch.randn(2, 3, 4, 8, 16), torch.randn(2, 77, 16)
    with torch.no_grad():
        out = model(sample, 500, text).sample
        assert out.shape == (2, 6, 4, 8, 16)
        changed = sample.clone()
        changed[:, :, 3] += 1
        assert (model(changed, 500, text).sample[:, :, 0] - out[:, :, 0]).abs().max() > 1e-3
        for name, module in model.named_modules():
            if name.endswith(("temp_convs.0", "temp_convs.1")) or name.endswith("proj_out") and "temp_attentions" in name:
                for parameter in (module.conv4 if hasattr(module, "conv4") else module).parameters():
                    parameter.zero_()
        silenced = model(sample, 500, text).sample
        for frame in range(4):
            alone = model(sample[:, :, frame : frame + 1], 500, text).sample[:, :, 0]
            assert (silenced[:, :, frame] - alone).abs().max() < 1e-5


def test_temporal_attention_runs_in_bounded_batches_with_the_same_result(monkeypatch):
    """No fused-attention call may exceed CUDA's 65,535 grid limit; chunking changes nothing."""
    from show1_core.models.attention import TEMPORAL_ATTENTION_BATCH, limit_temporal_attention_batch

    model = _small_base_unet()
    sample, text = torch.randn(2, 3, 4, 8, 16), torch.randn(2, 77, 16)
    seen = []
    attend = torch.nn.functional.scaled_dot_product_attention

    def recording(query, *args, **kwargs):
        seen.append(query.shape[0])
        return attend(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    with torch.no_grad():
        whole = model(sample, 500, text).sample
        assert max(seen) == 2 * 4 * 8 <= TEMPORAL_ATTENTION_BATCH  # one sequence per pixel of the attention level (4x8)
        seen.clear()
        limit_temporal_attention_batch(model, max_batch=48)
        chunked = model(sample, 500, text).sample
    assert max(seen) <= 48
    assert torch.equal(chunked, whole)


def test_the_unet_declares_its_structure_as_diffusers_reads_it():
    """Compile, fp8 and motion LoRAs read the blocks and temporal transformers the model names."""
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    from show1_core.models import Show1UNet
    from show1_core.models.attention import temporal_attentions

    model = _small_base_unet()
    classes = {type(module).__name__ for module in model.modules()}
    assert {"ResnetBlock2D", "TransformerTemporalModel", "Attention"} <= set(Show1UNet._repeated_blocks) & classes
    assert "norm" in Show1UNet._skip_layerwise_casting_patterns
    inside_temporal = {id(a) for t in model.modules() if isinstance(t, TransformerTemporalModel) for a in t.modules()}
    found = temporal_attentions(model)
    assert found and all(id(attention) in inside_temporal for attention in found)
    assert Show1UNet.in_temporal_transformer("down_blocks.0.temp_attentions.1.transformer_blocks.0.attn1.to_q")
    assert not Show1UNet.in_temporal_transformer("down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q")
