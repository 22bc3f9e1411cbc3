"""The project's own selective-scan kernel in Triton: one pass over memory, state in registers.

Each program owns one batch row and a block of channels, keeps their (channels x d_state)
state in fp32 registers and walks the sequence in tiles of BLOCK_L steps: inside a tile an
associative scan gives every step's state at once, the tile's last state is carried into the
next. u, delta, B, C and z are read once and y written once, which is what bounds the scan
on a GPU (the PyTorch scan writes (batch, dim, d_state, L) tensors several times over).

Inference only: callers that need gradients use the PyTorch scan. Importing this module
imports triton; `selective_scan.load_triton_scan` does that lazily. With TRITON_INTERPRET=1
set before the import, the same kernel runs on CPU tensors through Triton's interpreter,
which is how the CPU tests check it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .selective_scan import check_shapes

# fp32 values held per program in each (BLOCK_D, BLOCK_N, BLOCK_L) tile: 4096 at 8 warps keeps
# the few live tiles in registers (ptxas for sm_80 and sm_90a: at most 168, no spills).
TILE_ELEMENTS = 4096
# As torch.nn.functional.softplus: x above it is returned unchanged. A constexpr, as compiled
# kernels may read no other globals.
SOFTPLUS_THRESHOLD = tl.constexpr(20.0)


@triton.jit
def _combine(decay_1, drive_1, decay_2, drive_2):
    """(a1, b1) then (a2, b2) = (a1 * a2, a2 * b1 + b2): two steps of h = a * h + b."""
    return decay_1 * decay_2, decay_2 * drive_1 + drive_2


@triton.jit
def _load_tile(ptr, rows, t, stride_rows, stride_len, mask):
    """A (rows x steps) tile of one batch row's (C, L) tensor as fp32, 0 where masked."""
    return tl.load(ptr + rows[:, None] * stride_rows + t[None, :] * stride_len, mask=mask,
                   other=0.0).to(tl.float32)


@triton.jit
def _scan_kernel(
    u_ptr, delta_ptr, a_ptr, b_ptr, c_ptr, d_ptr, z_ptr, bias_ptr, y_ptr,
    dim, length, n_state,
    stride_u_batch, stride_u_dim, stride_u_len,
    stride_delta_batch, stride_delta_dim, stride_delta_len,
    stride_a_dim, stride_a_state,
    stride_b_batch, stride_b_state, stride_b_len,
    stride_c_batch, stride_c_state, stride_c_len,
    stride_z_batch, stride_z_dim, stride_z_len,
    stride_y_batch, stride_y_dim, stride_y_len,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
):
    batch = tl.program_id(0)
    channels = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    states_n = tl.arange(0, BLOCK_N)
    steps = tl.arange(0, BLOCK_L)
    channel_ok = channels < dim
    state_ok = states_n < n_state
    a = _load_tile(a_ptr, channels, states_n, stride_a_dim, stride_a_state,
                   channel_ok[:, None] & state_ok[None, :])
    if HAS_D:
        skip = tl.load(d_ptr + channels, mask=channel_ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + channels, mask=channel_ok, other=0.0).to(tl.float32)
    u_ptr += batch * stride_u_batch
    delta_ptr += batch * stride_delta_batch
    b_ptr += batch * stride_b_batch
    c_ptr += batch * stride_c_batch
    z_ptr += batch * stride_z_batch
    y_ptr += batch * stride_y_batch
    state = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    last_step = (steps == BLOCK_L - 1)[None, None, :]
    for start in range(0, length, BLOCK_L):
        t = start + steps
        step_ok = t < length
        tile_ok = channel_ok[:, None] & step_ok[None, :]
        io_ok = state_ok[:, None] & step_ok[None, :]
        u = _load_tile(u_ptr, channels, t, stride_u_dim, stride_u_len, tile_ok)
        delta = _load_tile(delta_ptr, channels, t, stride_delta_dim, stride_delta_len, tile_ok)
        b = _load_tile(b_ptr, states_n, t, stride_b_state, stride_b_len, io_ok)
        c = _load_tile(c_ptr, states_n, t, stride_c_state, stride_c_len, io_ok)
        if HAS_BIAS:
            delta += bias[:, None]
        if SOFTPLUS:
            delta = tl.where(delta > SOFTPLUS_THRESHOLD, delta, tl.log(1.0 + tl.exp(delta)))
        # Steps past the end get delta 0: decay 1 and drive 0 carry the state through unchanged.
        delta = tl.where(tile_ok, delta, 0.0)
        decay = tl.exp(delta[:, None, :] * a[:, :, None])
        drive = (delta * u)[:, None, :] * b[None, :, :]
        decay, drive = tl.associative_scan((decay, drive), 2, _combine)
        states = drive + decay * state[:, :, None]
        y = tl.sum(states * c[None, :, :], axis=1)
        state = tl.sum(tl.where(last_step, states, 0.0), axis=2)
        if HAS_D:
            y += skip[:, None] * u
        if HAS_Z:
            z = _load_tile(z_ptr, channels, t, stride_z_dim, stride_z_len, tile_ok)
            y *= z * tl.sigmoid(z)
        tl.store(y_ptr + channels[:, None] * stride_y_dim + t[None, :] * stride_y_len,
                 y.to(y_ptr.dtype.element_ty), mask=tile_ok)


@dataclass(frozen=True)
class Tiling:
    block_d: int
    block_n: int
    block_l: int
    num_warps: int


def tiling(batch: int, dim: int, n_state: int, length: int, processors: int) -> Tiling:
    """Tile sizes for a scan: all of d_state in one tile; 64 steps per tile on long sequences
    (fewer trips through the sequential carry), 32 on short ones; then as many channels as
    fit TILE_ELEMENTS, halved while that leaves processors idle (batch 1 has few programs);
    one warp per 512 tile elements, up to 8. Set without GPU measurements: a first guess."""
    block_n = triton.next_power_of_2(n_state)
    block_l = 64 if length >= 1024 else 32
    block_d = max(1, min(triton.next_power_of_2(dim), TILE_ELEMENTS // (block_n * block_l)))
    while block_d > 1 and batch * triton.cdiv(dim, block_d) < processors:
        block_d //= 2
    num_warps = max(1, min(8, block_d * block_n * block_l // 512))
    return Tiling(block_d, block_n, block_l, num_warps)


def _processors(device: torch.device) -> int:
    """Streaming multiprocessors to fill; the interpreter (CPU tensors) runs programs serially."""
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def selective_scan_triton(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The scan (selective_scan_fn's signature) in one kernel; y has u's shape and dtype.

    Accumulates in fp32 whatever the input dtype; inputs may be strided (no copies made).
    """
    check_shapes(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    y = torch.empty_like(u)
    if y.numel() == 0:
        return y
    tiles = tiling(batch, dim, A.shape[1], length, _processors(u.device))
    z_arg = z if z is not None else u  # an unused pointer where an input is absent
    grid = (batch, triton.cdiv(dim, tiles.block_d))
    _scan_kernel[grid](
        u, delta, A, B, C, D if D is not None else A, z_arg,
        delta_bias if delta_bias is not None else A, y,
        dim, length, A.shape[1],
        *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *z_arg.stride(),
        *y.stride(),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        SOFTPLUS=delta_softplus, BLOCK_D=tiles.block_d, BLOCK_N=tiles.block_n,
        BLOCK_L=tiles.block_l, num_warps=tiles.num_warps,
    )
    return y
