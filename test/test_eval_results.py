"""Result and ground-truth box files: separators, corner rows, names, refusals."""
from __future__ import annotations

import numpy as np
import pytest

from rgbt_tracking_ros.data.results import guess_prefix, read_boxes, read_results, write_boxes


@pytest.mark.parametrize("separator", [",", " ", "\t", ", ", "  "])
def test_separators(tmp_path, separator):
    path = tmp_path / "a.txt"
    path.write_text(f"1{separator}2{separator}3{separator}4\n\n5{separator}6{separator}7{separator}nan\n")
    boxes = read_boxes(path)
    assert boxes.shape == (2, 4) and boxes[0].tolist() == [1, 2, 3, 4] and np.isnan(boxes[1, 3])


def test_corner_rows_become_xywh_with_either_width_convention(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("10 20 40 20 40 60 10 60\n")
    assert read_boxes(path).tolist() == [[10, 20, 30, 40]]
    assert read_boxes(path, inclusive_corners=True).tolist() == [[10, 20, 31, 41]]


def test_bad_rows_are_refused_with_their_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(ValueError, match=":2:"):
        read_boxes(path)
    path.write_text("1,2,x,4\n")
    with pytest.raises(ValueError, match="not a number"):
        read_boxes(path)


def test_write_then_read_round_trip(tmp_path):
    boxes = np.array([[1.25, 2, 3, 4], [5, 6, 7.5, 8]])
    write_boxes(tmp_path / "s.txt", boxes)
    np.testing.assert_allclose(read_boxes(tmp_path / "s.txt"), boxes)


def test_prefixed_results_folder(tmp_path):
    folder = tmp_path / "TFNet"
    folder.mkdir()
    for name in ("car", "bluecar"):
        write_boxes(folder / f"TFNet_{name}.txt", [[0, 0, 1, 1]])
    assert guess_prefix(folder, ["car", "bluecar"]) == "TFNet_"
    assert set(read_results(folder, ["car", "bluecar"])) == {"car", "bluecar"}
    with pytest.raises(FileNotFoundError, match="1 of 3 result files missing"):
        read_results(folder, ["car", "bluecar", "bus"])
