"""Dataset readers on tiny fake benchmark folders, and on the shared OTB-style sequences."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt_tracking_ros.data.datasets import read_dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _frames(folder: Path, count: int, suffix: str = ".jpg", value: int = 0) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        image = np.full((8, 8, 3), value + index, np.uint8)
        cv2.imwrite(str(folder / f"{index + 1:05d}{suffix}"), image)


def _gt(path: Path, rows: list[list[float]], separator: str = ",") -> None:
    path.write_text("".join(separator.join(str(v) for v in row) + "\n" for row in rows))


def test_gtot_corners_become_xywh_without_plus_one(tmp_path):
    seq = tmp_path / "BlackCar"
    _frames(seq / "v", 3, ".png", 10)
    _frames(seq / "i", 3, ".png", 100)
    _gt(seq / "groundTruth_v.txt", [[1, 2, 5, 7]] * 3, " ")
    _gt(seq / "groundTruth_i.txt", [[2, 2, 6, 7]] * 3, "\t")
    (sequence,) = read_dataset("gtot", tmp_path)
    assert sequence.name == "BlackCar" and len(sequence) == 3
    assert sequence.truth["visible"][0].tolist() == [1, 2, 4, 5]
    assert sequence.truth["infrared"][0].tolist() == [2, 2, 4, 5]
    assert sequence.rgb(1)[0, 0].tolist() == [11, 11, 11]
    assert sequence.thermal(2)[0, 0].tolist() == [102, 102, 102]


@pytest.mark.parametrize(
    ("dataset", "folders", "files"),
    [
        ("rgbt210", ("visible", "infrared"), ("init.txt",)),
        ("rgbt234", ("visible", "infrared"), ("visible.txt", "infrared.txt", "init.txt")),
        ("lasher", ("visible", "infrared"), ("visible.txt", "infrared.txt", "init.txt")),
    ],
)
def test_paired_layouts(tmp_path, dataset, folders, files):
    for name in ("b_seq", "a_seq"):
        _frames(tmp_path / name / folders[0], 2)
        _frames(tmp_path / name / folders[1], 2)
        for index, file in enumerate(files):
            _gt(tmp_path / name / file, [[1, 1, 4 + index, 4]] * 2)
    sequences = read_dataset(dataset, tmp_path)
    assert [s.name for s in sequences] == ["a_seq", "b_seq"]
    truth = sequences[0].truth
    expected = {"rgbt210": (4, 4), "rgbt234": (4, 5), "lasher": (6, 5)}[dataset]  # LasHeR scores init.txt
    assert (truth["visible"][0, 2], truth["infrared"][0, 2]) == expected
    assert not sequences[0].single_modality


def test_sequence_list_file_orders_and_selects(tmp_path):
    for name in ("x", "y", "z"):
        _frames(tmp_path / name / "visible", 1)
        _frames(tmp_path / name / "infrared", 1)
        _gt(tmp_path / name / "init.txt", [[1, 1, 2, 2]])
    (tmp_path / "SequencesName.txt").write_text("z\nx\n")
    assert [s.name for s in read_dataset("rgbt210", tmp_path)] == ["z", "x"]


def test_vtuav_sparse_truth(tmp_path):
    seq = tmp_path / "animal_001"
    _frames(seq / "rgb", 12)
    _frames(seq / "ir", 12)
    _gt(seq / "rgb.txt", [[1, 1, 4, 4], [2, 2, 4, 4]], " ")
    _gt(seq / "ir.txt", [[1, 1, 5, 5], [2, 2, 5, 5]], " ")
    (sequence,) = read_dataset("vtuav", tmp_path)
    assert len(sequence) == 12 and sequence.truth_step == 10 and len(sequence.truth["visible"]) == 2


def test_ground_truth_only_needs_no_frames(tmp_path):
    (tmp_path / "s").mkdir()
    _gt(tmp_path / "s" / "visible.txt", [[1, 1, 2, 2]])
    _gt(tmp_path / "s" / "infrared.txt", [[1, 1, 2, 2]])
    with pytest.raises(FileNotFoundError, match="frame folders"):
        read_dataset("rgbt234", tmp_path)
    assert read_dataset("rgbt234", tmp_path, frames=False)[0].rgb_frames == []


def test_lasher_flat_ground_truth_with_test_list(tmp_path):
    (tmp_path / "gt").mkdir()
    for name in ("one", "two", "train_only"):
        _gt(tmp_path / "gt" / f"{name}.txt", [[1, 1, 3, 3]])
    (tmp_path / "lashertest.txt").write_text("two\none\n")
    assert [s.name for s in read_dataset("lasher", tmp_path / "gt", frames=False)] == ["two", "one"]


def test_otb_single_modality_feeds_one_stream_twice(tmp_path):
    _frames(tmp_path / "seq" / "img", 3)
    _gt(tmp_path / "seq" / "groundtruth_rect.txt", [[1, 1, 3, 3]] * 3, "\t")
    for root in (tmp_path, tmp_path / "seq"):
        (sequence,) = read_dataset("otb", root)
        assert sequence.single_modality and sequence.thermal_frames == sequence.rgb_frames
    assert read_dataset("otb", tmp_path)[0].init_box.tolist() == [1, 1, 3, 3]


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        read_dataset("vot", tmp_path)
    with pytest.raises(FileNotFoundError):
        read_dataset("otb", tmp_path / "absent")


@pytest.mark.parametrize("name", ["uav123_person11", "ptbtir_airplane"])
def test_shared_sequences(name):
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared OTB-style sequences live in ../shared/data beside the project")
    (sequence,) = read_dataset("otb", folder)
    assert sequence.name == name and sequence.single_modality
    assert len(sequence) == len(sequence.truth["visible"]) > 10
    image = sequence.rgb(0)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    x, y, w, h = sequence.init_box
    assert w > 0 and h > 0 and x + w <= image.shape[1] + 1 and y + h <= image.shape[0] + 1
