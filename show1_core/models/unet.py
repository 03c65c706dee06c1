"""``Show1UNet``: the video UNet of every Show-1 stage.

One class covers the DeepFloyd-IF-style pixel UNets (keyframes, interpolation, pixel
super-resolution) and the ModelScope-style latent UNet (expert super-resolution), as the
original ``showone.models.UNet3DConditionModel`` does, and accepts every key of the
released ``unet/config.json`` files (including the misspelled ``transfromer_in_opt``).

Input and output are ``(batch, channels, frames, height, width)``. Internally frames are
folded into the batch, so spatial layers see images and temporal layers unfold them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders.peft import PeftAdapterMixin
from diffusers.models.activations import get_activation
from diffusers.models.embeddings import TextTimeEmbedding, TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from diffusers.models.unets.unet_3d_blocks import (
    CrossAttnDownBlock3D,
    CrossAttnUpBlock3D,
    DownBlock3D,
    UNetMidBlock3DCrossAttn,
    UpBlock3D,
)
from diffusers.utils import BaseOutput
from torch import nn

from .attention import limit_temporal_attention_batch
from .if_blocks import IFBlockSettings, IFDownBlock3D, IFMidBlock3D, IFUpBlock3D, check_head_split

IF_DOWN_BLOCKS = {"ResnetDownsampleBlock3D": False, "SimpleCrossAttnDownBlock3D": True}
IF_UP_BLOCKS = {"ResnetUpsampleBlock3D": False, "SimpleCrossAttnUpBlock3D": True}
MID_BLOCKS = ("UNetMidBlock3DSimpleCrossAttn", "UNetMidBlock3DCrossAttn", None)
INPUT_TEMPORAL_HEADS, INPUT_TEMPORAL_HEAD_DIM = 8, 64
"""Show-1's optional input temporal transformer (``transfromer_in_opt``) is fixed at 8 heads x 64 dims."""


@dataclass
class Show1UNetOutput(BaseOutput):
    """Output of :class:`Show1UNet`: ``sample`` is ``(batch, channels, frames, height, width)``."""

    sample: torch.Tensor


def _per_block(value, count: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"`{name}` has {len(value)} entries but the UNet has {count} blocks")
        return list(value)
    return [value] * count


def _modelscope_heads(channels: int, head_split: int) -> int:
    """Head count for diffusers' 3-D blocks that reproduces Show-1's split.

    Show-1 builds its transformers with ``head_split`` heads of ``channels // head_split``
    dims; diffusers' blocks build ``channels // n`` heads of ``n`` dims from their ``n``.
    """
    check_head_split(channels, head_split)
    return channels // head_split


