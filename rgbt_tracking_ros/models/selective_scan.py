"""The Mamba-1 selective scan: a GPU kernel where one runs, the project's PyTorch scan elsewhere.

The trackers must also run where no kernel can be loaded (CPU-only robots, CI), so the project
carries exact PyTorch scans and only hands over to a kernel when the tensors live on a GPU and
one imports: its own Triton kernel (`scan_triton`) or mamba_ssm's; with both, the faster one
at each shape, timed once. Shapes follow
`mamba_ssm.ops.selective_scan_interface.selective_scan_fn`: u, delta, z (batch, dim, L);
A (dim, N); B, C (batch, N, L); D, delta_bias (dim,).
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

BACKEND_ENV = "RGBT_SCAN_BACKEND"
BACKENDS = ("auto", "torch", "reference", "mamba_ssm", "triton")
# Kernels that only run forward: with gradients wanted the scan falls back to PyTorch.
INFERENCE_ONLY = ("triton",)
# Steps per block of the blocked doubling scan (GPUs without a kernel): 32 measured fastest
# at L = 320 and 3072 when that scan also served the CPU.
CHUNK = 32
# Elements of one (batch, dim-slice, N, L) working tensor. On CPU 2 MiB of fp32 keeps the
# working set in cache (measured about 2x faster than 32 MiB slices with the doubling scan);
# on a GPU, 64 MiB slices keep
# the kernel launches few while a handful of live tensors stays well under 1 GiB.
CPU_SLICE_ELEMENTS = 1 << 19
GPU_SLICE_ELEMENTS = 1 << 24

ScanFn = Callable[..., torch.Tensor]


@functools.lru_cache(maxsize=1)
def load_mamba_scan() -> ScanFn | None:
    """mamba_ssm's `selective_scan_fn`, or None when it cannot be imported.

    Imported lazily and cached because mamba_ssm loads compiled CUDA code on import, which
    fails, not always with ImportError, on machines without a matching GPU stack.
    """
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:
        return None
    scan: ScanFn = selective_scan_fn
    return scan


@functools.lru_cache(maxsize=1)
def load_triton_scan() -> ScanFn | None:
    """The project's Triton kernel, or None when triton cannot be imported (CPU-only installs)."""
    try:
        from .scan_triton import selective_scan_triton
    except Exception:
        return None
    return selective_scan_triton


def _triton_runs_on(device: torch.device) -> bool:
    # On CPU tensors only Triton's interpreter runs the kernel (the CPU tests use it).
    interpreted = os.environ.get("TRITON_INTERPRET", "0") == "1"
    return load_triton_scan() is not None and (device.type == "cuda" or interpreted)


def load_kernel(name: str) -> ScanFn | None:
    """The named kernel ("mamba_ssm" or "triton"), or None when it cannot be imported."""
    return load_mamba_scan() if name == "mamba_ssm" else load_triton_scan()


def _loaded_kernel(name: str) -> ScanFn:
    """The named kernel, which the caller found importable (`gpu_kernels`, `active_backend`)."""
    scan = load_kernel(name)
    if scan is None:
        raise RuntimeError(f"selective scan: the {name} kernel cannot be imported")
    return scan


_INSTALL_HINTS = {
    "mamba_ssm": "install the 'gpu' extra on a machine with a matching CUDA toolkit",
    "triton": "it comes with PyTorch's CUDA wheels",
}


def _requested_backend() -> str:
    name = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def gpu_kernels(device: torch.device | str) -> list[str]:
    """The scan kernels that load and run on `device`, ours first."""
    device = torch.device(device)
    kernels = ["triton"] if _triton_runs_on(device) else []
    if device.type == "cuda" and load_mamba_scan() is not None:
        kernels.append("mamba_ssm")
    return kernels


def active_backend(device: torch.device | str) -> str:
    """Which backend `selective_scan` uses on `device` for inference: "triton", "mamba_ssm",
    "fastest" (both kernels load: the faster is timed once per shape), "torch" or "reference".

    Read on every call so that `RGBT_SCAN_BACKEND` can be changed at run time.
    """
    requested = _requested_backend()
    if requested in _INSTALL_HINTS and load_kernel(requested) is None:
        raise RuntimeError(
            f"{BACKEND_ENV}={requested}, but {requested} cannot be imported "
            f"({_INSTALL_HINTS[requested]}; or unset {BACKEND_ENV})"
        )
    if requested == "triton" and not _triton_runs_on(torch.device(device)):
        raise ValueError(f"{BACKEND_ENV}=triton: the kernel runs on CUDA tensors only "
                         "(on CPU, only under TRITON_INTERPRET=1)")
    if requested != "auto":
        return requested
    kernels = gpu_kernels(device)
    if len(kernels) > 1:
        return "fastest"
    return kernels[0] if kernels else "torch"


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# (device, dtype, u shape, d_state, which optional inputs) -> the kernel that won there.
_FASTEST: dict[tuple[object, ...], str] = {}
TIMING_REPEATS = 5
# The keyword inputs of a scan: D, z, delta_bias (tensors or None) and delta_softplus.
ScanKwargs = dict[str, torch.Tensor | bool | None]


