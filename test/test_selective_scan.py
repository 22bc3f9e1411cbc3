"""The parallel selective scan against the sequential reference, and the backend dispatch."""
from __future__ import annotations

import builtins
import math
import sys
import types
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from rgbt_tracking_ros.models import selective_scan as ss

N_STATE = 16


def make_inputs(batch: int, dim: int, length: int, *, seed: int = 0, n_state: int = N_STATE,
                delta_scale: float = 0.5) -> dict[str, torch.Tensor]:
    """Inputs with the models' magnitudes: A = -(1..N), softplus(delta_bias) in [1e-3, 0.1].

    "delta" is the raw projection (softplus applied in the scan), "dt" the positive step the
    scan gets when it applies no softplus.
    """
    gen = torch.Generator().manual_seed(seed)
    dt = torch.exp(torch.empty(dim).uniform_(math.log(1e-3), math.log(0.1), generator=gen))
    delta_bias = dt + torch.log(-torch.expm1(-dt))
    delta = delta_scale * torch.randn(batch, dim, length, generator=gen)
    return {
        "u": torch.randn(batch, dim, length, generator=gen),
        "delta": delta,
        "dt": F.softplus(delta + delta_bias[:, None]),
        "A": -torch.exp(torch.log(torch.arange(1.0, n_state + 1))).repeat(dim, 1),
        "B": torch.randn(batch, n_state, length, generator=gen),
        "C": torch.randn(batch, n_state, length, generator=gen),
        "D": torch.randn(dim, generator=gen),
        "z": torch.randn(batch, dim, length, generator=gen),
        "delta_bias": delta_bias,
    }


OPTIONS = {
    "plain": dict(D=False, z=False, delta_bias=False, delta_softplus=False),
    "D_z": dict(D=True, z=True, delta_bias=False, delta_softplus=False),
    "bias_softplus": dict(D=False, z=False, delta_bias=True, delta_softplus=True),
    "all": dict(D=True, z=True, delta_bias=True, delta_softplus=True),
}


def scan_args(inputs: dict[str, torch.Tensor], options: dict[str, bool]) -> tuple[tuple, dict]:
    delta = inputs["delta"] if options["delta_softplus"] else inputs["dt"]
    args = (inputs["u"], delta, inputs["A"], inputs["B"], inputs["C"])
    kwargs = {name: inputs[name] if options[name] else None for name in ("D", "z", "delta_bias")}
    kwargs["delta_softplus"] = options["delta_softplus"]
    return args, kwargs


def errors(inputs: dict[str, torch.Tensor], options: dict[str, bool]) -> tuple[float, float]:
    """Max abs error of the torch scan against the reference, and the reference's max |y|."""
    args, kwargs = scan_args(inputs, options)
    expected = ss.selective_scan_reference(*args, **kwargs)
    actual = ss.selective_scan_torch(*args, **kwargs)
    assert actual.shape == expected.shape == inputs["u"].shape
    assert torch.isfinite(actual).all()
    return (actual - expected).abs().max().item(), expected.abs().max().item()


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.parametrize("length", [1, 7, 63, 64, 65, 320, 3072])
def test_torch_scan_matches_reference(length: int, options: dict[str, bool]) -> None:
    dim = 12 if length == 3072 else 8
    inputs = make_inputs(2, dim, length, seed=length)
    assert errors(inputs, options)[0] < 1e-4


@pytest.mark.parametrize("length", [65, 3072])
def test_torch_scan_matches_reference_with_large_deltas(length: int) -> None:
    inputs = make_inputs(2, 8, length, seed=1, delta_scale=3.0)
    assert errors(inputs, OPTIONS["all"])[0] < 1e-4


def test_torch_scan_is_stable_with_strong_decays() -> None:
    gen = torch.Generator().manual_seed(2)
    inputs = make_inputs(2, 8, 3072, seed=2)
    inputs["A"] = -torch.linspace(1.0, 100.0, 8 * N_STATE).reshape(8, N_STATE)
    inputs["dt"] = 5.0 * torch.rand(2, 8, 3072, generator=gen)
    error, scale = errors(inputs, OPTIONS["D_z"])
    # |y| reaches a few hundred here, so judge the error against fp32 resolution at that size.
    assert scale > 10.0 and error < 1e-6 * scale
    dt, a = inputs["dt"].requires_grad_(True), inputs["A"].requires_grad_(True)
    ss.selective_scan_torch(inputs["u"], dt, a, inputs["B"], inputs["C"]).sum().backward()
    assert torch.isfinite(dt.grad).all() and torch.isfinite(a.grad).all() and a.grad.abs().max() > 0


