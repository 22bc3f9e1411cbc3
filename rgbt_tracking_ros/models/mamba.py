"""Mamba-1: the selective state-space block AINet's fusion modules are made of.

The parameter names (`in_proj`, `conv1d`, `x_proj`, `dt_proj`, `A_log`, `D`, `out_proj`) are
the ones official checkpoints use. The scan itself lives in `selective_scan`, which picks
mamba_ssm's CUDA kernel when it can and the project's PyTorch scan otherwise.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .selective_scan import selective_scan


def s4d_real_a_log(d_inner: int, d_state: int) -> torch.Tensor:
    """A_log = log(1..d_state) for every channel (the S4D-real initialisation)."""
    return torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1)


def scan_branch(
    xz: torch.Tensor,
    conv1d: nn.Conv1d,
    x_proj: nn.Linear,
    dt_proj: nn.Linear,
    a_log: torch.Tensor,
    d_skip: torch.Tensor,
) -> torch.Tensor:
    """One gated scan over xz (B, 2 * d_inner, L) -> (B, d_inner, L).

    Takes its layers as arguments so that one module can hold several scan orders under
    the flat official names (`conv1d_b`, `A_s_log`, ...).
    """
    x, z = xz.chunk(2, dim=1)
    length = x.shape[-1]
    x = F.silu(conv1d(x)[..., :length])
    d_state = a_log.shape[1]
    dt_rank = dt_proj.in_features
    dt, b, c = x_proj(x.transpose(1, 2)).split([dt_rank, d_state, d_state], dim=-1)
    delta = F.linear(dt, dt_proj.weight).transpose(1, 2)
    return selective_scan(
        x,
        delta,
        -torch.exp(a_log.float()),
        b.transpose(1, 2),
        c.transpose(1, 2),
        d_skip.float(),
        z=z,
        delta_bias=dt_proj.bias.float(),
        delta_softplus=True,
    )


def make_branch_layers(
    d_inner: int, d_state: int, d_conv: int, dt_rank: int
) -> tuple[nn.Conv1d, nn.Linear, nn.Linear, nn.Parameter, nn.Parameter]:
    """Conv, x_proj, dt_proj, A_log and D for one scan order."""
    conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
    x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
    dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
    a_log = nn.Parameter(s4d_real_a_log(d_inner, d_state))
    d_skip = nn.Parameter(torch.ones(d_inner))
    return conv1d, x_proj, dt_proj, a_log, d_skip


def default_dt_rank(d_model: int) -> int:
    return math.ceil(d_model / 16)


class Mamba(nn.Module):
    """A unidirectional Mamba-1 mixer over (B, L, d_model) tokens."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 1,
        dt_rank: int | None = None,
    ):
        super().__init__()
        d_inner = expand * d_model
        dt_rank = dt_rank or default_dt_rank(d_model)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D = make_branch_layers(
            d_inner, d_state, d_conv, dt_rank
        )
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        xz = self.in_proj(hidden).transpose(1, 2)
        y = scan_branch(xz, self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D)
        out: torch.Tensor = self.out_proj(y.transpose(1, 2))
        return out
