"""`rgbt-track bench`: runs the planned cases, prints the table, writes the JSON record."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.eval.peers import PEERS
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.models.protocol import model_config
from rgbt_tracking_ros.tracker.acceleration import EXECUTIONS, PRECISIONS

from ..benchmark import cases, plan
from ..benchmark.environment import describe
from ..benchmark.report import add_published_ratio, table, write_json

WHAT = ("model", "tracker", "states", "target", "scan", "agreement", "peer")
BACKENDS = ("torch", "onnxruntime", "auto")
FRAME_SIZE = (512, 640)  # (height, width) of the synthetic frames: a common thermal resolution
SCAN_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _devices(requested: list[str] | None) -> list[torch.device]:
    if requested:
        return [torch.device(name) for name in requested]
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def _checkpoints(pairs: list[str]) -> dict[str, str]:
    checkpoints = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint wants MODEL=PATH, got {pair!r}")
        checkpoints[name] = path
    return checkpoints


def _measure(rows: list[dict[str, Any]], row: dict[str, Any], case: Callable[[], dict[str, Any]]) -> None:
    """Run one case; a failure (out of memory, a kernel that does not compile) is recorded
    in its row and the run goes on."""
    label = " ".join(str(row.get(key, "")) for key in ("kind", "name", "device", "precision", "execution", "backend"))
    print(f"bench: {label} ...", file=sys.stderr, flush=True)
    try:
        row.update(case())
    except Exception as error:  # noqa: BLE001 - reported in the table and the exit status
        row["error"] = f"{type(error).__name__}: {error}"
    rows.append(add_published_ratio(row))


def _scan_rows(rows: list[dict[str, Any]], device: torch.device, args: argparse.Namespace) -> None:
    shapes = cases.scan_shapes()
    for shape_name in args.scan_shapes:
        shape = shapes[shape_name]
        budget = plan.budget("scan", device, shape[-1] >= plan.LONG_SCAN, args.quick, args.warmup, args.iterations)
        for precision in plan.precisions(device, args.precisions):
            for backend in cases.scan_backends(device):
                row = dict(kind="scan", name=shape_name, device=str(device), precision=precision,
                           execution=backend, shape="x".join(map(str, shape)))
                _measure(rows, row, lambda: cases.bench_scan(
                    shape, device, SCAN_DTYPES[precision], backend, budget.warmup, budget.iterations))


def _model_rows(rows: list[dict[str, Any]], device: torch.device, name: str, args: argparse.Namespace,
                checkpoints: dict[str, str]) -> None:
    model = load_model(name, checkpoints.get(name))
    # Box agreement means something only for trained weights: shipped or given.
    trained = name in checkpoints or bool(model_config(model).get("weights"))
    large = name in plan.LARGE_MODELS
    needs_sequence = {"tracker", "states", "agreement"} & set(args.what)
    sequence = make_sequence(args.seed, plan.sequence_frames(device, args.quick), *FRAME_SIZE) if needs_sequence else None
    for precision in plan.precisions(device, args.precisions):
        for execution in plan.executions(device, args.executions):
            base = dict(name=name, device=str(device), precision=precision, execution=execution)
            # Each asked-for backend once: "auto" is the one it resolves to here.
            backends = dict.fromkeys(cases.backend_name(model, device, precision, execution, backend)
                                     for backend in args.backends)
            for backend in backends:
                if "model" in args.what:
                    budget = plan.budget("model", device, large, args.quick, args.warmup, args.iterations)
                    _measure(rows, {"kind": "model", **base, "backend": backend}, lambda: cases.bench_model(
                        model, device, precision, execution, budget.warmup, budget.iterations, backend))
                if "tracker" in args.what and sequence is not None:
                    budget = plan.budget("tracker", device, large, args.quick, args.warmup, args.iterations)
                    _measure(rows, {"kind": "tracker", **base, "backend": backend}, lambda: cases.bench_tracker(
                        model, device, precision, execution, sequence, budget.warmup, budget.iterations, backend))
                if "states" in args.what and sequence is not None:
                    budget = plan.budget("tracker", device, large, args.quick, args.warmup, args.iterations)
                    for state in cases.STATES:
                        row = {"kind": "state", **base, "backend": backend}
                        _measure(rows, row, lambda: cases.bench_state(
                            model, device, precision, execution, sequence, state, budget.warmup,
                            budget.iterations, backend))
            fast = precision != "fp32" or execution != "eager"
            if "agreement" in args.what and trained and fast and sequence is not None:
                _measure(rows, {"kind": "agreement", **base},
                         lambda: cases.box_agreement(model, device, precision, execution, sequence))
    # The target model runs on CPU tensors whatever the device: measured once, on the CPU pass.
    if "target" in args.what and device.type == "cpu" and hasattr(model, "SEARCH_FEATURE_GROUPS"):
        budget = plan.budget("tracker", device, False, args.quick, args.warmup, args.iterations)
        for call in cases.TARGET_MODEL_CALLS:
            row = dict(kind="target_model", name=name, device="cpu", precision="fp32", execution="eager")
            _measure(rows, row, lambda: cases.bench_target_model(model, call, budget.warmup, budget.iterations))
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _peer_rows(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """CSRT (OpenCV, CPU) on the tracker rows' frames: the per-frame time to weigh ours against."""
    sequence = make_sequence(args.seed, plan.sequence_frames(torch.device("cpu"), args.quick), *FRAME_SIZE)
    budget = plan.budget("tracker", torch.device("cpu"), False, args.quick, args.warmup, args.iterations)
    for peer in args.peers:
        row = dict(kind="peer", name=peer, device="cpu", precision="-", execution="-", backend="opencv")
        _measure(rows, row, lambda: cases.bench_peer(peer, sequence, budget.warmup, budget.iterations))


