"""DeepFloyd-IF-style video blocks of the Show-1 UNet (stages 1-3).

Diffusers ships the 2-D versions of these blocks (``ResnetDownsampleBlock2D``,
``SimpleCrossAttnDownBlock2D`` ...) but no 3-D ones. Show-1 turns each into a video
block by running, after every spatial resnet, a temporal convolution and, after every
spatial attention, a temporal transformer. Everything inside a block is a diffusers
module; only the wiring lives here. Attribute names (``resnets``, ``temp_convs``,
``attentions``, ``temp_attentions``, ``downsamplers``, ``upsamplers``) follow the
released checkpoints so their state dicts load without renaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention_processor import Attention, AttnAddedKVProcessor2_0
from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from torch import nn


@dataclass(frozen=True)
class IFBlockSettings:
    """Settings shared by every IF-style block of one UNet."""

    temb_channels: int
    eps: float
    act_fn: str
    groups: int
    time_scale_shift: str
    skip_time_act: bool
    output_scale_factor: float
    cross_attention_dim: int
    attention_head_dim: int
    only_cross_attention: bool
    cross_attention_norm: str | None


def _resnet(s: IFBlockSettings, in_channels: int, out_channels: int, *, up: bool = False, down: bool = False) -> ResnetBlock2D:
    return ResnetBlock2D(
        in_channels=in_channels,
        out_channels=out_channels,
        temb_channels=s.temb_channels,
        eps=s.eps,
        groups=s.groups,
        dropout=0.0,
        time_embedding_norm=s.time_scale_shift,
        non_linearity=s.act_fn,
        output_scale_factor=s.output_scale_factor,
        pre_norm=True,
        skip_time_act=s.skip_time_act,
        up=up,
        down=down,
    )


def _temporal_conv(channels: int) -> TemporalConvLayer:
    return TemporalConvLayer(channels, channels, dropout=0.1)


def _spatial_attention(s: IFBlockSettings, channels: int, only_cross_attention: bool) -> Attention:
    """IF "added KV" attention: self-attention keys/values plus projected text tokens."""
    return Attention(
        query_dim=channels,
        cross_attention_dim=channels,
        heads=channels // s.attention_head_dim,
        dim_head=s.attention_head_dim,
        added_kv_proj_dim=s.cross_attention_dim,
        norm_num_groups=s.groups,
        bias=True,
        upcast_softmax=True,
        only_cross_attention=only_cross_attention,
        cross_attention_norm=s.cross_attention_norm,
        processor=AttnAddedKVProcessor2_0(),
    )


def _temporal_attention(s: IFBlockSettings, channels: int) -> TransformerTemporalModel:
    # Show-1 passes the head *dim* as the head *count* here: attention_head_dim heads of
    # channels // attention_head_dim dims each. Kept as released for identical numbers.
    return TransformerTemporalModel(
        s.attention_head_dim,
        channels // s.attention_head_dim,
        in_channels=channels,
        num_layers=1,
        cross_attention_dim=s.cross_attention_dim,
        norm_num_groups=s.groups,
    )


def check_head_split(channels: int, head_dim: int) -> None:
    """Refuse a block width that ``attention_head_dim`` does not divide (no released config has one)."""
    if channels % head_dim:
        raise ValueError(f"block width {channels} is not a multiple of attention_head_dim {head_dim}")


class _IFVideoLayers(nn.Module):
    """Resnet + temporal conv (+ spatial and temporal attention) layers of one block."""

    def __init__(self, s: IFBlockSettings, with_attention: bool, only_cross_attention: bool):
        super().__init__()
        self.has_cross_attention = with_attention
        self._settings = s
        self._only_cross_attention = only_cross_attention
        self.resnets = nn.ModuleList()
        self.temp_convs = nn.ModuleList()
        self.attentions = nn.ModuleList()
        self.temp_attentions = nn.ModuleList()

    def _add_layer(self, in_channels: int, out_channels: int) -> None:
        s = self._settings
        self.resnets.append(_resnet(s, in_channels, out_channels))
        self.temp_convs.append(_temporal_conv(out_channels))
        if self.has_cross_attention:
            check_head_split(out_channels, s.attention_head_dim)
            self.attentions.append(_spatial_attention(s, out_channels, self._only_cross_attention))
            self.temp_attentions.append(_temporal_attention(s, out_channels))

    def _run_layer(self, index: int, hidden: torch.Tensor, temb: torch.Tensor, text: torch.Tensor | None, num_frames: int) -> torch.Tensor:
        hidden = self.resnets[index](hidden, temb)
        hidden = self.temp_convs[index](hidden, num_frames=num_frames)
        if self.has_cross_attention:
            hidden = self.attentions[index](hidden, encoder_hidden_states=text)
            hidden = self.temp_attentions[index](hidden, num_frames=num_frames, return_dict=False)[0]
        return hidden


class IFDownBlock3D(_IFVideoLayers):
    """``ResnetDownsampleBlock3D`` (no attention) or ``SimpleCrossAttnDownBlock3D``."""

    def __init__(
        self,
        s: IFBlockSettings,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        add_downsample: bool,
        with_attention: bool,
        only_cross_attention: bool = False,
    ):
        super().__init__(s, with_attention, only_cross_attention)
        for i in range(num_layers):
            self._add_layer(in_channels if i == 0 else out_channels, out_channels)
        self.downsamplers = nn.ModuleList([_resnet(s, out_channels, out_channels, down=True)]) if add_downsample else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        temb: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        num_frames: int = 1,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Run the block; returns the output and every skip connection it produces."""
        skips: tuple[torch.Tensor, ...] = ()
        for i in range(len(self.resnets)):
            hidden_states = self._run_layer(i, hidden_states, temb, encoder_hidden_states, num_frames)
            skips += (hidden_states,)
        if self.downsamplers is not None:
            hidden_states = self.downsamplers[0](hidden_states, temb)
            skips += (hidden_states,)
        return hidden_states, skips


