"""rosbag2 tools: from-sequence, in-process evaluation and scoring of recordings (no ROS needed)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("rosbags")

from rgbt_tracking_ros.bags.evaluate import Topics, evaluate_bag  # noqa: E402
from rgbt_tracking_ros.bags.messages import (  # noqa: E402
    COMPRESSED_IMAGE,
    IMAGE,
    TRACKED_OBJECT,
    box_from_ground_truth,
    header,
    header_stamp,
    typestore,
)
from rgbt_tracking_ros.bags.read import connections, image_topic, messages, open_bag, read_ground_truth  # noqa: E402
from rgbt_tracking_ros.bags.score import score_recording  # noqa: E402
from rgbt_tracking_ros.bags.write import SINGLE_MODALITY_NOTE, START_NS, BagOptions, write_sequence_bag  # noqa: E402
from rgbt_tracking_ros.cli import main  # noqa: E402
from rgbt_tracking_ros.codec import compressed_to_numpy, decode_image, image_to_numpy  # noqa: E402
from rgbt_tracking_ros.data.datasets import read_dataset, read_otb  # noqa: E402
from rgbt_tracking_ros.eval.metrics import score_results  # noqa: E402
from rgbt_tracking_ros.eval.runner import make_tracker, run_sequences  # noqa: E402
from rgbt_tracking_ros.sync import PairingConfig  # noqa: E402

FRAMES = 12
PERIOD_NS = round(1e9 / 30)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _boxes(count: int) -> np.ndarray:
    """A square drifting right and down, whole pixels (one half-pixel width: float32-exact)."""
    boxes = np.array([[10 + 2 * i, 8 + i, 14, 12] for i in range(count)], dtype=float)
    boxes[count // 2, 2] = 14.5
    return boxes


def _frame(box: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (48, 64, 3), dtype=np.uint8)
    x, y, w, h = (int(v) for v in box)
    image[y:y + h, x:x + w] = (230, 200, 40)
    image[y + 3:y + 6, x + 3:x + 8] = (20, 20, 250)
    return image


@pytest.fixture
def otb_sequence(tmp_path: Path) -> Path:
    folder = tmp_path / "square"
    (folder / "img").mkdir(parents=True)
    boxes = _boxes(FRAMES)
    for i, box in enumerate(boxes):
        cv2.imwrite(str(folder / "img" / f"{i + 1:04d}.png"), _frame(box, i)[:, :, ::-1])
    (folder / "groundtruth_rect.txt").write_text("".join(",".join(f"{v:g}" for v in box) + "\n" for box in boxes))
    return folder


def _read_topic(bag: Path, topic: str) -> list[tuple[int, object]]:
    """Messages of a topic; a camera's base topic finds its `<topic>/compressed` too."""
    with open_bag(bag) as reader:
        if not any(c.topic == topic for c in reader.connections):
            topic = image_topic(reader, topic)
        return [(time, msg) for _, time, msg in messages(reader, connections(reader, topic))]