def _time_kernel(scan: ScanFn, args: tuple[torch.Tensor, ...], kwargs: ScanKwargs) -> float:
    """Median milliseconds of one scan call, timed with CUDA events after a warm-up call."""
    scan(*args, **kwargs)
    times: list[float] = []
    for _ in range(TIMING_REPEATS):
        # torch.cuda.Event.__new__ is unannotated.
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        scan(*args, **kwargs)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def fastest_kernel(kernels: list[str], args: tuple[torch.Tensor, ...], kwargs: ScanKwargs) -> str:
    """The kernel timed fastest at these inputs' shape; timed once per shape and cached.

    While a CUDA graph is being captured nothing may be timed: an untimed shape gets ours.
    """
    u, A = args[0], args[2]
    key = (u.device, u.dtype, tuple(u.shape), A.shape[1],
           *(kwargs.get(name) is not None for name in ("D", "z", "delta_bias")))
    if key not in _FASTEST:
        if _capturing():
            return kernels[0]
        timings = {name: _time_kernel(_loaded_kernel(name), args, kwargs) for name in kernels}
        _FASTEST[key] = min(timings, key=timings.__getitem__)
    return _FASTEST[key]


def selective_scan(
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
    """The scan on the fastest backend available for u's device; y has u's shape and dtype."""
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if _opaque_to_compiler(*args[:8]):
        y: torch.Tensor = torch.ops.rgbt_tracking.selective_scan(*args)
        return y
    return _dispatch(*args)


def _opaque_to_compiler(*tensors: torch.Tensor | None) -> bool:
    """Under torch.compile the scan is one operator instead of traced dispatch and kernels;
    not under export (ONNX needs plain operators) nor when gradients are wanted."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
    return _COMPILE_OP and torch.compiler.is_compiling() and not exporting and not _needs_grad(*tensors)


def _dispatch(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
              C: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
              delta_bias: torch.Tensor | None, delta_softplus: bool) -> torch.Tensor:
    args = (u, delta, A, B, C)
    kwargs: ScanKwargs = dict(D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)
    backend = active_backend(u.device)
    if _needs_grad(u, delta, A, B, C, D, z, delta_bias):
        if backend == "fastest":
            backend = "mamba_ssm"
        elif backend in INFERENCE_ONLY:
            backend = "torch"
    if backend == "fastest":
        backend = fastest_kernel(gpu_kernels(u.device), args, kwargs)
    return _backend_scan(backend)(*args, **kwargs)


def _backend_scan(backend: str) -> ScanFn:
    """The scan function of a backend ("fastest" resolved already)."""
    if backend in _INSTALL_HINTS:
        return _loaded_kernel(backend)
    return selective_scan_torch if backend == "torch" else selective_scan_reference


def _register_compile_op() -> bool:
    """The scan as an inference-only operator for torch.compile (no autograd formula: with
    gradients wanted the compiler traces `_dispatch`). torch < 2.4 has no custom_op: there
    the compiler traces `_dispatch` too."""
    if not hasattr(torch.library, "custom_op"):
        return False
    torch.library.custom_op(
        "rgbt_tracking::selective_scan", _dispatch, mutates_args=(),
        schema="(Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, "
               "Tensor? delta_bias, bool delta_softplus) -> Tensor",
    ).register_fake(lambda u, *rest: torch.empty_like(u))
    return True


_COMPILE_OP = _register_compile_op()


def check_shapes(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                 C: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
                 delta_bias: torch.Tensor | None) -> None:
    batch, dim, length = u.shape
    n_state = A.shape[1]
    expected = {
        "delta": (delta, (batch, dim, length)),
        "A": (A, (dim, n_state)),
        "B": (B, (batch, n_state, length)),
        "C": (C, (batch, n_state, length)),
        "D": (D, (dim,)),
        "z": (z, (batch, dim, length)),
        "delta_bias": (delta_bias, (dim,)),
    }
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"selective scan: {name} has shape {tuple(tensor.shape)}, not {shape}")


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    # fp32 at least, so that fp16/bf16 inputs keep the state accurate; fp64 stays (gradcheck).
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _prepare(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
             C: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
             delta_bias: torch.Tensor | None, delta_softplus: bool) -> tuple[torch.Tensor, ...]:
    """(u, delta, A, B, C) checked and in the compute dtype, delta biased and softplus'ed."""
    check_shapes(u, delta, A, B, C, D, z, delta_bias)
    dtype = _compute_dtype(u)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return u.to(dtype), delta, A.to(dtype), B.to(dtype), C.to(dtype)


def _finish(y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
            out_dtype: torch.dtype) -> torch.Tensor:
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


def _doubling_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hillis-Steele inclusive scan along the last axis; (a1, b1) o (a2, b2) = (a1*a2, a2*b1 + b2).

    Shifting in the identity (1, 0) keeps every step a whole-tensor, out-of-place op (autograd).
    """
    length = a.shape[-1]
    shift = 1
    while shift < length:
        b = b + a * F.pad(b[..., :-shift], (shift, 0))
        a = a * F.pad(a[..., :-shift], (shift, 0), value=1.0)
        shift *= 2
    return a, b


def linear_scan(
    a: torch.Tensor, b: torch.Tensor, chunk: int = CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve h_t = a_t * h_{t-1} + b_t (h_{-1} = 0) along the last axis; returns (prod a_0..a_t, h).

    Blocked scan: a doubling scan inside blocks of `chunk` steps, the same scan applied
    recursively to the blocks' last elements (the carries), then one fix-up that feeds each
    block the state left by the previous ones. Only products of decays |a| <= 1 are formed,
    so nothing overflows, and the work is O(L log chunk) instead of O(L log L).
    """
    length = a.shape[-1]
    if length <= chunk:
        return _doubling_scan(a, b)
    pad = -length % chunk
    a = torch.unflatten(F.pad(a, (0, pad), value=1.0), -1, (-1, chunk))
    b = torch.unflatten(F.pad(b, (0, pad)), -1, (-1, chunk))
    a, b = _doubling_scan(a, b)
    carry_a, carry_b = linear_scan(a[..., -1], b[..., -1], chunk)
    entry_a = F.pad(carry_a[..., :-1], (1, 0), value=1.0).unsqueeze(-1)
    entry_b = F.pad(carry_b[..., :-1], (1, 0)).unsqueeze(-1)
    products = (a * entry_a).flatten(-2)[..., :length]
    states = (b + a * entry_b).flatten(-2)[..., :length]
    return products, states


def _scan_slice(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor) -> torch.Tensor:
    decay = torch.exp(delta.unsqueeze(2) * A.unsqueeze(-1))
    drive = (delta * u).unsqueeze(2) * B.unsqueeze(1)
    _, states = linear_scan(decay, drive)
    return (states * C.unsqueeze(1)).sum(2)


def _to_blocks(x: torch.Tensor, block: int) -> torch.Tensor:
    """(batch, C, L) -> (block, batch, C, L / block) contiguous, zero-padded at the end."""
    padded = F.pad(x, (0, -x.shape[-1] % block))
    return torch.unflatten(padded, -1, (-1, block)).permute(3, 0, 1, 2).contiguous()


def _block_length(length: int) -> int:
    """About sqrt(L), a power of two: as many steps per block as there are blocks."""
    return 1 << max(0, math.ceil(math.log2(math.sqrt(length))))


def _blocked_terms(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step decay and drive, (block, batch, dim, N, blocks), step-major. Padded steps have
    delta 0, so decay 1 and drive 0."""
    steps = _to_blocks(delta, block)
    decay = torch.exp(steps.unsqueeze(3) * A[:, :, None])
    drive = (steps * _to_blocks(u, block)).unsqueeze(3) * _to_blocks(B, block).unsqueeze(2)
    return decay, drive


def _blocked_output(states: torch.Tensor, C: torch.Tensor, block: int, length: int) -> torch.Tensor:
    """y = sum_n h[n] * C[n] from step-major block states, back to (batch, dim, L)."""
    y = (states * _to_blocks(C, block).unsqueeze(2)).sum(3)
    return y.permute(1, 2, 3, 0).flatten(2)[..., :length]


def _carry_through_blocks(totals: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """The state entering each block, from each block's decay product and own end state."""
    carried = ends.clone()
    for j in range(1, carried.shape[-1]):
        carried[..., j].addcmul_(totals[..., j], carried[..., j - 1])
    return F.pad(carried[..., :-1], (1, 0))


def _scan_slice_recurrent(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
                          B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Inference on CPU: the recurrence itself, stepped through all blocks at once.

    The sequence is cut into about sqrt(L) blocks laid out step-major, so each of the
    block-length steps is one in-place multiply-add over every block's state, followed by a
    short pass carrying states from block to block and one fix-up. That is O(L) work in
    about 2 * sqrt(L) operations, against the doubling scan's O(L log L) in out-of-place
    operations: 3-5x faster at the trackers' shapes, and exact (only decays <= 1 multiply).
    In-place, so not for autograd.
    """
    block = _block_length(u.shape[-1])
    decay, states = _blocked_terms(u, delta, A, B, block)
    for k in range(1, block):
        states[k].addcmul_(decay[k], states[k - 1])
        decay[k].mul_(decay[k - 1])
    states.addcmul_(decay, _carry_through_blocks(decay[-1], states[-1]))
    return _blocked_output(states, C, block, u.shape[-1])


def _scan_slice_stepped(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
                        B: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Training on CPU: the blocked recurrence above in out-of-place steps, so autograd can
    follow it. About 2 * sqrt(L) small operations instead of the doubling scan's work over
    every (step, state) at each of its log-many levels: several times faster at batch 16."""
    block = _block_length(u.shape[-1])
    decay, drive = _blocked_terms(u, delta, A, B, block)
    # unbind, not indexing: the backward of each index would fill a whole zero tensor.
    decays, drives = decay.unbind(0), drive.unbind(0)
    states, products = [drives[0]], [decays[0]]
    for step_decay, step_drive in zip(decays[1:], drives[1:]):
        states.append(torch.addcmul(step_drive, step_decay, states[-1]))
        products.append(step_decay * products[-1])
    block_ends, block_decays = states[-1].unbind(-1), products[-1].unbind(-1)
    entering = [torch.zeros_like(block_ends[0])]
    for end, end_decay in zip(block_ends[:-1], block_decays[:-1]):
        entering.append(torch.addcmul(end, end_decay, entering[-1]))
    full = torch.stack(states) + torch.stack(products) * torch.stack(entering, -1)
    return _blocked_output(full, C, block, u.shape[-1])


def _dim_step(u: torch.Tensor, n_state: int) -> int:
    budget = CPU_SLICE_ELEMENTS if u.device.type == "cpu" else GPU_SLICE_ELEMENTS
    batch, _, length = u.shape
    return max(1, budget // max(1, batch * n_state * length))


def selective_scan_torch(
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
    """The project's PyTorch scan: exact, differentiable, any device.

    CPU inference runs the blocked recurrence; autograd and GPUs the doubling scan, whose
    few whole-tensor steps suit a GPU and autograd. The `dim` axis is processed in slices
    so that the (batch, dim, N, L) state tensors of the large models (dim 1536, L 3072,
    N 16: 300 MiB each in full) stay small.
    """
    x, delta, A, B, C = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    grad = _needs_grad(x, delta, A, B, C)
    if x.device.type == "cpu":
        # Exported graphs (ONNX) take the out-of-place steps too: the in-place ones become a
        # ScatterElements over the whole state per step, a third of onnxruntime's time.
        exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
        scan_slice = _scan_slice_stepped if grad or exporting else _scan_slice_recurrent
    else:
        scan_slice = _scan_slice
    if grad:
        # Under autograd each slice would keep its (batch, slice, N, L) intermediates for the
        # backward pass (GiBs at dim 1536, L 3072); recomputing each slice in backward keeps one.
        scan_slice = functools.partial(checkpoint, scan_slice, use_reentrant=False)
    step = _dim_step(u, A.shape[1])
    parts = zip(torch.split(x, step, 1), torch.split(delta, step, 1), torch.split(A, step, 0))
    pieces = [scan_slice(x_part, d_part, a_part, B, C) for x_part, d_part, a_part in parts]
    return _finish(torch.cat(pieces, 1), x, D, z, u.dtype)


def selective_scan_reference(
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
    """The scan as a plain loop over time: slow but obviously right, the ground truth for tests."""
    x, delta, A, B, C = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    state = x.new_zeros(x.shape[0], x.shape[1], A.shape[1])
    outputs = []
    for t in range(x.shape[2]):
        decay = torch.exp(delta[:, :, t, None] * A)
        drive = (delta[:, :, t] * x[:, :, t])[..., None] * B[:, None, :, t]
        state = decay * state + drive
        outputs.append((state * C[:, None, :, t]).sum(-1))
    return _finish(torch.stack(outputs, -1), x, D, z, u.dtype)