class IFUpBlock3D(_IFVideoLayers):
    """``ResnetUpsampleBlock3D`` (no attention) or ``SimpleCrossAttnUpBlock3D``."""

    def __init__(
        self,
        s: IFBlockSettings,
        in_channels: int,
        prev_output_channel: int,
        out_channels: int,
        num_layers: int,
        add_upsample: bool,
        with_attention: bool,
        only_cross_attention: bool = False,
    ):
        super().__init__(s, with_attention, only_cross_attention)
        for i in range(num_layers):
            skip_channels = in_channels if i == num_layers - 1 else out_channels
            resnet_in = prev_output_channel if i == 0 else out_channels
            self._add_layer(resnet_in + skip_channels, out_channels)
        self.upsamplers = nn.ModuleList([_resnet(s, out_channels, out_channels, up=True)]) if add_upsample else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        res_hidden_states_tuple: tuple[torch.Tensor, ...],
        temb: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        num_frames: int = 1,
    ) -> torch.Tensor:
        """Run the block, consuming its skip connections from the end of the tuple."""
        skips = list(res_hidden_states_tuple)
        for i in range(len(self.resnets)):
            hidden_states = torch.cat([hidden_states, skips.pop()], dim=1)
            hidden_states = self._run_layer(i, hidden_states, temb, encoder_hidden_states, num_frames)
        if self.upsamplers is not None:
            hidden_states = self.upsamplers[0](hidden_states, temb)
        return hidden_states


class IFMidBlock3D(_IFVideoLayers):
    """``UNetMidBlock3DSimpleCrossAttn``: resnet, then (attention, resnet) pairs."""

    def __init__(self, s: IFBlockSettings, channels: int, only_cross_attention: bool, num_layers: int = 1):
        super().__init__(s, True, only_cross_attention)
        self.resnets.append(_resnet(s, channels, channels))
        self.temp_convs.append(_temporal_conv(channels))
        check_head_split(channels, s.attention_head_dim)
        for _ in range(num_layers):
            self.attentions.append(_spatial_attention(s, channels, only_cross_attention))
            self.temp_attentions.append(_temporal_attention(s, channels))
            self.resnets.append(_resnet(s, channels, channels))
            self.temp_convs.append(_temporal_conv(channels))

    def forward(
        self,
        hidden_states: torch.Tensor,
        temb: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        num_frames: int = 1,
    ) -> torch.Tensor:
        """Run the middle of the UNet."""
        hidden_states = self.resnets[0](hidden_states, temb)
        hidden_states = self.temp_convs[0](hidden_states, num_frames=num_frames)
        for attn, temp_attn, resnet, temp_conv in zip(self.attentions, self.temp_attentions, self.resnets[1:], self.temp_convs[1:]):
            hidden_states = attn(hidden_states, encoder_hidden_states=encoder_hidden_states)
            hidden_states = temp_attn(hidden_states, num_frames=num_frames, return_dict=False)[0]
            hidden_states = resnet(hidden_states, temb)
            hidden_states = temp_conv(hidden_states, num_frames=num_frames)
        return hidden_states