def bench(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = _devices(args.devices)
    checkpoints = _checkpoints(args.checkpoint)
    rows: list[dict[str, Any]] = []
    for device in devices:
        if "scan" in args.what:
            _scan_rows(rows, device, args)
        for name in args.models:
            _model_rows(rows, device, name, args, checkpoints)
        if "peer" in args.what and device.type == "cpu":
            _peer_rows(rows, args)
    settings = {key: value for key, value in vars(args).items() if key != "func"}
    out = Path(args.json or f"out/bench/bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
    write_json(out, describe(devices), settings, rows)
    print(table(rows))
    print(f"\nwrote {out}")
    failed = [row for row in rows if "error" in row]
    return 1 if failed else 0


def add_bench_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "bench", help="latency, FPS and peak memory at batch 1: models, tracker step, scan",
        description="Latency and FPS at batch 1 (median, p99, after warm-up), the whole tracker step, "
        "the selective scan alone and peak memory, per device, precision and execution; a table "
        "and a JSON record with the machine and settings. Full runs on a GPU; short ones on CPU "
        "(a few minutes on two cores). See docs/benchmarks.md.",
    )
    parser.add_argument("--models", nargs="+", default=list(plan.DEFAULT_MODELS), help="registered model names")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH",
                        help="weights for a model (repeatable); trained weights add the box agreement")
    parser.add_argument("--devices", nargs="+", help="default: cpu, and cuda when one is visible")
    parser.add_argument("--precisions", nargs="+", choices=sorted(PRECISIONS),
                        help="default: all three on CUDA, fp32 on CPU (half precision is emulated, slow, on CPUs without AMX)")
    parser.add_argument("--executions", nargs="+", choices=EXECUTIONS,
                        help="on CUDA (default: eager and cuda_graph; compiling takes minutes per "
                        "model and precision); CPU is always eager")
    parser.add_argument("--what", nargs="+", choices=WHAT, default=list(WHAT),
                        help="which kinds of case (peer: CSRT's per-frame time on the same frames, CPU)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["auto"],
                        help="how the model and tracker rows run the model (default auto: onnxruntime "
                        "for the compact model on CPU at fp32, torch otherwise); several: a row each")
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=["csrt-rgb"],
                        help="baseline trackers of the peer rows")
    parser.add_argument("--scan-shapes", nargs="+", choices=sorted(cases.SCAN_NAMES),
                        default=list(cases.SCAN_NAMES), help="scans to time alone")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 warm-up and 2 timed calls per case")
    parser.add_argument("--warmup", type=int, help="untimed calls per case (overrides the default)")
    parser.add_argument("--iterations", type=int, help="timed calls per case (overrides the default)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic sequence")
    parser.add_argument("--json", help="where to write the record (default: out/bench/bench-<time>.json)")
    parser.set_defaults(func=bench)
