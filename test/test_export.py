"""ONNX export: the compact model (scan included) and DMTrack run in onnxruntime on CPU with
the same maps and boxes as PyTorch; `rgbt-track export` writes and checks a file."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from rgbt_tracking_ros import cli
from rgbt_tracking_ros.export import check_onnx, export_onnx
from rgbt_tracking_ros.models import build_model

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxruntime", "onnxscript")),
    reason="onnx, onnxruntime and onnxscript are needed: pip install -e '.[export]' (in the dev extra)",
)


def test_compact_model_with_its_scans_exports_and_matches(tmp_path: Path) -> None:
    import onnx

    model = build_model("compact_rgbt")
    path = export_onnx(model, tmp_path / "compact.onnx")
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.graph.input}
    z, x = model.geometry.template_size, model.geometry.search_size
    assert inputs == {"template_rgb": [1, 3, z, z], "template_thermal": [1, 3, z, z],
                      "search_rgb": [1, 3, x, x], "search_thermal": [1, 3, x, x]}
    result = check_onnx(model, path)
    assert result["ok"], result


def test_dmtrack_export_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dmtrack.onnx"
    torch.manual_seed(0)
    assert cli.main(["export", "--model", "dmtrack_tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "same peak cell: True" in printed
    # The same initial weights again; then the check catches a file that no longer matches.
    torch.manual_seed(0)
    model = build_model("dmtrack_tiny")
    assert check_onnx(model, out)["ok"]
    with torch.no_grad():
        model.box_head.conv5_size.bias.add_(0.5)
    assert not check_onnx(model, out)["ok"]


def test_old_opsets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset must be 17 or newer"):
        export_onnx(build_model("dmtrack_tiny"), tmp_path / "x.onnx", opset=13)