@pytest.mark.parametrize("storage,compressed", [("mcap", True), ("sqlite3", True), ("mcap", False)])
def test_from_sequence_writes_images_ground_truth_and_stamps(
    otb_sequence: Path, tmp_path: Path, storage: str, compressed: bool
) -> None:
    sequence = read_otb(otb_sequence)[0]
    options = BagOptions(storage=storage, delay=0.003, compressed=compressed)
    summary = write_sequence_bag(sequence, tmp_path / "bag", options)
    assert (summary.frames, summary.thermal_frames, summary.single_modality) == (FRAMES, FRAMES, True)
    assert summary.passed_through == (2 * FRAMES if compressed else 0)  # the PNG files, stored as they are
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert [p.suffix for p in (tmp_path / "bag").iterdir() if p.name != "metadata.yaml"] == [suffix]
    with open_bag(tmp_path / "bag") as reader:
        kinds = {c.topic: c.msgtype for c in reader.connections}
    image_type = COMPRESSED_IMAGE if compressed else IMAGE
    suffix = "/compressed" if compressed else ""
    assert kinds == {f"/rgb/image{suffix}": image_type, f"/thermal/image{suffix}": image_type,
                     "/ground_truth": "geometry_msgs/msg/PolygonStamped"}
    rgb = _read_topic(tmp_path / "bag", "/rgb/image")
    thermal = _read_topic(tmp_path / "bag", "/thermal/image")
    assert len(rgb) == len(thermal) == FRAMES
    for i, ((time, msg), (_, thermal_msg)) in enumerate(zip(rgb, thermal)):
        if compressed:
            assert msg.format == thermal_msg.format == "rgb8; png compressed bgr8"
            assert bytes(msg.data) == sequence.rgb_frames[i].read_bytes()
        else:
            assert msg.encoding == thermal_msg.encoding == "rgb8"
        assert header_stamp(msg) == START_NS + round(i * 1e9 / 30)
        assert time == header_stamp(msg) + 3_000_000
        assert np.array_equal(decode_image(msg, "rgb"), sequence.rgb(i))
        assert np.array_equal(decode_image(thermal_msg), sequence.rgb(i))
    truth = read_ground_truth(tmp_path / "bag")
    assert sorted(truth) == [header_stamp(msg) for _, msg in rgb]
    assert np.array_equal(np.array([truth[s] for s in sorted(truth)]), _boxes(FRAMES))
    metadata = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["custom_data"]["rgbt_tracking_ros.description"] == SINGLE_MODALITY_NOTE
    assert metadata["custom_data"]["rgbt_tracking_ros.sequence"] == "square"


def test_ground_truth_nan_rows_survive() -> None:
    from rgbt_tracking_ros.bags.messages import ground_truth_message

    msg = ground_truth_message(np.array([np.nan] * 4), 5, "rgb")
    assert np.isnan(box_from_ground_truth(msg)).all()


def test_thermal_rate_offset_and_jitter(otb_sequence: Path, tmp_path: Path) -> None:
    sequence = read_otb(otb_sequence)[0]
    options = BagOptions(thermal_rate=10, thermal_offset=0.05, jitter=0.004, seed=3)
    write_sequence_bag(sequence, tmp_path / "a", options)
    stamps = [header_stamp(msg) for _, msg in _read_topic(tmp_path / "a", "/thermal/image")]
    assert len(stamps) == FRAMES // 3
    nominal = np.array([START_NS + round(i * 1e9 / 30) + 50_000_000 for i in range(0, FRAMES, 3)])
    deviation = np.array(stamps) - nominal
    assert np.all(np.abs(deviation) <= 4_000_000) and np.any(deviation != 0)
    write_sequence_bag(sequence, tmp_path / "b", options)
    assert [header_stamp(m) for _, m in _read_topic(tmp_path / "b", "/thermal/image")] == stamps
    times = [time for _, time, _ in _all_messages(tmp_path / "a")]
    assert times == sorted(times)


def _all_messages(bag: Path) -> list[tuple[str, int, object]]:
    with open_bag(bag) as reader:
        return list(messages(reader, []))


def test_rgbt_sequence_keeps_16_bit_thermal(tmp_path: Path) -> None:
    seq = tmp_path / "rgbt234" / "walk"
    for sub in ("visible", "infrared"):
        (seq / sub).mkdir(parents=True)
    boxes = _boxes(3)
    for i, box in enumerate(boxes):
        cv2.imwrite(str(seq / "visible" / f"{i:05d}v.jpg"), _frame(box, i))
        cv2.imwrite(str(seq / "infrared" / f"{i:05d}i.png"), np.full((48, 64), 1000 + i, np.uint16))
    for name in ("visible.txt", "infrared.txt"):
        (seq / name).write_text("".join(",".join(f"{v:g}" for v in box) + "\n" for box in boxes))
    sequence = read_dataset("rgbt234", tmp_path / "rgbt234")[0]
    write_sequence_bag(sequence, tmp_path / "bag", BagOptions(compressed=False))
    thermal = [msg for _, msg in _read_topic(tmp_path / "bag", "/thermal/image")]
    assert [m.encoding for m in thermal] == ["mono16"] * 3
    assert [int(image_to_numpy(m)[0, 0]) for m in thermal] == [1000, 1001, 1002]
    write_sequence_bag(sequence, tmp_path / "compressed", BagOptions())  # 16-bit PNG, as robots record it
    thermal = [msg for _, msg in _read_topic(tmp_path / "compressed", "/thermal/image")]
    assert [m.format for m in thermal] == ["mono16; png compressed mono16"] * 3
    decoded = [compressed_to_numpy(m) for m in thermal]
    assert [(d.dtype, d.shape, int(d[0, 0])) for d in decoded] == [(np.uint16, (48, 64), 1000 + i) for i in range(3)]
    rgb = [msg for _, msg in _read_topic(tmp_path / "compressed", "/rgb/image")]
    assert [m.format for m in rgb] == ["rgb8; jpeg compressed bgr8"] * 3  # the JPEG files themselves
    assert all(np.array_equal(decode_image(m, "rgb"), sequence.rgb(i)) for i, m in enumerate(rgb))


