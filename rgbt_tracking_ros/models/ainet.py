"""AINet: a shared ViT over RGB and thermal, a difference-based fusion Mamba (DFM) after
every layer, and an order-dynamic fusion Mamba (OFM) over the fused features of all layers.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .head import CenterHead
from .mamba import Mamba, default_dt_rank, make_branch_layers, scan_branch
from .protocol import DEFAULT_SEARCH_FACTOR, DEFAULT_TEMPLATE_FACTOR
from .vit import OneStreamTracker, OneStreamViT, trunc_normal_init


class DifferenceFusionMamba(nn.Module):
    """Gates each modality by a Mamba reading of their difference, then fuses both."""

    def __init__(self, dim: int, d_state: int = 16, d_conv: int = 4, expand: int = 1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mamba = Mamba(dim, d_state=d_state, d_conv=d_conv, expand=expand)
        self.fuse = nn.Sequential(nn.Linear(2 * dim, dim), nn.LayerNorm(dim), nn.GELU())

    def forward(
        self, rgb: torch.Tensor, thermal: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gate = torch.tanh(self.mamba(self.norm(rgb - thermal)))
        rgb, thermal = rgb + gate * thermal, thermal + gate * rgb
        fused: torch.Tensor = self.fuse(torch.cat([rgb, thermal], dim=-1))
        return fused, rgb, thermal


def _split_chunks(x: torch.Tensor, chunks: int) -> torch.Tensor:
    """(B, C, chunks * N) -> (B, chunks, C, N)."""
    batch, channels, length = x.shape
    return x.reshape(batch, channels, chunks, length // chunks).transpose(1, 2)


def _join_chunks(x: torch.Tensor) -> torch.Tensor:
    """(B, chunks, C, N) -> (B, C, chunks * N)."""
    return x.transpose(1, 2).flatten(2)


def _reorder_chunks(x: torch.Tensor, order: torch.Tensor, chunks: int) -> torch.Tensor:
    """Puts layer chunk order[b, i] of sample b at position i."""
    split = _split_chunks(x, chunks)
    index = order.view(order.shape[0], chunks, 1, 1).expand(-1, -1, *split.shape[2:])
    return _join_chunks(split.gather(1, index))


class OrderDynamicMamba(nn.Module):
    """Mamba-1 with three scans over the layer chunks: forward, reversed, and an order
    predicted from the input. One in/out projection is shared; each scan has its own conv,
    x/dt projections, A and D (the `_b` and `_s` parameters).
    """

    def __init__(
        self,
        d_model: int,
        num_chunks: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        guide_length: int = 2048,
        guide_widths: tuple[int, ...] = (512, 256, 128),
    ):
        super().__init__()
        d_inner = expand * d_model
        dt_rank = default_dt_rank(d_model)
        self.num_chunks = num_chunks
        self.guide_length = guide_length
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        for suffix in ("", "_b", "_s"):
            conv1d, x_proj, dt_proj, a_log, d_skip = make_branch_layers(
                d_inner, d_state, d_conv, dt_rank
            )
            setattr(self, f"conv1d{suffix}", conv1d)
            setattr(self, f"x_proj{suffix}", x_proj)
            setattr(self, f"dt_proj{suffix}", dt_proj)
            setattr(self, f"A{suffix}_log", a_log)
            setattr(self, f"D{suffix}", d_skip)
        widths = (guide_length, *guide_widths)
        layers: list[nn.Module] = []
        for i in range(len(guide_widths)):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Linear(widths[i], widths[i + 1]))
        self.mlp = nn.Sequential(*layers)
        self.fc = nn.Linear(d_model * guide_widths[-1], num_chunks)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def _scan(self, xz: torch.Tensor, suffix: str) -> torch.Tensor:
        return scan_branch(
            xz,
            getattr(self, f"conv1d{suffix}"),
            getattr(self, f"x_proj{suffix}"),
            getattr(self, f"dt_proj{suffix}"),
            getattr(self, f"A{suffix}_log"),
            getattr(self, f"D{suffix}"),
        )

    def chunk_order(self, hidden: torch.Tensor) -> torch.Tensor:
        """Ascending sort of per-chunk logits read from the pooled input: (B, num_chunks).

        The sort has no gradient, so as in the published training this predictor never
        learns; it is kept because official checkpoints carry it and it sets the order.
        """
        pooled = F.adaptive_avg_pool1d(hidden.transpose(1, 2), self.guide_length)
        logits = self.fc(self.mlp(pooled).flatten(1))
        return torch.sort(logits, dim=1).indices

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        chunks = self.num_chunks
        xz = self.in_proj(hidden).transpose(1, 2)
        y_forward = self._scan(xz, "")
        reverse = torch.arange(chunks - 1, -1, -1, device=xz.device).expand(xz.shape[0], -1)
        y_backward = _reorder_chunks(
            self._scan(_reorder_chunks(xz, reverse, chunks), "_b"), reverse, chunks
        )
        order = self.chunk_order(hidden)
        y_shift = _reorder_chunks(
            self._scan(_reorder_chunks(xz, order, chunks), "_s"), torch.argsort(order, dim=1), chunks
        )
        out: torch.Tensor = self.out_proj(((y_forward + y_backward + y_shift) / 3).transpose(1, 2))
        return out


class OrderDynamicFusionLayer(nn.Module):
    def __init__(self, dim: int, num_chunks: int, **mamba_options: Any):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mamba = OrderDynamicMamba(dim, num_chunks, **mamba_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm2(x + self.mamba(self.norm1(x)))
        return out


class OrderDynamicFusion(nn.Module):
    """Concatenates all layers' fused features after their first `cut` tokens, mixes them with
    the order-dynamic Mamba, sums the layers back into one map and keeps its last
    `search_tokens` tokens for the head.

    The official code cuts a constant 64 tokens whatever the template size: all 64 template
    tokens at 256 (128x128 templates), but only 64 of the 144 at 384 (192x192 templates), where
    each layer chunk is then the last 80 template tokens and the 576 search tokens (656).
    """

    def __init__(self, dim: int, num_layers: int, cut: int, search_tokens: int, **mamba_options: Any):
        super().__init__()
        self.cut = cut
        self.search_tokens = search_tokens
        self.fusion = nn.Sequential(OrderDynamicFusionLayer(dim, num_layers, **mamba_options))
        self.norm = nn.LayerNorm(dim)
        self.apply(trunc_normal_init)

    def forward(self, fused: list[torch.Tensor]) -> torch.Tensor:
        chunks = [f[:, self.cut :] for f in fused]
        mixed = self.fusion(torch.cat(chunks, dim=1))
        out: torch.Tensor = self.norm(sum(mixed.chunk(len(chunks), dim=1)))
        return out[:, -self.search_tokens :]


class AINetBackbone(OneStreamViT):
    def __init__(self, dfm: dict[str, int] | None = None, **vit_options: Any):
        super().__init__(**vit_options)
        dim = self.embed_dim
        self.cross_mamba = nn.ModuleList(
            DifferenceFusionMamba(dim, **(dfm or {})) for _ in range(len(self.blocks))
        )
        self.cross_mamba.apply(trunc_normal_init)

    def embed_template_pair(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) each -> template tokens of both modalities, (2B, N_z, C), RGB first."""
        return self.embed_templates(torch.cat([template_rgb, template_x]).unsqueeze(1))

    def forward_tokens(
        self, template_tokens: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> list[torch.Tensor]:
        """Both modalities through the same blocks (batched together), a DFM after each;
        returns every layer's fused features (B, N_z + N_x, C)."""
        tokens = torch.cat([template_tokens, self.embed_search(torch.cat([search_rgb, search_x]))], dim=1)
        batch = search_rgb.shape[0]
        fused = []
        for block, dfm in zip(self.blocks, self.cross_mamba):
            rgb, thermal = block(tokens).split(batch)
            feature, rgb, thermal = dfm(rgb, thermal)
            fused.append(feature)
            tokens = torch.cat([rgb, thermal])
        return fused

    def forward(
        self,
        template_rgb: torch.Tensor,
        template_x: torch.Tensor,
        search_rgb: torch.Tensor,
        search_x: torch.Tensor,
    ) -> list[torch.Tensor]:
        return self.forward_tokens(self.embed_template_pair(template_rgb, template_x), search_rgb, search_x)


class AINet(OneStreamTracker):
    """forward(template_rgb, template_x (B,3,Z,Z), search_rgb, search_x (B,3,X,X)): 128 / 256
    for `ainet_256`, 192 / 384 for `ainet_384` (the sizes of the published model).

    `fusion_cut` is how many leading tokens of each layer's fused features the OFM drops
    (default: all template tokens; the official code drops 64 at every size).
    `vit_options` are the backbone's (embed_dim, depth, num_heads, sizes, drop_path_rate).
    Implements `protocol.TrackingModel`: `encode_templates` embeds the template crops once.
    """

    backbone: AINetBackbone

    def __init__(
        self,
        head_channels: int = 256,
        dfm: dict[str, int] | None = None,
        ofm: dict[str, Any] | None = None,
        fusion_cut: int | None = None,
        template_factor: float = DEFAULT_TEMPLATE_FACTOR,
        search_factor: float = DEFAULT_SEARCH_FACTOR,
        **vit_options: Any,
    ):
        super().__init__()
        self.backbone = AINetBackbone(dfm=dfm, **vit_options)
        self._set_geometry(1, template_factor, search_factor)
        template_tokens = self.backbone.template_tokens
        cut = template_tokens if fusion_cut is None else fusion_cut
        if isinstance(cut, bool) or not isinstance(cut, int) or not 0 <= cut <= template_tokens:
            raise ValueError(
                f"fusion_cut must be an integer from 0 to the {template_tokens} template tokens, got {fusion_cut!r}"
            )
        dim = self.backbone.embed_dim
        self.mamba_fusion = OrderDynamicFusion(
            dim, len(self.backbone.blocks), cut, self.backbone.search_tokens, **(ofm or {})
        )
        self.box_head = CenterHead(dim, head_channels, self.feat_size)

    def encode_templates(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        """(B, 3, Z, Z) each -> embedded template tokens of both modalities, (2B, N_z, C)."""
        return self.backbone.embed_template_pair(template_rgb, template_x)

    def track_search(
        self, templates: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        fused = self.backbone.forward_tokens(templates, search_rgb, search_x)
        maps: dict[str, torch.Tensor] = self.box_head(self.mamba_fusion(fused))
        return maps

    def forward(
        self,
        template_rgb: torch.Tensor,
        template_x: torch.Tensor,
        search_rgb: torch.Tensor,
        search_x: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        return self.track_search(self.encode_templates(template_rgb, template_x), search_rgb, search_x)
