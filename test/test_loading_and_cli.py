"""Model + checkpoint loading as users call it, and the command line."""
from __future__ import annotations

import pytest
import torch
import yaml

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.models import build_model, load_model_config
from rgbt_tracking_ros.models.checkpoints import CheckpointError, CheckpointMismatchError, save_checkpoint
from rgbt_tracking_ros.models.loading import check_checkpoint_size, configs_for_tokens, load_model
from rgbt_tracking_ros.models.registry import CONFIG_PATH_ENV
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig


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


def _tiny_384_config(folder):
    """A registered AINet at the 384 sizes, small enough for a CPU test."""
    config = load_model_config("ainet_tiny")
    config.update(template_size=192, search_size=384, fusion_cut=64)
    del config["name"]
    (folder / "ainet_tiny_384.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture
def tiny_384(tmp_path, monkeypatch):
    configs = tmp_path / "configs"
    configs.mkdir()
    _tiny_384_config(configs)
    monkeypatch.setenv(CONFIG_PATH_ENV, str(configs))
    return build_model("ainet_tiny_384")


def test_checkpoint_of_another_size_names_the_model_that_fits(tmp_path, tiny_384):
    _official_file(tmp_path / "a384.pth.tar", tiny_384)
    with pytest.raises(CheckpointMismatchError, match="144 template and 576 search tokens.*load it as 'ainet_tiny_384'"):
        load_model("ainet_tiny", tmp_path / "a384.pth.tar")
    _official_file(tmp_path / "a256.pth.tar", build_model("ainet_tiny"))
    with pytest.raises(CheckpointMismatchError, match="load it as 'ainet_tiny'.*or as 'ainet'"):
        load_model("ainet_tiny_384", tmp_path / "a256.pth.tar")


def test_full_size_384_weights_in_ainet_256_name_ainet_384():
    """The published weights given to the 256 model: refused, with the model that takes them
    (shapes only: the meta device)."""
    with torch.device("meta"):
        model = build_model("ainet_256")
    state = {"backbone.pos_embed_z": torch.empty(1, 144, 768, device="meta"),
             "backbone.pos_embed_x": torch.empty(1, 576, 768, device="meta")}
    with pytest.raises(CheckpointMismatchError, match="192x192 templates, 384x384 search.*load it as 'ainet_384'"):
        check_checkpoint_size(model, state)
    assert configs_for_tokens("ainet", (144, 576, 768)) == ["ainet_384"]
    assert configs_for_tokens("ainet", (64, 256, 768)) == ["ainet_256"]
    # DMTrack's variants differ only in their template count, which no weight shows.
    assert configs_for_tokens("dmtrack", (64, 256, 768)) == ["dmtrack_rgbd", "dmtrack_rgbe", "dmtrack_rgbt"]


def test_architecture_name_picks_the_size_from_the_position_embeddings(tmp_path, tiny_384):
    _official_file(tmp_path / "a384.pth.tar", tiny_384)
    loaded = load_model("ainet", tmp_path / "a384.pth.tar")
    assert loaded.config["name"] == "ainet_tiny_384" and loaded.geometry.search_size == 384
    assert torch.equal(loaded.backbone.pos_embed_x, tiny_384.backbone.pos_embed_x)
    _official_file(tmp_path / "a256.pth.tar", build_model("ainet_tiny"))
    assert load_model("ainet", tmp_path / "a256.pth.tar").config["name"] == "ainet_tiny"
    _official_file(tmp_path / "dm.pth.tar", build_model("dmtrack_tiny"))
    assert load_model("dmtrack", tmp_path / "dm.pth.tar").config["name"] == "dmtrack_tiny"
    with pytest.raises(CheckpointMismatchError, match="cross_mamba"):  # sizes fit ainet_tiny, keys do not
        load_model("ainet", tmp_path / "dm.pth.tar")
    torch.save({"net": {"head.weight": torch.zeros(2, 2)}}, tmp_path / "nopos.pth")
    with pytest.raises(CheckpointError, match="no position embeddings"):
        load_model("ainet", tmp_path / "nopos.pth")


def test_tracker_crops_with_the_model_geometry(tiny_384):
    """The tracker reads sizes and factors from the model (its config); TrackerConfig overrides factors."""
    from rgbt_tracking_ros.data.synthetic import make_sequence

    tracker = RGBTTracker(tiny_384)
    assert (tracker.template_size, tracker.search_size, tracker.feat_size) == (192, 384, 24)
    assert (tracker.config.template_factor, tracker.config.search_factor) == (2.0, 4.0)
    sequence = make_sequence(0, frames=2, height=120, width=160)
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    assert tracker.track(sequence.rgb[1], sequence.thermal[1]).box.shape == (4,)
    assert RGBTTracker(tiny_384, TrackerConfig(search_factor=5.0)).config.search_factor == 5.0
