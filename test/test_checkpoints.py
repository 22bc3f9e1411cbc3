"""Checkpoint reading, checking, saving and backbone conversion (CPU, files built here)."""
from __future__ import annotations

import argparse
import builtins
import logging
import os
import pathlib
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from rgbt_tracking_ros.models.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointMismatchError,
    LoadReport,
    convert_backbone_init,
    init_from_backbone_file,
    load_state_dict_checked,
    read_checkpoint,
    save_checkpoint,
)

C = 6  # embedding width of the tiny models


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.Linear(dim, dim)


class Backbone(nn.Module):
    def __init__(self, dim: int, x_grid: int, z_grid: int, depth: int) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=2, stride=2)
        self.pos_embed_x = nn.Parameter(torch.zeros(1, x_grid * x_grid, dim))
        self.pos_embed_z = nn.Parameter(torch.zeros(1, z_grid * z_grid, dim))
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))


class TinyTracker(nn.Module):
    """Names like the real trackers: backbone.*, box_head.*, plus an RGB-T fusion module."""

    def __init__(
        self, dim: int = C, x_grid: int = 4, z_grid: int = 2, depth: int = 2, fusion: bool = True
    ) -> None:
        super().__init__()
        self.backbone = Backbone(dim, x_grid, z_grid, depth)
        self.box_head = nn.Sequential(nn.Conv2d(dim, 4, 3, padding=1), nn.BatchNorm2d(4))
        if fusion:
            self.fusion = nn.Linear(dim, dim)