def _run_and_score(sequence_folder: Path, out: Path, frames: int | None = None):
    sequence = read_otb(sequence_folder)[0]
    if frames is not None:
        sequence.rgb_frames = sequence.thermal_frames = sequence.rgb_frames[:frames]
        sequence.truth = {k: v[:frames] for k, v in sequence.truth.items()}
    [run] = run_sequences(lambda: make_tracker("csrt-rgb"), [sequence], out, progress=False)
    return sequence, run, score_results({sequence.name: run.boxes}, {sequence.name: sequence.truths()}, "otb")


def test_bag_evaluate_equals_run_and_evaluate(otb_sequence: Path, tmp_path: Path) -> None:
    sequence, run, expected = _run_and_score(otb_sequence, tmp_path / "run")
    write_sequence_bag(sequence, tmp_path / "bag", BagOptions())
    result = evaluate_bag(tmp_path / "bag", lambda: make_tracker("csrt-rgb"))
    assert (result.pairs, result.unpaired_truth_frames, result.name) == (FRAMES, 0, "square")
    np.testing.assert_array_equal(result.run.boxes, run.boxes)
    assert (result.scores.pr, result.scores.sr, result.scores.frames) == (expected.pr, expected.sr, FRAMES)
    assert 0 < expected.sr < 1


def test_bag_evaluate_equals_run_on_shared_sequence(tmp_path: Path) -> None:
    """60 frames of PTB-TIR airplane through both paths with CSRT (about 3 s)."""
    folder = SHARED_DATA / "ptbtir_airplane"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared OTB-style sequences live in ../shared/data beside the project")
    sequence, run, expected = _run_and_score(folder, tmp_path / "run", frames=60)
    write_sequence_bag(sequence, tmp_path / "bag", BagOptions())
    result = evaluate_bag(tmp_path / "bag", lambda: make_tracker("csrt-rgb"))
    np.testing.assert_array_equal(result.run.boxes, run.boxes)
    assert (result.scores.pr, result.scores.sr) == (expected.pr, expected.sr)


