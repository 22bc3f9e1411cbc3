"""Compressed bags of every dataset kind score exactly as `rgbt-track run` + `evaluate --dataset`,
and `bag evaluate` reads bags recorded by others (their topics, a start box, sparse truth)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")

from rgbt_tracking_ros.bags.evaluate import Topics, evaluate_bag, score_tracked  # noqa: E402
from rgbt_tracking_ros.bags.messages import (  # noqa: E402
    COMPRESSED_IMAGE,
    GROUND_TRUTH,
    IMAGE,
    compressed_image_message,
    header,
    image_message,
    typestore,
)
from rgbt_tracking_ros.bags.write import BagOptions, write_sequence_bag  # noqa: E402
from rgbt_tracking_ros.cli import main  # noqa: E402
from rgbt_tracking_ros.codec import encode_image  # noqa: E402
from rgbt_tracking_ros.data.datasets import read_dataset  # noqa: E402
from rgbt_tracking_ros.eval.metrics import score_results  # noqa: E402
from rgbt_tracking_ros.eval.runner import make_tracker, run_sequences  # noqa: E402

FRAMES = 21  # VTUAV: truth rows for frames 0, 10, 20


def _boxes(count: int, dx: float = 0.0) -> np.ndarray:
    return np.array([[12 + 1.5 * i + dx, 10 + 0.5 * i, 16, 14] for i in range(count)], dtype=float)


def _rgb(box: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 70, (64, 96, 3), dtype=np.uint8)
    x, y, w, h = (int(round(v)) for v in box)
    image[y:y + h, x:x + w] = (230, 190, 40)
    image[y + 4:y + 8, x + 4:x + 10] = (30, 30, 240)
    return image


def _thermal(box: np.ndarray, seed: int, depth: int) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    if depth == 16:
        image = rng.integers(20000, 21000, (64, 96), dtype=np.uint16)
        hot = 30000
    else:
        image = rng.integers(10, 60, (64, 96), dtype=np.uint8)
        hot = 220
    x, y, w, h = (int(round(v)) for v in box)
    image[y:y + h, x:x + w] = hot
    return image


# kind: (RGB folder, thermal folder, thermal suffix and depth, truth writer)
def _write_truth(seq: Path, kind: str, visible: np.ndarray, infrared: np.ndarray) -> None:
    def rows(path: Path, boxes: np.ndarray) -> None:
        path.write_text("".join(",".join(f"{v:g}" for v in box) + "\n" for box in boxes))

    if kind == "gtot":  # x1 y1 x2 y2
        for name, boxes in (("groundTruth_v.txt", visible), ("groundTruth_i.txt", infrared)):
            rows(seq / name, np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
    elif kind == "rgbt210":
        rows(seq / "init.txt", visible)
    elif kind == "rgbt234":
        rows(seq / "visible.txt", visible)
        rows(seq / "infrared.txt", infrared)
    elif kind == "lasher":
        rows(seq / "init.txt", visible)
        rows(seq / "visible.txt", visible)
    elif kind == "vtuav":  # one row per 10 frames
        rows(seq / "rgb.txt", visible[::10])
        rows(seq / "ir.txt", infrared[::10])


LAYOUTS = {
    "gtot": ("v", "i", ".png", 8, ".png"),
    "rgbt210": ("visible", "infrared", ".jpg", 8, ".jpg"),
    "rgbt234": ("visible", "infrared", ".jpg", 8, ".jpg"),
    "lasher": ("visible", "infrared", ".jpg", 8, ".jpg"),
    "vtuav": ("rgb", "ir", ".png", 16, ".jpg"),
}


def _dataset(root: Path, kind: str) -> Path:
    """One sequence of `kind` with JPEG/PNG frames; infrared truth 3 px to the right of the visible one."""
    seq = root / kind / "walker"
    rgb_dir, thermal_dir, thermal_suffix, depth, rgb_suffix = LAYOUTS[kind]
    (seq / rgb_dir).mkdir(parents=True)
    (seq / thermal_dir).mkdir()
    visible, infrared = _boxes(FRAMES), _boxes(FRAMES, dx=3)
    for i, box in enumerate(visible):
        cv2.imwrite(str(seq / rgb_dir / f"{i:06d}{rgb_suffix}"), _rgb(box, i)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        thermal = _thermal(infrared[i], i, depth)
        if kind in ("rgbt234", "rgbt210", "lasher"):  # benchmarks ship thermal as 3-channel grey JPEG
            thermal = np.repeat(thermal[:, :, None], 3, axis=2)
        cv2.imwrite(str(seq / thermal_dir / f"{i:06d}{thermal_suffix}"), thermal)
    _write_truth(seq, kind, visible, infrared)
    return root / kind


# CSRT on the thermal stream for every kind (16-bit PNG, 3-channel grey JPEG, 8-bit PNG decoded as
# `run` reads them), on the RGB stream for two (JPEG and PNG RGB): CSRT takes ~0.25 s a frame here.
CASES = [(kind, "csrt-thermal") for kind in sorted(LAYOUTS)] + [("lasher", "csrt-rgb"), ("vtuav", "csrt-rgb")]


@pytest.mark.parametrize("kind,model", CASES)
def test_compressed_bag_scores_as_run_and_evaluate(tmp_path: Path, kind: str, model: str) -> None:
    [sequence] = read_dataset(kind, _dataset(tmp_path, kind))
    [run] = run_sequences(lambda: make_tracker(model), [sequence], tmp_path / "run", progress=False)
    expected = score_results({sequence.name: run.boxes}, {sequence.name: sequence.truths()}, kind)  # evaluate --dataset
    summary = write_sequence_bag(sequence, tmp_path / "bag", BagOptions())
    assert summary.compressed and summary.passed_through == 2 * FRAMES  # every frame file stored as it is
    assert summary.infrared_truth == (kind != "rgbt210" and kind != "lasher")
    result = evaluate_bag(tmp_path / "bag", lambda: make_tracker(model))
    assert result.protocol == kind
    np.testing.assert_array_equal(result.run.boxes, run.boxes)
    got, want = result.scores, expected
    assert (got.pr, got.npr, got.sr, got.frames) == (want.pr, want.npr, want.sr, want.frames)
    if kind == "vtuav":
        assert got.frames == 3
        # The infrared truth counts, as in evaluate: boxes on it score higher with it than without.
        stamps = result.stamps[::10]
        assert [result.infrared_truth[s].tolist() for s in stamps] == sequence.truth["infrared"].tolist()
        on_infrared = np.array([result.infrared_truth[s] for s in stamps])
        both = score_tracked("s", stamps, on_infrared, result.truth, "vtuav", result.infrared_truth)
        rgb_only = score_tracked("s", stamps, on_infrared, result.truth, "vtuav")
        assert both.sr == pytest.approx(20 / 21) and rgb_only.sr < 0.8


def test_compressed_bag_is_smaller_and_raw_scores_the_same(tmp_path: Path) -> None:
    [sequence] = read_dataset("vtuav", _dataset(tmp_path, "vtuav"))
    write_sequence_bag(sequence, tmp_path / "compressed", BagOptions())
    write_sequence_bag(sequence, tmp_path / "raw", BagOptions(compressed=False))

    def size(folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.iterdir())

    assert size(tmp_path / "compressed") < 0.6 * size(tmp_path / "raw")
    scores = [evaluate_bag(tmp_path / b, lambda: make_tracker("csrt-thermal")).scores for b in ("compressed", "raw")]
    assert (scores[0].pr, scores[0].sr) == (scores[1].pr, scores[1].sr)


def _foreign_bag(path: Path, with_truth: bool) -> np.ndarray:
    """Another recorder's bag: JPEG RGB on /camera/color/image_raw/compressed, raw mono16 thermal on
    /flir/image_raw, truth as 4-corner polygons on /annotations for every third frame only."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types
    boxes = _boxes(FRAMES)
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        rgb = writer.add_connection("/camera/color/image_raw/compressed", COMPRESSED_IMAGE, typestore=store)
        thermal = writer.add_connection("/flir/image_raw", IMAGE, typestore=store)
        truth = writer.add_connection("/annotations", GROUND_TRUTH, typestore=store) if with_truth else None
        for i, box in enumerate(boxes):
            stamp = 1_600_000_000_000_000_000 + i * 50_000_000
            msg = compressed_image_message(encode_image(_rgb(box, i), "jpeg"), "rgb8; jpeg compressed bgr8", stamp, "c")
            writer.write(rgb, stamp + 1000, store.serialize_cdr(msg, COMPRESSED_IMAGE))
            msg = image_message(_thermal(box, i, 16), stamp + 2_000_000, "f")
            writer.write(thermal, stamp + 3_000_000, store.serialize_cdr(msg, IMAGE))
            if truth is not None and i % 3 == 0:
                x, y, w, h = box
                point = types["geometry_msgs/msg/Point32"]
                corners = [point(x=float(a), y=float(b), z=0.0) for a, b in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))]
                msg = types[GROUND_TRUTH](header=header(stamp, "c"), polygon=types["geometry_msgs/msg/Polygon"](points=corners))
                writer.write(truth, stamp + 4_000_000, store.serialize_cdr(msg, GROUND_TRUTH))
    return boxes


