"""Model + checkpoint loading as users call it, and the command line."""
from __future__ import annotations

import pytest
import torch

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.models import build_model
from rgbt_tracking_ros.models.checkpoints import CheckpointError, CheckpointMismatchError, save_checkpoint
from rgbt_tracking_ros.models.loading import load_model


def _official_file(path, model):
    torch.save({"epoch": 15, "net_type": "tiny", "net": model.state_dict(), "settings": None}, path)


def test_own_checkpoint_rebuilds_the_model_from_its_config(tmp_path):
    model = build_model("ainet_tiny")
    save_checkpoint(tmp_path / "m.pt", model, model.config)
    loaded = load_model(checkpoint=tmp_path / "m.pt")
    assert type(loaded).__name__ == "AINet" and loaded.config["name"] == "ainet_tiny"
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_official_checkpoint_needs_and_uses_the_model_name(tmp_path):
    model = build_model("dmtrack_tiny")
    _official_file(tmp_path / "official.pth.tar", model)
    with pytest.raises(CheckpointError, match="pass the model name"):
        load_model(checkpoint=tmp_path / "official.pth.tar")
    loaded = load_model("dmtrack_tiny", tmp_path / "official.pth.tar")
    assert torch.equal(loaded.box_head.conv5_ctr.weight, model.box_head.conv5_ctr.weight)


def test_checkpoint_of_another_model_is_refused_with_the_keys(tmp_path):
    _official_file(tmp_path / "dm.pth", build_model("dmtrack_tiny"))
    with pytest.raises(CheckpointMismatchError, match="cross_mamba"):
        load_model("ainet_tiny", tmp_path / "dm.pth")


def test_info_reports_versions_and_scan_backend(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert torch.__version__ in out
    assert "ainet_256" in out and "ainet_384" in out and "dmtrack_rgbt" in out
    assert "scan on cpu" not in out  # that needs torch: `info --models`
    assert main(["info", "--models"]) == 0
    out = capsys.readouterr().out
    assert "scan on cpu" in out and "torch" in out.split("scan on cpu", 1)[1].splitlines()[0]
    assert "template 192x192 (factor 2), search 384x384 (factor 4), 24x24 maps" in out.split("ainet_384", 1)[1]


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    code = main(["train", "--model", str(tmp_path / "missing.yaml"), "--data", "synthetic:0-0", "--out", str(tmp_path)])
    assert code == 2
    assert "missing.yaml" in capsys.readouterr().err