def test_small_case_computed_by_hand() -> None:
    u, delta, a, b, c, d, z = [1.0, 2.0], [0.5, 1.0], -2.0, [3.0, 4.0], [5.0, 6.0], 0.1, [1.0, -0.5]
    h1 = delta[0] * b[0] * u[0]
    h2 = math.exp(delta[1] * a) * h1 + delta[1] * b[1] * u[1]
    silu = [zi / (1.0 + math.exp(-zi)) for zi in z]
    expected = torch.tensor([(h1 * c[0] + d * u[0]) * silu[0], (h2 * c[1] + d * u[1]) * silu[1]])
    raw_delta = torch.log(torch.expm1(torch.tensor(delta))) - 0.25
    for scan in (ss.selective_scan_torch, ss.selective_scan_reference):
        y = scan(torch.tensor([[u]]), raw_delta.reshape(1, 1, 2), torch.tensor([[a]]),
                 torch.tensor([[b]]), torch.tensor([[c]]), D=torch.tensor([d]),
                 z=torch.tensor([[z]]), delta_bias=torch.tensor([0.25]), delta_softplus=True)
        torch.testing.assert_close(y.reshape(2), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("length", [1, 5, 16, 17, 1000])
def test_linear_scan_matches_recurrence(length: int) -> None:
    gen = torch.Generator().manual_seed(length)
    a = torch.rand(3, length, generator=gen)
    a[:, ::7] = 0.0
    b = torch.randn(3, length, generator=gen)
    products, states = ss.linear_scan(a, b, chunk=4)
    state, product = torch.zeros(3), torch.ones(3)
    for t in range(length):
        state = a[:, t] * state + b[:, t]
        product = product * a[:, t]
        torch.testing.assert_close(states[:, t], state, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(products[:, t], product, rtol=1e-5, atol=1e-30)


def test_dim_slicing_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    args, kwargs = scan_args(make_inputs(2, 6, 100, seed=3), OPTIONS["all"])
    whole = ss.selective_scan_torch(*args, **kwargs)
    monkeypatch.setattr(ss, "CPU_SLICE_ELEMENTS", 1)
    assert ss._dim_step(args[0], N_STATE) == 1
    torch.testing.assert_close(ss.selective_scan_torch(*args, **kwargs), whole, rtol=0, atol=0)


GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def gradients(scan, inputs: dict[str, torch.Tensor], weight: torch.Tensor) -> list[torch.Tensor]:
    leaves = {name: inputs[name].clone().requires_grad_(True) for name in GRAD_NAMES}
    args, kwargs = scan_args(leaves, OPTIONS["all"])
    (scan(*args, **kwargs) * weight).sum().backward()
    return [leaves[name].grad for name in GRAD_NAMES]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-4)])
def test_gradients_match_reference(dtype: torch.dtype, tol: float,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ss, "CPU_SLICE_ELEMENTS", 1)
    inputs = {k: v.to(dtype) for k, v in make_inputs(2, 3, 37, seed=4, n_state=4).items()}
    weight = torch.randn(2, 3, 37, generator=torch.Generator().manual_seed(5), dtype=dtype)
    expected = gradients(ss.selective_scan_reference, inputs, weight)
    actual = gradients(ss.selective_scan_torch, inputs, weight)
    for name, got, want in zip(GRAD_NAMES, actual, expected):
        assert got is not None and want.abs().max() > 0, name
        error = ((got - want).abs().max() / want.abs().max()).item()
        assert error < tol, f"{name}: relative error {error:.2e}"


def test_gradcheck_torch_scan() -> None:
    inputs = {k: v.double() for k, v in make_inputs(1, 2, 20, seed=6, n_state=2).items()}
    leaves = [inputs[name].requires_grad_(True) for name in ("u", "delta", "A", "B", "C", "D", "z")]

    def scan(*tensors: torch.Tensor) -> torch.Tensor:
        return ss.selective_scan_torch(*tensors[:5], D=tensors[5], z=tensors[6],
                                       delta_bias=inputs["delta_bias"], delta_softplus=True)

    assert torch.autograd.gradcheck(scan, leaves)


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2.0 ** -10), (torch.bfloat16, 2.0 ** -7)])
def test_half_inputs_give_half_outputs_with_fp32_accuracy(dtype: torch.dtype, tol: float) -> None:
    inputs = make_inputs(2, 8, 320, seed=7)
    for name in ("u", "delta", "B", "C", "z"):
        inputs[name] = inputs[name].to(dtype)
    args, kwargs = scan_args(inputs, OPTIONS["all"])
    y = ss.selective_scan_torch(*args, **kwargs)
    assert y.dtype == dtype
    upcast = {k: v.float() for k, v in inputs.items()}
    args32, kwargs32 = scan_args(upcast, OPTIONS["all"])
    y32 = ss.selective_scan_reference(*args32, **kwargs32)
    assert y32.abs().max() > 1.0
    # Only the final rounding to `dtype` may differ: half an ulp relative (atol for |y| near 0).
    torch.testing.assert_close(y.float(), y32, rtol=tol, atol=1e-4)
    assert ss.selective_scan_reference(*args, **kwargs).dtype == dtype


