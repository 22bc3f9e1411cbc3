"""ViT-B/16 pieces of the one-stream (OSTrack-style) backbone both trackers share.

Module and parameter names follow the official checkpoints (`patch_embed.proj`,
`blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `pos_embed_z`, `pos_embed_x`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .protocol import DEFAULT_SEARCH_FACTOR, DEFAULT_TEMPLATE_FACTOR, Geometry

VIT_LAYER_NORM_EPS = 1e-6
IMAGENET_PRETRAIN_TOKENS = (224 // 16) ** 2 + 1


def trunc_normal_init(module: nn.Module) -> None:
    """The ViT / Mamba-fusion initialisation: truncated normal weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample while training."""

    def __init__(self, rate: float = 0.0):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int, in_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        patches: torch.Tensor = self.proj(images)
        return patches.flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(batch, length, dim))
        return projected


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class Block(nn.Module):
    """Pre-norm transformer block; DMTrack calls its parts one by one to insert adapters."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=VIT_LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=VIT_LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        out: torch.Tensor = x + self.drop_path(self.mlp(self.norm2(x)))
        return out


class OneStreamViT(nn.Module):
    """Patch embedding, position embeddings and blocks; subclasses decide how streams meet.

    `cls_token` and `pos_embed` come from the ImageNet ViT and are unused by the trackers,
    but official checkpoints carry them, so strict loading needs them here.
    """

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 16,
        template_size: int = 128,
        search_size: int = 256,
        drop_path_rate: float = 0.0,
        block_factory: Callable[[int, int, float, float], nn.Module] = Block,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.template_size = template_size
        self.search_size = search_size
        self.feat_size = search_size // patch_size
        self.template_tokens = (template_size // patch_size) ** 2
        self.search_tokens = self.feat_size**2
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, IMAGENET_PRETRAIN_TOKENS, embed_dim))
        self.pos_embed_z = nn.Parameter(torch.zeros(1, self.template_tokens, embed_dim))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, self.search_tokens, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *[block_factory(embed_dim, num_heads, mlp_ratio, rate) for rate in rates]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=VIT_LAYER_NORM_EPS)
        for embedding in (self.cls_token, self.pos_embed, self.pos_embed_z, self.pos_embed_x):
            nn.init.trunc_normal_(embedding, std=0.02)
        self.apply(trunc_normal_init)

    def embed_templates(self, templates: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T * template_tokens, C), templates in the given order."""
        batch, count = templates.shape[:2]
        tokens: torch.Tensor = self.patch_embed(templates.flatten(0, 1)) + self.pos_embed_z
        return tokens.reshape(batch, count * self.template_tokens, -1)

    def embed_search(self, search: torch.Tensor) -> torch.Tensor:
        tokens: torch.Tensor = self.patch_embed(search) + self.pos_embed_x
        return tokens


class OneStreamTracker(nn.Module):
    """The model protocol's geometry for the one-stream trackers: sizes from the backbone,
    crop factors and template count from the config (see `protocol.TrackingModel`)."""

    backbone: OneStreamViT
    geometry: Geometry

    def _set_geometry(
        self,
        num_templates: int = 1,
        template_factor: float = DEFAULT_TEMPLATE_FACTOR,
        search_factor: float = DEFAULT_SEARCH_FACTOR,
    ) -> None:
        backbone = self.backbone
        self.geometry = Geometry(
            template_size=backbone.template_size,
            search_size=backbone.search_size,
            template_factor=template_factor,
            search_factor=search_factor,
            stride=backbone.patch_size,
            num_templates=num_templates,
        )

    @property
    def num_templates(self) -> int:
        return self.geometry.num_templates

    @property
    def template_size(self) -> int:
        return self.geometry.template_size

    @property
    def search_size(self) -> int:
        return self.geometry.search_size

    @property
    def feat_size(self) -> int:
        return self.geometry.feat_size
