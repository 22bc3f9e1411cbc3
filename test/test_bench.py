"""`rgbt-track bench`: statistics, plans, the report, and a quick CPU run end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rgbt_tracking_ros import cli
from rgbt_tracking_ros.benchmark import plan
from rgbt_tracking_ros.benchmark.cases import SCAN_NAMES, bench_scan, box_agreement, scan_shapes
from rgbt_tracking_ros.benchmark.report import add_published_ratio, table
from rgbt_tracking_ros.benchmark.timing import PeakMemory, summarise, time_calls
from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.export import sample_inputs
from rgbt_tracking_ros.models import build_model, mamba

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_summary_statistics() -> None:
    latency = summarise([1.0] * 98 + [10.0, 20.0], warmup=3)
    assert latency.median_ms == 1.0 and latency.fps == 1000.0
    assert 10.0 < latency.p99_ms <= 20.0 and latency.iterations == 100 and latency.warmup == 3


def test_time_calls_warms_up_then_times_each_call() -> None:
    calls = []
    latency = time_calls(lambda: calls.append(1), CPU, warmup=2, iterations=5)
    assert len(calls) == 7 and latency.iterations == 5 and latency.median_ms >= 0
    with pytest.raises(ValueError, match="at least 1"):
        time_calls(lambda: None, CPU, warmup=0, iterations=0)


def test_cpu_peak_memory_sees_a_freed_allocation() -> None:
    with PeakMemory(CPU):
        big = torch.ones(256 * 2**20 // 4)  # an earlier, higher peak must not hide the next one
        del big
    with PeakMemory(CPU) as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert memory.process_peak_mb >= memory.peak_mb >= 60


def test_plans_are_full_on_gpu_short_on_cpu() -> None:
    assert plan.budget("model", CUDA, True, False) == plan.Budget(50, 500)
    assert plan.budget("model", CPU, True, False) == plan.Budget(1, 3)
    assert plan.budget("tracker", CPU, False, True) == plan.Budget(1, 2)
    assert plan.budget("scan", CPU, False, False, iterations=7).iterations == 7
    assert plan.precisions(CUDA, None) == ["fp32", "fp16", "bf16"] and plan.precisions(CPU, None) == ["fp32"]
    assert plan.executions(CPU, ["eager", "cuda_graph"]) == ["eager"]
    assert plan.executions(CUDA, None) == ["eager", "cuda_graph"]


def test_report_compares_with_published_speeds() -> None:
    row = add_published_ratio({"kind": "model", "name": "ainet_256", "device": "cuda", "precision": "fp16",
                               "execution": "cuda_graph", "median_ms": 2.5, "p99_ms": 3.0, "fps": 400.0})
    assert row["vs_published"] == pytest.approx(400 / 37.5)
    text = table([row, {"kind": "scan", "name": "ainet_ofm", "error": "RuntimeError: boom"}])
    assert "10.67x published" in text and "failed: RuntimeError: boom" in text


def test_scan_case_reports_its_error_against_the_reference() -> None:
    row = bench_scan((8, 4, 40), CPU, torch.float32, "torch", warmup=1, iterations=2)
    assert row["max_abs_error"] < 1e-4 and row["iterations"] == 2


def test_box_agreement_of_a_path_with_itself_is_perfect() -> None:
    row = box_agreement(build_model("ainet_tiny"), CPU, "fp32", "eager", make_sequence(4, frames=4))
    assert row == {"mean_iou": 1.0, "min_iou": 1.0, "frames": 3}


def test_quick_cpu_run_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    status = cli.main(["bench", "--quick", "--devices", "cpu", "--models", "compact_rgbt",
                       "--what", "model", "tracker", "scan", "--scan-shapes", "compact_dfm", "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "compact_rgbt" in printed and f"wrote {out}" in printed
    record = json.loads(out.read_text())
    environment = record["environment"]
    assert environment["devices"]["cpu"] and environment["torch"] == torch.__version__
    assert {"python", "numpy", "torch_threads", "scan_backend"} <= set(environment)
    assert record["settings"]["quick"] is True
    kinds = {(row["kind"], row["name"]) for row in record["results"]}
    assert kinds == {("scan", "compact_dfm"), ("model", "compact_rgbt"), ("tracker", "compact_rgbt")}
    for row in record["results"]:
        assert row["median_ms"] > 0 and row["fps"] > 0 and "error" not in row


def test_bad_checkpoint_argument_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["bench", "--checkpoint", "nopath", "--what", "scan"]) == 2
    assert "MODEL=PATH" in capsys.readouterr().err


def test_bench_prints_csrt_beside_the_tracker(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    status = cli.main(["bench", "--quick", "--devices", "cpu", "--models", "compact_rgbt", "--what", "tracker",
                       "peer", "--backends", "torch", "--json", str(out)])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert "backend" in lines[0] and "fps" in lines[0]
    peer = next(line for line in lines if line.startswith("peer"))
    assert "csrt-rgb" in peer and "opencv" in peer
    rows = {row["kind"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["tracker"]["backend"] == "torch"
    assert rows["peer"]["name"] == "csrt-rgb" and rows["peer"]["median_ms"] > 0 and rows["peer"]["fps"] > 0


def test_state_rows_report_the_state_each_case_reached() -> None:
    from rgbt_tracking_ros.benchmark.cases import STATES, bench_state
    from rgbt_tracking_ros.models.loading import load_model

    model, sequence = load_model("compact_rgbt"), make_sequence(4, frames=2)
    for state in ("lost, widened search", "lost, full-frame search"):
        row = bench_state(model, CPU, "fp32", "eager", sequence, state, warmup=1, iterations=2, backend="torch")
        assert row["state"] == state and row["reached"] == "LOST 3" and row["median_ms"] > 0
    assert set(STATES) >= {"tracking, box 40 px", "tracking, box 300 px"}
    assert "(reached: LOST 3)" in table([{"kind": "state", **row}])


def test_target_model_rows_time_its_response_and_refresh(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--devices", "cpu", "--models", "compact_rgbt", "--what", "target",
                     "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [row["call"] for row in rows] == ["respond", "refresh"]
    assert all(row["kind"] == "target_model" and row["median_ms"] > 0 for row in rows)
    # The compact model's search features: 2 x (40 + 112) channels on the 192 px crop's 24 x 24 grid.
    assert {row["grid"] for row in rows} == {"304x24x24"}
    assert "refresh on 304x24x24 search features" in capsys.readouterr().out


def test_target_model_rows_refuse_a_model_without_search_features() -> None:
    from torch import nn

    from rgbt_tracking_ros.benchmark.cases import bench_target_model

    with pytest.raises(ValueError, match="no search features"):
        bench_target_model(nn.Linear(1, 1), "respond", warmup=1, iterations=1)


def test_scan_shapes_are_the_scans_the_compact_model_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    original = mamba.selective_scan

    def recording(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, *args: object, **kwargs: object) -> object:
        seen.append((u.shape[1], A.shape[1], u.shape[2]))
        return original(u, delta, A, *args, **kwargs)

    monkeypatch.setattr(mamba, "selective_scan", recording)
    model = build_model("compact_rgbt", pretrained=False).eval()
    with torch.no_grad():
        model(*sample_inputs(model))
    assert seen and set(seen) == {scan_shapes()["compact_dfm"]}
    assert tuple(scan_shapes()) == SCAN_NAMES, "the CLI's choices are the shapes' names"