def make_model(seed: int = 0, **kwargs) -> TinyTracker:
    torch.manual_seed(seed)
    model = TinyTracker(**kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        bn = model.box_head[1]
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(7)
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------ foreign module fixture

FAKE_MODULES = ("lib", "lib.train", "lib.train.admin", "lib.train.admin.settings")


@pytest.fixture
def official_code():
    """Classes of a throw-away 'official code base', removed again before loading."""
    saved = {name: sys.modules.get(name) for name in FAKE_MODULES}
    for name in FAKE_MODULES:
        sys.modules[name] = types.ModuleType(name)
    module = sys.modules["lib.train.admin.settings"]
    source = """
class Settings:
    def __init__(self):
        self.script_name = "ainet"
        self.env = None

class EasyDict(dict):
    def __setattr__(self, name, value):
        self[name] = value
        super().__setattr__(name, value)

class NetConstructor:
    def __init__(self, fun_name, fun_module, args, kwds):
        self.fun_name, self.fun_module, self.args, self.kwds = fun_name, fun_module, args, kwds
"""
    exec(source, module.__dict__)  # noqa: S102 - test-only classes
    for cls in (module.Settings, module.EasyDict, module.NetConstructor):
        cls.__module__ = module.__name__
    try:
        yield module
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def remove_official_code() -> None:
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


def official_dict(model: nn.Module, code: types.ModuleType) -> dict:
    settings = code.Settings()
    env = code.EasyDict(workspace_dir="/data/ws", lr=1e-4)
    env.nested = code.EasyDict(ids=[1, 2, 3], inner=code.Settings())
    settings.env = env
    settings.args = argparse.Namespace(config="baseline", save_dir=pathlib.PurePosixPath("/x/y"))
    settings.paths = [pathlib.PurePosixPath("/a"), {"k": (1, 2.5, "s")}]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    optimizer.zero_grad()
    return {
        "epoch": 15,
        "actor_type": "AINetActor",
        "net_type": "AINet",
        "net": model.state_dict(),
        "net_info": None,
        "constructor": code.NetConstructor("build_ainet", "lib.models.ainet", (settings,), {}),
        "optimizer": optimizer.state_dict(),
        "stats": code.EasyDict(train=code.EasyDict(loss=[0.5, 0.4])),
        "settings": settings,
    }


# ------------------------------------------------------------------ our own format


def test_project_round_trip(tmp_path):
    model = make_model(1)
    config = {"tracker": "ainet", "embed_dim": C, "grids": [4, 2], "head": {"stride": 16.0}}
    target = tmp_path / "runs" / "ckpt.pth"
    save_checkpoint(target, model, config, {"epoch": 3, "note": "ok"})

    assert sorted(os.listdir(target.parent)) == ["ckpt.pth"]  # no temp file left over
    raw = torch.load(target, map_location="cpu", weights_only=True)
    assert raw["format"] == "rgbt_tracking_ros/1"

    ckpt = read_checkpoint(target)
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.kind == "project"
    assert ckpt.model_config == config
    assert ckpt.metadata == {"epoch": 3, "note": "ok"}
    assert ckpt.foreign_objects == []
    assert_same_tensors(ckpt.state_dict, model.state_dict())

    fresh = make_model(2)
    report = load_state_dict_checked(fresh, ckpt.state_dict)
    assert report.missing == report.unexpected == report.mismatched == []
    assert_same_tensors(fresh.state_dict(), model.state_dict())


def test_save_refuses_non_plain_config_and_keeps_old_file(tmp_path):
    target = tmp_path / "ckpt.pth"
    save_checkpoint(target, make_model(1), {"a": 1})
    before = target.read_bytes()
    with pytest.raises(TypeError, match="config"):
        save_checkpoint(target, make_model(2), {"path": pathlib.Path("/x")})
    with pytest.raises(TypeError, match="metadata"):  # a float subclass weights_only refuses
        save_checkpoint(target, make_model(2), {"a": 1}, {"best": np.float64(0.5)})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.pth"]


def test_unknown_project_format_version_is_refused(tmp_path):
    path = tmp_path / "future.pth"
    torch.save({"format": "rgbt_tracking_ros/9", "config": {}, "net": {"a": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="rgbt_tracking_ros/9"):
        read_checkpoint(path)


# ------------------------------------------------------------------ official checkpoints


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_official_dict_with_foreign_settings(tmp_path, official_code, caplog, zip_format):
    model = make_model(3)
    path = tmp_path / "AINet_ep0015.pth.tar"
    torch.save(official_dict(model, official_code), path, _use_new_zipfile_serialization=zip_format)
    remove_official_code()

    with pytest.raises(pickle.UnpicklingError):  # what users hit without this module
        torch.load(path, map_location="cpu", weights_only=True)

    with caplog.at_level(logging.WARNING, logger="rgbt_tracking_ros.models.checkpoints"):
        ckpt = read_checkpoint(path)
    assert ckpt.kind == "official"
    assert ckpt.model_config is None
    assert_same_tensors(ckpt.state_dict, model.state_dict())
    for name in ("Settings", "EasyDict", "NetConstructor"):
        assert f"lib.train.admin.settings.{name}" in ckpt.foreign_objects
    assert "argparse.Namespace" in ckpt.foreign_objects
    assert ckpt.metadata["epoch"] == 15
    assert ckpt.metadata["net_type"] == "AINet"
    assert ckpt.metadata["actor_type"] == "AINetActor"
    assert "lib.train.admin.settings.Settings" in caplog.text


def test_clean_official_dict_loads_with_weights_only(tmp_path, caplog):
    model = make_model(4)
    path = tmp_path / "clean.pth"
    torch.save({"epoch": 2, "net": model.state_dict(), "stats": {"loss": [1.0]}}, path)
    with caplog.at_level(logging.WARNING):
        ckpt = read_checkpoint(path)
    assert ckpt.kind == "official"
    assert ckpt.foreign_objects == []
    assert ckpt.metadata == {"epoch": 2}
    assert caplog.text == ""
    assert_same_tensors(ckpt.state_dict, model.state_dict())


@pytest.mark.parametrize("key", ["model", "state_dict"])
def test_other_weight_keys(tmp_path, key):
    model = make_model(5)
    path = tmp_path / "w.pth"
    torch.save({key: model.state_dict(), "epoch": 1}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.kind == "official"
    assert_same_tensors(ckpt.state_dict, model.state_dict())


class _RunsShell:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _RunsExec:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _RunsEval:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickled_code_is_not_executed(tmp_path, zip_format):
    markers = [tmp_path / "system_ran", tmp_path / "exec_ran", tmp_path / "eval_ran"]
    model = make_model(6)
    path = tmp_path / "evil.pth"
    payload = {
        "net": model.state_dict(),
        "settings": _RunsShell(markers[0]),
        "constructor": [_RunsExec(markers[1]), {"x": _RunsEval(markers[2])}],
    }
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)

    ckpt = read_checkpoint(path)
    for marker in markers:
        assert not marker.exists(), marker
    assert_same_tensors(ckpt.state_dict, model.state_dict())
    assert f"{os.system.__module__}.system" in ckpt.foreign_objects
    assert "builtins.exec" in ckpt.foreign_objects
    assert "builtins.eval" in ckpt.foreign_objects


def _legacy_file(pickled: bytes) -> bytes:
    """A legacy (non-zip) torch file around a hand-written pickle."""
    sys_info = {"protocol_version": torch.serialization.PROTOCOL_VERSION,
                "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return (
        pickle.dumps(torch.serialization.MAGIC_NUMBER, protocol=2)
        + pickle.dumps(torch.serialization.PROTOCOL_VERSION, protocol=2)
        + pickle.dumps(sys_info, protocol=2)
        + pickled
        + pickle.dumps([], protocol=2)
    )


def test_pickle_cannot_modify_allowlisted_objects(tmp_path):
    """BUILD with slot state would setattr on an allowed function - refused."""
    attribute = "_checkpoint_test_tampered"
    name = attribute.encode()
    target = torch._utils._rebuild_tensor_v2
    crafted = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n"
        + b"N}X" + struct.pack("<I", len(name)) + name + b"K\x01s\x86b."
    )
    try:
        pickle.loads(crafted)  # plain pickle really does tamper with the function
        assert getattr(target, attribute) == 1
    finally:
        if hasattr(target, attribute):
            delattr(target, attribute)

    path = tmp_path / "tamper.pth"
    path.write_bytes(_legacy_file(crafted))
    try:
        with pytest.raises(CheckpointError, match="tamper.pth"):
            read_checkpoint(path)
        assert not hasattr(target, attribute)
    finally:
        if hasattr(target, attribute):
            delattr(target, attribute)


def test_numpy_values_beside_weights_load(tmp_path):
    model = make_model(7)
    path = tmp_path / "np.pth"
    torch.save({"net": model.state_dict(), "stats": np.arange(4.0), "best": np.float64(0.5)}, path)
    ckpt = read_checkpoint(path)
    assert_same_tensors(ckpt.state_dict, model.state_dict())
    assert not any(name.startswith("numpy") for name in ckpt.foreign_objects)


# ------------------------------------------------------------------ bare / prefix / legacy


def test_bare_state_dict(tmp_path):
    model = make_model(8)
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    ckpt = read_checkpoint(path)
    assert ckpt.kind == "bare"
    assert ckpt.model_config is None
    assert_same_tensors(ckpt.state_dict, model.state_dict())


@pytest.mark.parametrize("wrap", [False, True], ids=["bare", "official"])
def test_dataparallel_prefix_is_stripped(tmp_path, wrap):
    model = make_model(9)
    prefixed = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "dp.pth"
    torch.save({"net": prefixed, "epoch": 1} if wrap else prefixed, path)
    ckpt = read_checkpoint(path)
    assert_same_tensors(ckpt.state_dict, model.state_dict())


def test_legacy_non_zip_format(tmp_path):
    model = make_model(10)
    path = tmp_path / "legacy.pth"
    torch.save({"net": model.state_dict(), "epoch": 4}, path, _use_new_zipfile_serialization=False)
    with open(path, "rb") as handle:
        assert handle.read(2) != b"PK"  # really not a zip
    ckpt = read_checkpoint(path)
    assert ckpt.kind == "official"
    assert ckpt.metadata == {"epoch": 4}
    assert_same_tensors(ckpt.state_dict, model.state_dict())


# ------------------------------------------------------------------ refusals


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "ckpt.pth"
    with pytest.raises(FileNotFoundError, match="ckpt.pth"):
        read_checkpoint(path)


def test_garbage_files(tmp_path):
    random_path = tmp_path / "random.pth"
    random_path.write_bytes(np.random.default_rng(0).bytes(4096))
    text_path = tmp_path / "notes.pth"
    text_path.write_text("this is a text file, not weights\n" * 20)
    empty_path = tmp_path / "empty.pth"
    empty_path.write_bytes(b"")
    for path in (random_path, text_path, empty_path):
        with pytest.raises(CheckpointError, match=path.name):
            read_checkpoint(path)


def test_dict_without_weights(tmp_path):
    path = tmp_path / "noweights.pth"
    torch.save({"epoch": 1, "optimizer": {"lr": 0.1}, "anchor": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "noweights.pth" in message
    assert "'epoch'" in message and "'optimizer'" in message


def test_weights_key_that_is_not_a_state_dict(tmp_path, official_code):
    path = tmp_path / "weird.pth"
    torch.save({"net": official_code.Settings()}, path)
    remove_official_code()
    with pytest.raises(CheckpointError, match="lib.train.admin.settings.Settings"):
        read_checkpoint(path)


def test_torchscript_archive_is_refused(tmp_path, monkeypatch):
    # torch.load dispatches zips holding constants.pkl to torch.jit.load; we refuse them.
    jit_calls = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: jit_calls.append(a))
    path = tmp_path / "scripted.pt"
    torch.save({"net": make_model(25).state_dict()}, path)
    with zipfile.ZipFile(path, "a") as archive:
        prefix = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{prefix}/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_checkpoint(path)
    assert jit_calls == []


def test_wrong_model_is_refused_and_left_untouched():
    source = make_model(11, depth=2, fusion=False)
    state = dict(source.state_dict())
    state["backbone.extra.weight"] = torch.zeros(2)  # unexpected
    state["box_head.0.weight"] = torch.zeros(4, C, 1, 1)  # shape mismatch (model: 3x3 kernel)

    target = make_model(12, depth=3, fusion=True)  # block 2 + fusion are missing
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_checked(target, state)
    message = str(info.value)
    for key in ("backbone.blocks.2.attn.weight", "fusion.weight", "fusion.bias"):
        assert key in message
    assert "backbone.extra.weight" in message
    assert "box_head.0.weight" in message
    assert "(4, 6, 3, 3)" in message and "(4, 6, 1, 1)" in message
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ValueError)
    assert ("box_head.0.weight", (4, C, 3, 3), (4, C, 1, 1)) in info.value.report.mismatched
    assert_same_tensors(target.state_dict(), before)


def test_shape_mismatch_is_fatal_even_when_not_strict():
    state = dict(make_model(13).state_dict())
    state["backbone.pos_embed_x"] = torch.zeros(1, 9, C)
    target = make_model(14)
    before = snapshot(target)
    pattern = r"backbone\.pos_embed_x.*\(1, 16, 6\).*\(1, 9, 6\)"
    with pytest.raises(CheckpointMismatchError, match=pattern):
        load_state_dict_checked(target, state, strict=False)
    assert_same_tensors(target.state_dict(), before)


def test_non_strict_loads_matching_keys_and_reports_rest():
    source = make_model(15, fusion=False)
    state = dict(source.state_dict())
    state["old_head.weight"] = torch.zeros(3)
    target = make_model(16, fusion=True)
    fusion_before = target.fusion.weight.detach().clone()
    report = load_state_dict_checked(target, state, strict=False)
    assert isinstance(report, LoadReport)
    assert report.missing == ["fusion.weight", "fusion.bias"]
    assert report.unexpected == ["old_head.weight"]
    assert report.mismatched == []
    assert torch.equal(target.fusion.weight, fusion_before)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_allow_missing_in_strict_mode():
    state = dict(make_model(17, fusion=False).state_dict())
    target = make_model(18, fusion=True)
    report = load_state_dict_checked(target, state, allow_missing=lambda k: k.startswith("fusion."))
    assert report.missing == ["fusion.weight", "fusion.bias"]
    with pytest.raises(CheckpointMismatchError, match="fusion.weight"):
        load_state_dict_checked(target, state, allow_missing=lambda k: k == "fusion.bias")


def test_long_key_lists_are_capped():
    target = make_model(19, depth=30)
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_checked(target, {"unrelated": torch.zeros(1)})
    message = str(info.value)
    n_missing = len(target.state_dict())
    assert f"missing keys ({n_missing})" in message
    assert f"and {n_missing - 20} more" in message
    assert "backbone.blocks.29.attn.weight" not in message


# ------------------------------------------------------------------ backbone conversion


def test_droptrack_conversion_hand_computed():
    # A 2x2 grid [[0, 1], [2, 3]] in channel 0 resized to 4x4 with align_corners=False:
    # sample positions (i + 0.5) / 2 - 0.5 clamp to 0, 0.25, 0.75, 1 -> value 2*r + c.
    r = np.array([0.0, 0.25, 0.75, 1.0])
    expected_x = 2 * r[:, None] + r[None, :]  # (4, 4)

    pos_x = torch.zeros(1, 4, 3)
    pos_x[0, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    pos_x[0, :, 1] = 5.0  # a constant channel stays constant
    pos_x[0, :, 2] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    pos_z = torch.arange(12.0).reshape(1, 4, 3)  # already at target 2x2
    temporal_x = torch.tensor([[[10.0, 20.0, 30.0]]])
    temporal_z = torch.tensor([[[-1.0, -2.0, -3.0]]])
    head = torch.randn(2, 3)
    state = {
        "backbone.pos_embed_x": pos_x,
        "backbone.pos_embed_z": pos_z,
        "backbone.temporal_pos_embed_x": temporal_x,
        "backbone.temporal_pos_embed_z": temporal_z,
        "box_head.w": head,
    }
    out = convert_backbone_init(state, x_grid=4, z_grid=2)

    assert "backbone.temporal_pos_embed_x" not in out
    assert "backbone.temporal_pos_embed_z" not in out
    x = out["backbone.pos_embed_x"].numpy()
    assert x.shape == (1, 16, 3)
    np.testing.assert_allclose(x[0, :, 0], expected_x.reshape(-1) + 10.0, atol=1e-6)
    np.testing.assert_allclose(x[0, :, 1], np.full(16, 25.0), atol=1e-6)
    # channel 2: a single 1 in the top-left corner spreads with weights (1-r_row)*(1-r_col)
    np.testing.assert_allclose(
        x[0, :, 2], (np.outer(1 - r, 1 - r)).reshape(-1) + 30.0, atol=1e-6
    )
    np.testing.assert_allclose(
        out["backbone.pos_embed_z"].numpy(), (pos_z + temporal_z).numpy(), atol=0
    )
    assert out["box_head.w"] is head
    assert state["backbone.pos_embed_x"] is pos_x  # input not modified


def test_droptrack_default_grids():
    state = {
        "backbone.pos_embed_x": torch.randn(1, 24 * 24, 8),
        "backbone.pos_embed_z": torch.randn(1, 12 * 12, 8),
        "backbone.temporal_pos_embed_x": torch.randn(1, 1, 8),
        "backbone.temporal_pos_embed_z": torch.randn(1, 1, 8),
    }
    out = convert_backbone_init(state)
    assert out["backbone.pos_embed_x"].shape == (1, 256, 8)
    assert out["backbone.pos_embed_z"].shape == (1, 64, 8)


def test_ostrack_passes_through_and_non_backbone_is_refused():
    state = {
        "backbone.pos_embed_x": torch.randn(1, 16, 3),
        "backbone.pos_embed_z": torch.randn(1, 4, 3),
        "box_head.w": torch.randn(2),
    }
    out = convert_backbone_init(state, x_grid=4, z_grid=2)
    assert out.keys() == state.keys()
    assert all(out[k] is state[k] for k in state)
    with pytest.raises(CheckpointError, match="backbone"):
        convert_backbone_init({"encoder.weight": torch.zeros(1)})


def _init_state(model: TinyTracker, droptrack: bool) -> dict[str, torch.Tensor]:
    """An initialisation file's weights for the backbone and box head (no fusion)."""
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fusion.")}
    if droptrack:
        state["backbone.pos_embed_x"] = torch.full((1, 1, C), 2.0)  # 1x1 grid -> constant 4x4
        state["backbone.pos_embed_z"] = torch.full((1, 9, C), 3.0)  # 3x3 grid -> constant 2x2
        state["backbone.temporal_pos_embed_x"] = torch.full((1, 1, C), 0.5)
        state["backbone.temporal_pos_embed_z"] = torch.full((1, 1, C), -1.0)
    return state


@pytest.mark.parametrize("droptrack", [False, True], ids=["ostrack", "droptrack"])
def test_init_from_backbone_file(tmp_path, droptrack):
    source = make_model(20, fusion=False)
    path = tmp_path / "init.pth.tar"
    torch.save({"net": _init_state(source, droptrack), "epoch": 300}, path)

    model = make_model(21)
    fusion_before = {k: v.clone() for k, v in model.fusion.state_dict().items()}
    report = init_from_backbone_file(model, path)

    assert report.missing == ["fusion.weight", "fusion.bias"]
    assert report.unexpected == [] and report.mismatched == []
    for key, value in model.fusion.state_dict().items():
        assert torch.equal(value, fusion_before[key])
    assert torch.equal(model.backbone.blocks[1].attn.weight, source.backbone.blocks[1].attn.weight)
    assert torch.equal(model.box_head[1].running_var, source.box_head[1].running_var)
    if droptrack:
        assert torch.allclose(model.backbone.pos_embed_x, torch.full((1, 16, C), 2.5))
        assert torch.allclose(model.backbone.pos_embed_z, torch.full((1, 4, C), 2.0))
    else:
        assert torch.equal(model.backbone.pos_embed_x, source.backbone.pos_embed_x)


def test_init_from_unrelated_file_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"net": {"backbone.something_else.weight": torch.zeros(3)}}, path)
    model = make_model(22)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="not a backbone initialisation file"):
        init_from_backbone_file(model, path)
    assert_same_tensors(model.state_dict(), before)


def test_init_with_wrong_width_is_refused(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save({"net": _init_state(make_model(23, dim=8, fusion=False), False)}, path)
    model = make_model(24)
    before = snapshot(model)
    with pytest.raises(CheckpointMismatchError, match="backbone.blocks.0.attn.weight"):
        init_from_backbone_file(model, path)
    assert_same_tensors(model.state_dict(), before)