def test_bag_recorded_elsewhere(tmp_path: Path, capsys) -> None:
    boxes = _foreign_bag(tmp_path / "rec", with_truth=True)
    topics = Topics("/camera/color/image_raw", "/flir/image_raw", "/annotations")
    result = evaluate_bag(tmp_path / "rec", lambda: make_tracker("csrt-rgb"), topics=topics)
    assert (result.pairs, len(result.run.boxes), result.protocol) == (FRAMES, FRAMES, "otb")
    assert result.scores.frames == len(range(0, FRAMES, 3))  # frames without truth are skipped
    # The same frames scored by hand: the truth frames only, the first one the start.
    keep = list(range(0, FRAMES, 3))
    by_hand = score_results({"s": result.run.boxes[keep]}, {"s": (boxes[keep],)}, "otb")
    assert (result.scores.pr, result.scores.sr) == (by_hand.pr, by_hand.sr)
    # A start box from the command line; the first frame is then a tracked frame, not the truth.
    args = ["bag", "evaluate", str(tmp_path / "rec"), "--model", "csrt-rgb", "-q", "--json",
            "--rgb-topic", "/camera/color/image_raw", "--thermal-topic", "/flir/image_raw",
            "--ground-truth-topic", "/annotations", "--start-box", "12,10,16,14"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["frames"], report["tracked_frames"], report["protocol"]) == (len(keep), FRAMES, "otb")
    # No truth at all: tracked from the start box, written, not scored.
    _foreign_bag(tmp_path / "bare", with_truth=False)
    args = ["bag", "evaluate", str(tmp_path / "bare"), "--model", "csrt-rgb", "-q", "--out", str(tmp_path / "out"),
            "--rgb-topic", "/camera/color/image_raw", "--thermal-topic", "/flir/image_raw", "--start-box", "12 10 16 14"]
    assert main(args) == 0
    assert "not scored" in capsys.readouterr().out
    assert len((tmp_path / "out" / "bare.txt").read_text().splitlines()) == FRAMES  # named after the bag folder
    assert main(["bag", "evaluate", str(tmp_path / "bare"), "--model", "csrt-rgb", "-q",
                 "--rgb-topic", "/camera/color/image_raw", "--thermal-topic", "/flir/image_raw"]) == 2
    assert "/ground_truth" in capsys.readouterr().err


@pytest.mark.parametrize("depth", [8, 16])
def test_compressed_thermal_round_trip_through_cdr(depth: int) -> None:
    """16-bit (and 8-bit) PNG thermal survives CDR and decodes exactly, as rosbags and, where
    installed, rclpy messages (what the node's compressed transport receives)."""
    from rgbt_tracking_ros.codec import compressed_to_numpy

    thermal = _thermal(_boxes(1)[0], 0, depth)
    store = typestore()
    fmt = "mono16; png compressed mono16" if depth == 16 else "mono8; png compressed mono8"
    raw = store.serialize_cdr(compressed_image_message(encode_image(thermal, "png"), fmt, 5, "f"), COMPRESSED_IMAGE)
    decoded = compressed_to_numpy(store.deserialize_cdr(raw, COMPRESSED_IMAGE))
    assert decoded.dtype == thermal.dtype and np.array_equal(decoded, thermal)
    try:
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CompressedImage
    except ImportError:
        return
    msg = deserialize_message(bytes(raw), CompressedImage)
    assert msg.format == fmt and np.array_equal(compressed_to_numpy(msg), thermal)