class Show1UNet(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """The Show-1 video UNet (all four stages), a diffusers ``ModelMixin`` + ``ConfigMixin``.

    ``PeftAdapterMixin`` adds diffusers' LoRA adapter methods (used by :mod:`show1_core.motion_lora`).
    """

    _supports_gradient_checkpointing = False
    # diffusers' 3-D blocks reused here set ``self.gradient_checkpointing`` but never read it, so the
    # flag would be a silent no-op; training recomputes activations with ``training.recompute`` instead.
    _repeated_blocks = ["ResnetBlock2D", "TemporalConvLayer", "TransformerTemporalModel", "Transformer2DModel", "Attention"]
    """Blocks ``torch.compile`` compiles on their own (``speed.compile``, outermost of each nest only)."""
    _skip_layerwise_casting_patterns = ["norm"]
    """Layers fp8 weight storage leaves in the compute precision (``speed.fp8``), as diffusers' 2-D UNet."""
    _no_split_modules = [
        "ResnetBlock2D",
        "TemporalConvLayer",
        "TransformerTemporalModel",
        "Transformer2DModel",
        "CrossAttnUpBlock3D",
        "UpBlock3D",
        "IFUpBlock3D",
    ]
    """Modules a ``device_map`` keeps on one device: the repeated blocks, and the up blocks, which concatenate skips."""
    _temporal_attention_modules = ("temp_attentions", "transformer_in")
    """Child names of the temporal transformers (attention along the frames); motion LoRAs adapt only these."""

    @classmethod
    def in_temporal_transformer(cls, name: str) -> bool:
        """Whether the dotted module ``name`` (as ``named_modules`` gives it) lies inside a temporal transformer."""
        return any(part in cls._temporal_attention_modules for part in name.split("."))

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: Sequence[str] = (
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "CrossAttnDownBlock3D",
            "DownBlock3D",
        ),
        mid_block_type: str | None = "UNetMidBlock3DCrossAttn",
        up_block_types: Sequence[str] = ("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
        only_cross_attention: bool | Sequence[bool] = False,
        block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
        layers_per_block: int | Sequence[int] = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int | Sequence[int] = 1280,
        transformer_layers_per_block: int | Sequence[int] = 1,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        attention_head_dim: int | Sequence[int] = 8,
        num_attention_heads: int | Sequence[int] | None = None,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        resnet_skip_time_act: bool = False,
        resnet_out_scale_factor: float = 1.0,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        time_embedding_act_fn: str | None = None,
        timestep_post_act: str | None = None,
        time_cond_proj_dim: int | None = None,
        conv_in_kernel: int = 3,
        conv_out_kernel: int = 3,
        projection_class_embeddings_input_dim: int | None = None,
        class_embeddings_concat: bool = False,
        mid_block_only_cross_attention: bool | None = None,
        cross_attention_norm: str | None = None,
        addition_embed_type_num_heads: int = 64,
        transfromer_in_opt: bool = False,
    ):
        super().__init__()
        _reject_unsupported(
            num_attention_heads=num_attention_heads,
            time_embedding_type=time_embedding_type,
            encoder_hid_dim=encoder_hid_dim,
            encoder_hid_dim_type=encoder_hid_dim_type,
            class_embed_type=class_embed_type,
            num_class_embeds=num_class_embeds,
            addition_embed_type=addition_embed_type,
            dual_cross_attention=dual_cross_attention,
            class_embeddings_concat=class_embeddings_concat,
            norm_num_groups=norm_num_groups,
        )
        blocks = len(down_block_types)
        if len(up_block_types) != blocks or len(block_out_channels) != blocks:
            raise ValueError(
                f"down_block_types ({blocks}), up_block_types ({len(up_block_types)}) and "
                f"block_out_channels ({len(block_out_channels)}) must have the same length"
            )
        if mid_block_type not in MID_BLOCKS:
            raise ValueError(f"unknown mid_block_type {mid_block_type!r}; expected one of {MID_BLOCKS}")

        if encoder_hid_dim is not None and encoder_hid_dim_type is None:
            encoder_hid_dim_type = "text_proj"
            self.register_to_config(encoder_hid_dim_type=encoder_hid_dim_type)

        only_cross = _per_block(only_cross_attention, blocks, "only_cross_attention")
        if mid_block_only_cross_attention is None:
            mid_block_only_cross_attention = only_cross_attention if isinstance(only_cross_attention, bool) else False
        head_dims = _per_block(attention_head_dim, blocks, "attention_head_dim")
        cross_dims = _per_block(cross_attention_dim, blocks, "cross_attention_dim")
        layers = _per_block(layers_per_block, blocks, "layers_per_block")
        transformer_layers = _per_block(transformer_layers_per_block, blocks, "transformer_layers_per_block")
        if any(n != 1 for n in transformer_layers):
            raise ValueError("transformer_layers_per_block other than 1 is not used by any Show-1 checkpoint")

        # input
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], conv_in_kernel, padding=(conv_in_kernel - 1) // 2)
        self.transformer_in = (
            TransformerTemporalModel(INPUT_TEMPORAL_HEADS, INPUT_TEMPORAL_HEAD_DIM, in_channels=block_out_channels[0], num_layers=1)
            if transfromer_in_opt
            else None
        )

        # time, noise level and text pooling
        time_embed_dim = time_embedding_dim or block_out_channels[0] * 4
        self.time_proj = Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)
        self.time_embedding = TimestepEmbedding(
            block_out_channels[0],
            time_embed_dim,
            act_fn=act_fn,
            post_act_fn=timestep_post_act,
            cond_proj_dim=time_cond_proj_dim,
        )
        self.encoder_hid_proj = nn.Linear(encoder_hid_dim, cross_dims[0]) if encoder_hid_dim is not None else None
        self.class_embedding = (
            TimestepEmbedding(block_out_channels[0], time_embed_dim, act_fn=act_fn) if class_embed_type == "timestep" else None
        )
        self.add_embedding = (
            TextTimeEmbedding(encoder_hid_dim or cross_dims[0], time_embed_dim, num_heads=addition_embed_type_num_heads)
            if addition_embed_type == "text"
            else None
        )
        self.time_embed_act = get_activation(time_embedding_act_fn) if time_embedding_act_fn else None

        if_settings = IFBlockSettings(
            temb_channels=time_embed_dim,
            eps=norm_eps,
            act_fn=act_fn,
            groups=norm_num_groups,
            time_scale_shift=resnet_time_scale_shift,
            skip_time_act=resnet_skip_time_act,
            output_scale_factor=resnet_out_scale_factor,
            cross_attention_dim=cross_dims[0],
            attention_head_dim=head_dims[0],
            only_cross_attention=False,
            cross_attention_norm=cross_attention_norm,
        )
        resnet_args = dict(
            temb_channels=time_embed_dim,
            resnet_eps=norm_eps,
            resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups,
            resnet_time_scale_shift=resnet_time_scale_shift,
        )
        attention_args = dict(use_linear_projection=use_linear_projection, upcast_attention=upcast_attention)

        # down
        self.down_blocks = nn.ModuleList()
        out_ch = block_out_channels[0]
        for i, kind in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            shape = dict(in_channels=in_ch, out_channels=out_ch, num_layers=layers[i], add_downsample=i < blocks - 1)
            if kind in IF_DOWN_BLOCKS:
                settings = replace(if_settings, attention_head_dim=head_dims[i], cross_attention_dim=cross_dims[i])
                block = IFDownBlock3D(settings, **shape, with_attention=IF_DOWN_BLOCKS[kind], only_cross_attention=only_cross[i])
            elif kind == "CrossAttnDownBlock3D":
                block = CrossAttnDownBlock3D(
                    **shape,
                    **resnet_args,
                    **attention_args,
                    downsample_padding=downsample_padding,
                    cross_attention_dim=cross_dims[i],
                    num_attention_heads=_modelscope_heads(out_ch, head_dims[i]),
                    only_cross_attention=only_cross[i],
                )
            elif kind == "DownBlock3D":
                block = DownBlock3D(**shape, **resnet_args, downsample_padding=downsample_padding)
            else:
                raise ValueError(f"unknown down block type {kind!r}")
            self.down_blocks.append(block)

        # mid
        mid_ch = block_out_channels[-1]
        if mid_block_type == "UNetMidBlock3DSimpleCrossAttn":
            self.mid_block = IFMidBlock3D(
                replace(
                    if_settings,
                    attention_head_dim=head_dims[-1],
                    cross_attention_dim=cross_dims[-1],
                    output_scale_factor=mid_block_scale_factor,
                ),
                mid_ch,
                only_cross_attention=mid_block_only_cross_attention,
            )
        elif mid_block_type == "UNetMidBlock3DCrossAttn":
            self.mid_block = UNetMidBlock3DCrossAttn(
                in_channels=mid_ch,
                output_scale_factor=mid_block_scale_factor,
                cross_attention_dim=cross_dims[-1],
                num_attention_heads=_modelscope_heads(mid_ch, head_dims[-1]),
                **resnet_args,
                **attention_args,
            )
        else:
            self.mid_block = None

        # up (the original indexes attention_head_dim un-reversed on the way up; kept)
        self.up_blocks = nn.ModuleList()
        reversed_channels = list(reversed(block_out_channels))
        reversed_layers = list(reversed(layers))
        reversed_cross = list(reversed(cross_dims))
        reversed_only_cross = list(reversed(only_cross))
        out_ch = reversed_channels[0]
        for i, kind in enumerate(up_block_types):
            prev_ch, out_ch = out_ch, reversed_channels[i]
            shape = dict(
                in_channels=reversed_channels[min(i + 1, blocks - 1)],
                prev_output_channel=prev_ch,
                out_channels=out_ch,
                num_layers=reversed_layers[i] + 1,
                add_upsample=i < blocks - 1,
            )
            if kind in IF_UP_BLOCKS:
                settings = replace(if_settings, attention_head_dim=head_dims[i], cross_attention_dim=reversed_cross[i])
                block = IFUpBlock3D(settings, **shape, with_attention=IF_UP_BLOCKS[kind], only_cross_attention=reversed_only_cross[i])
            elif kind == "CrossAttnUpBlock3D":
                block = CrossAttnUpBlock3D(
                    **shape,
                    **resnet_args,
                    **attention_args,
                    cross_attention_dim=reversed_cross[i],
                    num_attention_heads=_modelscope_heads(out_ch, head_dims[i]),
                    only_cross_attention=reversed_only_cross[i],
                )
            elif kind == "UpBlock3D":
                block = UpBlock3D(**shape, **resnet_args)
            else:
                raise ValueError(f"unknown up block type {kind!r}")
            self.up_blocks.append(block)
        self.num_upsamplers = blocks - 1

        # out
        self.conv_norm_out = nn.GroupNorm(num_groups=norm_num_groups, num_channels=block_out_channels[0], eps=norm_eps)
        self.conv_act = get_activation(act_fn)
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, conv_out_kernel, padding=(conv_out_kernel - 1) // 2)
        limit_temporal_attention_batch(self)

    def _embed_time(
        self,
        timestep: torch.Tensor | float | int,
        batch: int,
        dtype: torch.dtype,
        device: torch.device,
        class_labels: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
    ) -> torch.Tensor:
        if not torch.is_tensor(timestep):
            timestep = torch.tensor([timestep], dtype=torch.float64 if isinstance(timestep, float) else torch.int64)
        timestep = timestep.to(device)
        if timestep.ndim == 0:
            timestep = timestep[None]
        emb = self.time_embedding(self.time_proj(timestep.expand(batch)).to(dtype))
        if self.class_embedding is not None:
            if class_labels is None:
                raise ValueError("this UNet is conditioned on a noise level (class_embed_type 'timestep'): pass class_labels")
            labels = self.time_proj(class_labels.to(device)).to(dtype)
            emb = emb + self.class_embedding(labels).to(dtype)
        if self.add_embedding is not None:
            emb = emb + self.add_embedding(encoder_hidden_states)
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        return emb

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> Show1UNetOutput | tuple[torch.Tensor]:
        """Predict noise (or v) for a video.

        Args:
            sample: noisy input ``(batch, in_channels, frames, height, width)``.
            timestep: diffusion timestep, a scalar or one per batch element.
            encoder_hidden_states: text embeddings ``(batch, tokens, width)`` (T5 width for the
                pixel stages, which project it with ``encoder_hid_proj``; CLIP width for stage 4).
            class_labels: the noise level of the low-resolution condition, for UNets built
                with ``class_embed_type="timestep"`` (stage 3).
            return_dict: return a :class:`Show1UNetOutput` instead of a tuple.
        """
        batch, _, num_frames, height, width = sample.shape
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
        emb = self._embed_time(timestep, batch, sample.dtype, sample.device, class_labels, encoder_hidden_states)
        if self.encoder_hid_proj is not None:
            encoder_hidden_states = self.encoder_hid_proj(encoder_hidden_states)
        emb = emb.repeat_interleave(num_frames, dim=0)
        text = encoder_hidden_states.repeat_interleave(num_frames, dim=0)

        upsample_factor = 2**self.num_upsamplers
        odd_size = height % upsample_factor != 0 or width % upsample_factor != 0

        hidden = sample.permute(0, 2, 1, 3, 4).reshape(batch * num_frames, -1, height, width)
        hidden = self.conv_in(hidden)
        if self.transformer_in is not None:
            hidden = self.transformer_in(hidden, num_frames=num_frames, return_dict=False)[0]

        skips: tuple[torch.Tensor, ...] = (hidden,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                hidden, block_skips = block(hidden, emb, encoder_hidden_states=text, num_frames=num_frames)
            else:
                hidden, block_skips = block(hidden, emb, num_frames=num_frames)
            skips += block_skips

        if self.mid_block is not None:
            hidden = self.mid_block(hidden, emb, encoder_hidden_states=text, num_frames=num_frames)

        for i, block in enumerate(self.up_blocks):
            count = len(block.resnets)
            block_skips, skips = skips[-count:], skips[:-count]
            extra = {}
            if isinstance(block, (CrossAttnUpBlock3D, UpBlock3D)):
                last = i == len(self.up_blocks) - 1
                extra["upsample_size"] = skips[-1].shape[2:] if (odd_size and not last) else None
            if getattr(block, "has_cross_attention", False):
                extra["encoder_hidden_states"] = text
            hidden = block(hidden, block_skips, emb, num_frames=num_frames, **extra)

        hidden = self.conv_out(self.conv_act(self.conv_norm_out(hidden)))
        out = hidden.reshape(batch, num_frames, *hidden.shape[1:]).permute(0, 2, 1, 3, 4)
        if not return_dict:
            return (out,)
        return Show1UNetOutput(sample=out)


def _reject_unsupported(**values) -> None:
    """Refuse config values that no Show-1 checkpoint uses, with a clear message."""
    allowed = {
        "num_attention_heads": (None,),
        "time_embedding_type": ("positional",),
        "encoder_hid_dim_type": (None, "text_proj"),
        "class_embed_type": (None, "timestep"),
        "num_class_embeds": (None,),
        "addition_embed_type": (None, "text"),
        "dual_cross_attention": (False,),
        "class_embeddings_concat": (False,),
    }
    for key, options in allowed.items():
        if values[key] not in options:
            raise ValueError(f"Show1UNet does not support {key}={values[key]!r} (Show-1 checkpoints use one of {options})")
    if values["norm_num_groups"] is None:
        raise ValueError("Show1UNet needs norm_num_groups (every Show-1 checkpoint uses 32)")
    if values["encoder_hid_dim_type"] == "text_proj" and values["encoder_hid_dim"] is None:
        raise ValueError("encoder_hid_dim_type 'text_proj' needs encoder_hid_dim")
