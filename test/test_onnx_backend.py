"""The ONNX Runtime backend: the tracker's boxes as with PyTorch, extra outputs passed
through, the exported graphs cached and re-exported when stale, torch when it cannot run."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rgbt_tracking_ros.data.synthetic import make_sequence
from rgbt_tracking_ros.models.loading import load_model
from rgbt_tracking_ros.models.protocol import Geometry
from rgbt_tracking_ros.tracker import RGBTTracker, TrackerConfig, onnx_backend
from rgbt_tracking_ros.tracker.onnx_backend import OnnxBackend, OnnxBackendError

needs_onnx = pytest.mark.skipif(bool(onnx_backend.missing_modules()),
                                reason="onnxruntime, onnx and onnxscript are core dependencies: pip install -e .")


class TinySplitModel(nn.Module):
    """A model with the compact model's split interface, small enough to export in seconds,
    whose `track_search` returns one output more than the head's maps."""

    geometry = Geometry(template_size=32, search_size=64, stride=16)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(3, 8, 16, stride=16)
        self.head = nn.Conv2d(8, 5, 1)

    def encode_templates(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        return self.embed(torch.cat([template_rgb, template_x])).flatten(2).transpose(1, 2)

    def track_search(self, tokens: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor) -> dict:
        features = self.embed(search_rgb) + self.embed(search_x) + tokens.mean(dim=(0, 1))[None, :, None, None]
        maps = self.head(features)
        return {"score_map": torch.sigmoid(maps[:, :1]), "size_map": torch.sigmoid(maps[:, 1:3]),
                "offset_map": maps[:, 3:], "search_features": features}


@needs_onnx
def test_onnx_tracker_boxes_equal_the_torch_trackers_on_a_held_out_sequence(trained_checkpoint) -> None:
    model = load_model(checkpoint=trained_checkpoint)
    sequence = make_sequence(1002, frames=25)  # held out: seeds from 1000 on are never trained on
    runs = {}
    for backend in ("torch", "onnxruntime"):
        tracker = RGBTTracker(model, TrackerConfig(backend=backend))
        assert tracker.backend == backend
        tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
        results = [tracker.track(rgb, thermal) for rgb, thermal in zip(sequence.rgb[1:], sequence.thermal[1:])]
        runs[backend] = (np.array([r.box for r in results]), np.array([r.confidence for r in results]))
    boxes_torch, scores_torch = runs["torch"]
    boxes_onnx, scores_onnx = runs["onnxruntime"]
    # First tracked frame, before any feedback: the graphs agree with PyTorch to 1e-4 of each
    # output's largest value (the backend's own check); the target model's confidence weighs
    # about 300 feature channels, so its agreement is relative. Measured on held-out seeds
    # 1002-1007: at most 0.01 px and 6.2e-4 of the confidence.
    np.testing.assert_allclose(boxes_onnx[0], boxes_torch[0], atol=0.05)
    np.testing.assert_allclose(scores_onnx[0], scores_torch[0], rtol=2e-3, atol=0)
    # Then each path follows its own boxes, and the target model's refreshes and the size
    # steps carry rounding forward: measured at most 1.65 px and 6 % of the confidence after
    # 24 frames on those seeds (0.87 px and 2 % on this one).
    np.testing.assert_allclose(boxes_onnx, boxes_torch, atol=2.0)
    np.testing.assert_allclose(scores_onnx, scores_torch, rtol=0.1, atol=0)
    # The default ("auto") is onnxruntime for this model on CPU.
    assert RGBTTracker(model, TrackerConfig()).backend == "onnxruntime"


@needs_onnx
def test_extra_outputs_pass_through_and_graphs_are_cached(tmp_path: Path) -> None:
    model = TinySplitModel().eval()
    built = OnnxBackend(model, cache=tmp_path)
    assert built.source.startswith("exported") and built.output_names[-1] == "search_features"
    generator = torch.Generator().manual_seed(1)
    templates = [torch.randn(1, 3, 32, 32, generator=generator) for _ in range(2)]
    search = [torch.randn(1, 3, 64, 64, generator=generator) for _ in range(2)]
    with torch.no_grad():
        expected = model.track_search(model.encode_templates(*templates), *search)
    got = built.track_search(built.encode_templates(*templates), *search)
    assert list(got) == list(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-5)
    assert len(list(tmp_path.glob("*.onnx"))) == 2
    assert OnnxBackend(model, cache=tmp_path).source.startswith("cache")
    # A cached file that no longer runs (or no longer matches) is exported again.
    for path in tmp_path.glob("*.search.onnx"):
        path.write_bytes(b"not a graph")
    assert OnnxBackend(model, cache=tmp_path).source.startswith("exported")
    # Other weights: other files.
    with torch.no_grad():
        model.head.bias.add_(0.5)
    OnnxBackend(model, cache=tmp_path)
    assert len(list(tmp_path.glob("*.onnx"))) == 4


@needs_onnx
def test_the_tracker_runs_a_split_model_through_onnxruntime(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(onnx_backend.CACHE_ENV, "")  # in memory only
    sequence = make_sequence(1001, frames=4)
    boxes = {}
    for backend in ("torch", "onnxruntime"):
        tracker = RGBTTracker(TinySplitModel(), TrackerConfig(backend=backend))
        assert tracker.backend == backend
        tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
        boxes[backend] = np.array([tracker.track(rgb, thermal).box
                                   for rgb, thermal in zip(sequence.rgb[1:], sequence.thermal[1:])])
    np.testing.assert_allclose(boxes["onnxruntime"], boxes["torch"], atol=1e-3)


@needs_onnx
def test_host_work_runs_on_one_torch_thread_and_the_model_on_the_callers(monkeypatch) -> None:
    """Torch's idle OpenMP threads spin beside onnxruntime's, so the step's host work runs on
    one torch thread, on either backend (the same host numbers); the model call runs on the
    caller's count, which is back after initialize and track, also after an error."""
    monkeypatch.setenv(onnx_backend.CACHE_ENV, "")
    sequence = make_sequence(1001, frames=2)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for backend in ("onnxruntime", "torch"):
            tracker = RGBTTracker(TinySplitModel(), TrackerConfig(backend=backend))
            host, model = [], []
            decode, search = tracker._decode, tracker._track_search
            monkeypatch.setattr(tracker, "_decode", lambda *a: (host.append(torch.get_num_threads()), decode(*a))[1])
            monkeypatch.setattr(tracker, "_track_search",
                                lambda *a: (model.append(torch.get_num_threads()), search(*a))[1])
            tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
            assert torch.get_num_threads() == 2
            tracker.track(sequence.rgb[1], sequence.thermal[1])
            assert host == [1] and model == [2] and torch.get_num_threads() == 2, backend
            monkeypatch.setattr(tracker, "_decode", lambda *a: 1 / 0)
            with pytest.raises(ZeroDivisionError):
                tracker.track(sequence.rgb[1], sequence.thermal[1])
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_without_onnxruntime_auto_falls_back_to_torch(monkeypatch, caplog) -> None:
    monkeypatch.setattr(onnx_backend, "missing_modules", lambda: ["onnxruntime"])
    with caplog.at_level(logging.INFO, logger=onnx_backend.__name__):
        tracker = RGBTTracker(TinySplitModel(), TrackerConfig())
    assert tracker.backend == "torch" and tracker.onnx is None
    assert "onnxruntime not installed" in caplog.text
    with pytest.raises(OnnxBackendError, match="onnxruntime not installed"):
        RGBTTracker(TinySplitModel(), TrackerConfig(backend="onnxruntime"))
    with pytest.raises(OnnxBackendError, match="needs onnxruntime"):
        OnnxBackend(TinySplitModel())


def test_auto_is_torch_where_onnx_does_not_apply(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("no export expected")

    monkeypatch.setattr(onnx_backend, "OnnxBackend", refuse)
    # Reduced precision is a torch option.
    assert RGBTTracker(TinySplitModel(), TrackerConfig(precision="bf16")).backend == "torch"
    with pytest.raises(OnnxBackendError, match="fp32 only"):
        RGBTTracker(TinySplitModel(), TrackerConfig(precision="bf16", backend="onnxruntime"))
    # A model without the split interface (AINet, DMTrack) runs its whole forward in torch.
    assert "no encode_templates" in onnx_backend.unsupported_reason(nn.Linear(1, 1), torch.device("cpu"), None, "eager")
    with pytest.raises(ValueError, match="backend must be one of"):
        RGBTTracker(TinySplitModel(), TrackerConfig(backend="tensorrt"))


@needs_onnx
def test_export_failure_falls_back_under_auto_and_raises_when_asked(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setenv(onnx_backend.CACHE_ENV, "")
    monkeypatch.setattr(onnx_backend, "_export", broken)
    assert RGBTTracker(TinySplitModel(), TrackerConfig()).backend == "torch"
    with pytest.raises(RuntimeError, match="exporter broke"):
        RGBTTracker(TinySplitModel(), TrackerConfig(backend="onnxruntime"))


@needs_onnx
def test_sessions_spin_unless_the_environment_says_not_and_a_bad_value_is_refused(monkeypatch) -> None:
    monkeypatch.setenv(onnx_backend.CACHE_ENV, "")
    keys = ("session.intra_op.allow_spinning", "session.force_spinning_stop")

    def spinning(tracker: RGBTTracker) -> set[tuple[str, ...]]:
        """(spinning, stopped after each run) of both sessions."""
        assert isinstance(tracker.onnx, OnnxBackend)
        return {tuple(session.get_session_options().get_session_config_entry(key) for key in keys)
                for session in (tracker.onnx._encode, tracker.onnx._search)}

    config = TrackerConfig(backend="onnxruntime")
    monkeypatch.delenv(onnx_backend.SPIN_ENV, raising=False)
    assert spinning(RGBTTracker(TinySplitModel(), config)) == {("1", "1")}
    monkeypatch.setenv(onnx_backend.SPIN_ENV, "0")
    assert spinning(RGBTTracker(TinySplitModel(), config)) == {("0", "1")}
    # Not hidden behind the torch fallback of "auto".
    monkeypatch.setenv(onnx_backend.SPIN_ENV, "yes")
    monkeypatch.setattr(TinySplitModel, "ONNX_ON_CPU", True, raising=False)
    with pytest.raises(ValueError, match="RGBT_ONNX_SPIN must be 0 or 1, got 'yes'"):
        RGBTTracker(TinySplitModel(), TrackerConfig())