def test_bag_evaluate_pairs_like_the_node(otb_sequence: Path, tmp_path: Path) -> None:
    sequence = read_otb(otb_sequence)[0]
    # 1.5 frame periods late: 16.7 ms from both neighbours, beyond the default 15 ms slop.
    write_sequence_bag(sequence, tmp_path / "late", BagOptions(thermal_offset=0.05))
    with pytest.raises(ValueError, match="no RGB-thermal pair"):
        evaluate_bag(tmp_path / "late", lambda: make_tracker("csrt-rgb"))
    corrected = evaluate_bag(tmp_path / "late", lambda: make_tracker("csrt-rgb"), PairingConfig(thermal_offset=-0.05))
    assert corrected.pairs == FRAMES
    write_sequence_bag(sequence, tmp_path / "slow", BagOptions(thermal_rate=10, jitter=0.003, seed=1))
    slow = evaluate_bag(tmp_path / "slow", lambda: make_tracker("csrt-rgb"))
    assert (slow.pairs, slow.received_thermal, slow.received_rgb) == (4, 4, FRAMES)
    assert slow.scores.frames == 4 and slow.unpaired_truth_frames == FRAMES - 4
    assert [int(s - START_NS) // PERIOD_NS for s in slow.stamps] == [0, 3, 6, 9]


def _write_recording(path: Path, outputs: list[tuple[int, np.ndarray, int]]) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    types = store.types
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/tracked_object", TRACKED_OBJECT, typestore=store)
        for stamp, box, state in outputs:
            msg = types[TRACKED_OBJECT](
                header=header(stamp, "rgb_camera"), target_id="t", state=state,
                x=float(box[0]), y=float(box[1]), width=float(box[2]), height=float(box[3]),
                confidence=0.9, age=1, frames_since_seen=0, reason="",
                pair_dt=types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
            )
            writer.write(conn, stamp + 5_000_000, store.serialize_cdr(msg, TRACKED_OBJECT))


def test_score_counts_missing_outputs_as_misses(otb_sequence: Path, tmp_path: Path) -> None:
    write_sequence_bag(read_otb(otb_sequence)[0], tmp_path / "truth", BagOptions())
    truth = read_ground_truth(tmp_path / "truth")
    stamps = sorted(truth)
    skipped = {stamps[2], stamps[5], stamps[7]}
    outputs = [(s, truth[s], 1) for s in stamps if s not in skipped]
    outputs[3] = (outputs[3][0], outputs[3][1], 3)  # STOPPED: no target
    outputs.append((stamps[-1] + 1, truth[stamps[-1]], 1))  # stamp of no frame
    _write_recording(tmp_path / "recorded", outputs)
    result = score_recording(tmp_path / "recorded", tmp_path / "truth")
    assert (result.expected, result.missing, result.unmatched_outputs) == (FRAMES, 4, 1)
    assert result.missing_percent == pytest.approx(100 * 4 / FRAMES)
    assert result.scores.pr == pytest.approx((FRAMES - 4) / FRAMES)
    assert result.scores.sr == pytest.approx((FRAMES - 4) / FRAMES * 20 / 21)  # IoU 1 fails the threshold 1


def test_score_expects_only_paired_frames(otb_sequence: Path, tmp_path: Path) -> None:
    write_sequence_bag(read_otb(otb_sequence)[0], tmp_path / "truth", BagOptions(thermal_rate=15))
    truth = read_ground_truth(tmp_path / "truth")
    paired = sorted(truth)[::2]
    _write_recording(tmp_path / "recorded", [(s, truth[s], 1) for s in paired])
    assert score_recording(tmp_path / "recorded", tmp_path / "truth").missing == 0
    every = score_recording(tmp_path / "recorded", tmp_path / "truth", all_frames=True)
    assert (every.expected, every.missing) == (FRAMES, FRAMES // 2)


def test_cli_from_sequence_evaluate_and_score(otb_sequence: Path, tmp_path: Path, capsys) -> None:
    bag = tmp_path / "bag"
    assert main(["bag", "from-sequence", str(otb_sequence), str(bag), "-q", "--storage", "sqlite3"]) == 0
    assert "same frames feed" in capsys.readouterr().out
    assert main(["bag", "evaluate", str(bag), "--model", "csrt-rgb", "--json", "-q", "--out", str(tmp_path / "r")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["sequence"], report["pairs"], report["frames"]) == ("square", FRAMES, FRAMES)
    assert (tmp_path / "r" / "square.txt").is_file()
    truth = read_ground_truth(bag)
    _write_recording(tmp_path / "rec", [(s, truth[s], 1) for s in sorted(truth)])
    assert main(["bag", "score", str(tmp_path / "rec"), str(bag), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert (scored["pr"], scored["missing"], scored["frames"]) == (100.0, 0, FRAMES)
    assert main(["bag", "evaluate", str(tmp_path / "nothing"), "--model", "csrt-rgb"]) == 2


def test_custom_topics_reach_the_reader(otb_sequence: Path, tmp_path: Path) -> None:
    options = BagOptions(rgb_topic="/cam/rgb", thermal_topic="/cam/ir", ground_truth_topic="/gt")
    write_sequence_bag(read_otb(otb_sequence)[0], tmp_path / "bag", options)
    with pytest.raises(ValueError, match="no image topic /rgb/image or /rgb/image/compressed"):
        evaluate_bag(tmp_path / "bag", lambda: make_tracker("csrt-rgb"), topics=Topics(ground_truth="/gt"))
    topics = Topics("/cam/rgb", "/cam/ir", "/gt")
    result = evaluate_bag(tmp_path / "bag", lambda: make_tracker("csrt-rgb"), topics=topics)
    assert result.pairs == FRAMES