@pytest.fixture
def clean_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """mamba_ssm as the machine has it, our Triton kernel absent (test_scan_fast covers it)."""
    monkeypatch.delenv(ss.BACKEND_ENV, raising=False)
    monkeypatch.setattr(ss, "load_triton_scan", lambda: None)
    ss.load_mamba_scan.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    ss.load_mamba_scan.cache_clear()


def spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple]:
    calls: list[tuple] = []
    original = getattr(ss, name)

    def record(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(ss, name, record)
    return calls


def break_mamba_import(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> types.ModuleType:
        if name.split(".")[0] == "mamba_ssm":
            raise OSError("libcudart.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def install_fake_mamba(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    calls: list[tuple] = []

    def selective_scan_fn(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        calls.append((args, kwargs))
        return torch.zeros_like(args[0])

    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = selective_scan_fn
    for name in ("mamba_ssm", "mamba_ssm.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, interface.__name__, interface)
    return calls


def test_cpu_uses_torch_backend(clean_backend: pytest.MonkeyPatch) -> None:
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["all"])
    calls = spy(clean_backend, "selective_scan_torch")
    assert ss.active_backend("cpu") == "torch"
    y = ss.selective_scan(*args, **kwargs)
    assert len(calls) == 1 and calls[0][1] == kwargs
    torch.testing.assert_close(y, ss.selective_scan_reference(*args, **kwargs), rtol=0, atol=1e-5)


def test_env_selects_reference_backend(clean_backend: pytest.MonkeyPatch) -> None:
    clean_backend.setenv(ss.BACKEND_ENV, "reference")
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["all"])
    calls = spy(clean_backend, "selective_scan_reference")
    assert ss.active_backend("cpu") == "reference"
    ss.selective_scan(*args, **kwargs)
    assert len(calls) == 1


def test_failing_mamba_import_falls_back_to_torch(clean_backend: pytest.MonkeyPatch) -> None:
    break_mamba_import(clean_backend)
    assert ss.load_mamba_scan() is None
    assert ss.active_backend("cuda") == "torch"
    assert ss.active_backend(torch.device("cpu")) == "torch"
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["all"])
    torch.testing.assert_close(ss.selective_scan(*args, **kwargs),
                               ss.selective_scan_reference(*args, **kwargs), rtol=0, atol=1e-5)


def test_forcing_unavailable_mamba_raises(clean_backend: pytest.MonkeyPatch) -> None:
    break_mamba_import(clean_backend)
    clean_backend.setenv(ss.BACKEND_ENV, "mamba_ssm")
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["plain"])
    with pytest.raises(RuntimeError, match="mamba_ssm cannot be imported"):
        ss.selective_scan(*args, **kwargs)


def test_available_mamba_is_used_on_cuda_only(clean_backend: pytest.MonkeyPatch) -> None:
    calls = install_fake_mamba(clean_backend)
    assert ss.active_backend("cuda:0") == "mamba_ssm"
    assert ss.active_backend("cpu") == "torch"
    clean_backend.setenv(ss.BACKEND_ENV, "mamba_ssm")
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["all"])
    y = ss.selective_scan(*args, **kwargs)
    assert len(calls) == 1 and torch.count_nonzero(y) == 0
    passed_args, passed_kwargs = calls[0]
    assert all(p is a for p, a in zip(passed_args, args)) and len(passed_args) == 5
    assert passed_kwargs == kwargs


def test_unknown_backend_name_is_rejected(clean_backend: pytest.MonkeyPatch) -> None:
    clean_backend.setenv(ss.BACKEND_ENV, "cudnn")
    with pytest.raises(ValueError, match="RGBT_SCAN_BACKEND"):
        ss.active_backend("cpu")


def test_silu_gate_matches_torch() -> None:
    args, kwargs = scan_args(make_inputs(1, 4, 30), OPTIONS["D_z"])
    ungated = ss.selective_scan_torch(*args, **{**kwargs, "z": None})
    gated = ss.selective_scan_torch(*args, **kwargs)
    torch.testing.assert_close(gated, ungated * F.silu(kwargs["z"]))
