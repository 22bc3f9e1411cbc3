"""DMTrack: a frozen OSTrack ViT and head with small trainable adapters.

Per block: a spatio-temporal adapter (STMA) per modality over the template history, a
shallow linear adapter that lets each modality feed the other's attention branch, and a
deep adapter that exchanges information between the modalities per token. Only
parameters whose name contains `adap` are trainable.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch
from torch import nn

from .head import CenterHead
from .protocol import DEFAULT_SEARCH_FACTOR, DEFAULT_TEMPLATE_FACTOR
from .vit import Block, OneStreamTracker, OneStreamViT

ADAPTER_KEYWORD = "adap"


class ZeroOutputAdapter(nn.Module):
    """An adapter whose output starts at zero, so adding it leaves the frozen model unchanged.

    The official release also zeroes the down (and middle) projections, which leaves only the
    output bias able to learn; `official_init=False` keeps a random down projection so it trains.
    """

    official_init = False
    # Set by each subclass.
    adapter_down: nn.Linear
    adapter_up: nn.Linear

    def reset_parameters(self) -> None:
        for parameter in (self.adapter_up.weight, self.adapter_up.bias, self.adapter_down.bias):
            nn.init.zeros_(parameter)
        if not self.official_init:
            nn.init.xavier_uniform_(self.adapter_down.weight)
            return
        nn.init.zeros_(self.adapter_down.weight)
        middle = getattr(self, "adapter_mid", None)
        if middle is not None:
            nn.init.zeros_(middle.weight)
            nn.init.zeros_(middle.bias)


class TemporalAdapter(ZeroOutputAdapter):
    """STMA: a bottleneck whose template tokens also mix across the T templates."""

    def __init__(self, dim: int, width: int, template_tokens: int, official_init: bool):
        super().__init__()
        self.template_tokens = template_tokens
        self.adapter_down = nn.Linear(dim, width)
        self.adapter_mid = nn.Conv1d(width, width, kernel_size=3, padding=1, groups=width)
        self.adapter_up = nn.Linear(width, dim)
        self.dropout = nn.Dropout(0.2)
        self.official_init = official_init
        self.reset_parameters()

    def forward(self, x: torch.Tensor, num_templates: int) -> torch.Tensor:
        batch = x.shape[0]
        down = self.adapter_down(x)
        split = num_templates * self.template_tokens
        templates, search = down[:, :split], down[:, split:]
        width = down.shape[-1]
        # (B, T*N, d) -> (B*N, d, T): a depthwise conv over time for each template position.
        series = templates.reshape(batch, num_templates, self.template_tokens, width)
        series = series.permute(0, 2, 3, 1).reshape(-1, width, num_templates)
        series = series + self.adapter_mid(series)
        templates = series.reshape(batch, self.template_tokens, width, num_templates)
        templates = templates.permute(0, 3, 1, 2).reshape(batch, split, width)
        out: torch.Tensor = self.adapter_up(self.dropout(torch.cat([templates, search], dim=1)))
        return out


class ShallowAdapter(ZeroOutputAdapter):
    """A linear 768 -> 8 -> 8 -> 768 bottleneck (no nonlinearity, as published)."""

    def __init__(self, dim: int, width: int, official_init: bool):
        super().__init__()
        self.adapter_down = nn.Linear(dim, width)
        self.adapter_mid = nn.Linear(width, width)
        self.adapter_up = nn.Linear(width, dim)
        self.dropout = nn.Dropout(0.1)
        self.official_init = official_init
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.adapter_up(self.dropout(self.adapter_mid(self.adapter_down(x))))
        return out


class ChannelWeights(nn.Module):
    """The two-layer MLP of the inner-modal relation weights."""

    def __init__(self, in_features: int, width: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(self.act(self.fc1(x)))
        return out


class DeepAdapter(ZeroOutputAdapter):
    """Per token, each modality's query attends over two candidates: a noised copy of
    itself and the other modality, keyed by its channel-reweighted self."""

    def __init__(self, dim: int, width: int = 8, heads: int = 8, official_init: bool = False):
        super().__init__()
        self.adapter_down = nn.Linear(dim, width)
        self.adapter_up = nn.Linear(width, dim)
        self.cross_attn_0_to_1 = nn.MultiheadAttention(width, heads)
        self.cross_attn_1_to_0 = nn.MultiheadAttention(width, heads)
        self.relation_judger = nn.Sequential(ChannelWeights(2 * width, width), nn.Softmax(dim=-1))
        self.k_noise = nn.Embedding(2, width)
        self.v_noise = nn.Embedding(2, width)
        self.dropout = nn.Dropout(0.1)
        self.official_init = official_init
        self.reset_parameters()

    def _attend(
        self, query: torch.Tensor, other: torch.Tensor, attention: nn.MultiheadAttention, index: int
    ) -> torch.Tensor:
        batch, tokens, width = query.shape
        weights = self.relation_judger(torch.cat([query, other], dim=-1))
        keys = torch.stack([self.k_noise.weight[index] + query, query * weights])
        values = torch.stack([self.v_noise.weight[index] + query, other])
        # Sequence axis = the 2 candidates, batch axis = every token of every sample.
        out: torch.Tensor
        out, _ = attention(
            query.reshape(1, batch * tokens, width),
            keys.reshape(2, batch * tokens, width),
            values.reshape(2, batch * tokens, width),
            need_weights=False,
        )
        return out.reshape(batch, tokens, width)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.adapter_down(x), self.adapter_down(y)
        to_x = self._attend(a, b, self.cross_attn_0_to_1, 0)
        to_y = self._attend(b, a, self.cross_attn_1_to_0, 1)
        return self.adapter_up(self.dropout(to_x)), self.adapter_up(self.dropout(to_y))


class AdapterBlock(Block):
    """A frozen ViT block with DMTrack's adapters, over both modalities at once."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path: float,
        stma_width: int = 12,
        adapter_width: int = 8,
        template_tokens: int = 64,
        official_init: bool = False,
    ):
        super().__init__(dim, num_heads, mlp_ratio, drop_path)
        self.adap_t = ShallowAdapter(dim, adapter_width, official_init)
        self.adap2_t = DeepAdapter(dim, adapter_width, official_init=official_init)
        self.adap_tem1 = TemporalAdapter(dim, stma_width, template_tokens, official_init)
        self.adap_tem2 = TemporalAdapter(dim, stma_width, template_tokens, official_init)

    def forward_pair(
        self, x: torch.Tensor, y: torch.Tensor, num_templates: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + self.adap_tem1(x, num_templates)
        y = y + self.adap_tem2(y, num_templates)
        x_norm, y_norm = self.norm1(x), self.norm1(y)
        attn_x, attn_y = self.attn(torch.cat([x_norm, y_norm])).chunk(2)
        x = x + self.drop_path(attn_x) + self.drop_path(self.adap_t(y_norm))
        y = y + self.drop_path(attn_y) + self.drop_path(self.adap_t(x_norm))
        x_norm, y_norm = self.norm2(x), self.norm2(y)
        mlp_x, mlp_y = self.mlp(torch.cat([x_norm, y_norm])).chunk(2)
        deep_x, deep_y = self.adap2_t(x_norm, y_norm)
        x = x + self.drop_path(mlp_x) + self.drop_path(deep_x)
        y = y + self.drop_path(mlp_y) + self.drop_path(deep_y)
        return x, y


class DMTrackBackbone(OneStreamViT):
    def __init__(
        self,
        stma_width: int = 12,
        adapter_width: int = 8,
        official_init: bool = False,
        template_size: int = 128,
        patch_size: int = 16,
        **vit_options: Any,
    ):
        template_tokens = (template_size // patch_size) ** 2

        def block_factory(dim: int, heads: int, ratio: float, rate: float) -> AdapterBlock:
            return AdapterBlock(
                dim, heads, ratio, rate, stma_width, adapter_width, template_tokens, official_init
            )

        super().__init__(
            template_size=template_size, patch_size=patch_size, block_factory=block_factory, **vit_options
        )
        # The generic ViT initialisation ran over the adapters too; restore theirs.
        for module in self.modules():
            if isinstance(module, ZeroOutputAdapter):
                module.reset_parameters()

    def embed_template_pairs(self, templates_rgb: torch.Tensor, templates_x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) each -> template tokens of both streams, (2B, T * N_z, C), RGB first."""
        return torch.cat([self.embed_templates(templates_rgb), self.embed_templates(templates_x)])

    def forward_tokens(
        self, template_tokens: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> torch.Tensor:
        num_templates = template_tokens.shape[1] // self.template_tokens
        templates_rgb, templates_x = torch.split(template_tokens, search_rgb.shape[0])
        x = torch.cat([templates_rgb, self.embed_search(search_rgb)], dim=1)
        y = torch.cat([templates_x, self.embed_search(search_x)], dim=1)
        # The block factory made every block an AdapterBlock.
        for block in cast("Iterable[AdapterBlock]", self.blocks):
            x, y = block.forward_pair(x, y, num_templates)
        out: torch.Tensor = self.norm(x) + self.norm(y)
        return out

    def forward(
        self,
        templates_rgb: torch.Tensor,
        templates_x: torch.Tensor,
        search_rgb: torch.Tensor,
        search_x: torch.Tensor,
    ) -> torch.Tensor:
        return self.forward_tokens(self.embed_template_pairs(templates_rgb, templates_x), search_rgb, search_x)


class DMTrack(OneStreamTracker):
    """forward(templates_rgb, templates_x (B,T,3,128,128) oldest first, search_rgb, search_x).

    `vit_options` are the backbone's (embed_dim, depth, num_heads, sizes, drop_path_rate).
    Implements `protocol.TrackingModel`: `encode_templates` embeds the template memory, which
    the tracker redoes whenever the memory changes (every frame once it is full).
    """

    backbone: DMTrackBackbone

    def __init__(
        self,
        num_templates: int = 3,
        head_channels: int = 256,
        stma_width: int = 12,
        adapter_width: int = 8,
        official_init: bool = False,
        template_factor: float = DEFAULT_TEMPLATE_FACTOR,
        search_factor: float = DEFAULT_SEARCH_FACTOR,
        **vit_options: Any,
    ):
        super().__init__()
        self.backbone = DMTrackBackbone(
            stma_width=stma_width, adapter_width=adapter_width, official_init=official_init, **vit_options
        )
        self._set_geometry(num_templates, template_factor, search_factor)
        self.box_head = CenterHead(self.backbone.embed_dim, head_channels, self.feat_size)
        self.freeze_all_but_adapters()

    def freeze_all_but_adapters(self) -> None:
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(ADAPTER_KEYWORD in name)

    def train(self, mode: bool = True) -> DMTrack:
        """Adapters train; the frozen head's BatchNorm statistics stay fixed."""
        super().train(mode)
        self.box_head.eval()
        return self

    def encode_templates(self, templates_rgb: torch.Tensor, templates_x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) (or (B, 3, S, S) for one) each -> (2B, T * N_z, C) embedded tokens;
        any T from 1 to num_templates (the tracker's memory fills over the first frames)."""
        if templates_rgb.dim() == 4:
            templates_rgb, templates_x = templates_rgb.unsqueeze(1), templates_x.unsqueeze(1)
        return self.backbone.embed_template_pairs(templates_rgb, templates_x)

    def track_search(
        self, templates: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        features = self.backbone.forward_tokens(templates, search_rgb, search_x)
        maps: dict[str, torch.Tensor] = self.box_head(features[:, -self.backbone.search_tokens :])
        return maps

    def forward(
        self,
        templates_rgb: torch.Tensor,
        templates_x: torch.Tensor,
        search_rgb: torch.Tensor,
        search_x: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        return self.track_search(self.encode_templates(templates_rgb, templates_x), search_rgb, search_x)
