"""Sequences cut to start at several frames (`data/segments.py`, `run` / `evaluate --starts`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_eval_cli import _moving_square

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data.datasets import Sequence
from rgbt_tracking_ros.data.results import read_boxes
from rgbt_tracking_ros.data.segments import start_segments
from rgbt_tracking_ros.eval.metrics import PROTOCOLS


def _sequence(rows: int, truth_step: int = 1) -> Sequence:
    frames = [Path(f"{index:04d}.png") for index in range(rows * truth_step)]
    visible = np.array([[index, 0.0, 10.0, 10.0] for index in range(rows)])
    infrared = visible + [0.0, 1.0, 0.0, 0.0]
    return Sequence("s", frames, list(frames), {"visible": visible, "infrared": infrared},
                    PROTOCOLS["rgbt234"], truth_step=truth_step, metadata={"kind": "test"})


def test_segments_start_evenly_and_skip_rows_without_a_box():
    sequence = _sequence(9)
    sequence.truth["visible"][3] = [0.0, 0.0, 0.0, 0.0]  # target absent where the second start falls
    segments = start_segments([sequence], 3)
    assert [s.name for s in segments] == ["s", "s@4", "s@6"]
    second = segments[1]
    assert second.rgb_frames[0] == Path("0004.png") and len(second) == 5
    assert second.thermal_frames == second.rgb_frames
    assert second.init_box.tolist() == [4.0, 0.0, 10.0, 10.0]
    assert second.truth["infrared"][0].tolist() == [4.0, 1.0, 10.0, 10.0]
    assert second.metadata == {"kind": "test", "sequence": "s", "start_frame": "4"}
    assert segments[0].truth["visible"].shape == (9, 4) and len(segments[0]) == 9
    assert [s.name for s in start_segments([sequence], 1)] == ["s"]


def test_segments_cut_at_the_frame_a_truth_row_annotates():
    segments = start_segments([_sequence(3, truth_step=10)], 3)
    assert [s.name for s in segments] == ["s", "s@10", "s@20"]
    assert [len(s) for s in segments] == [30, 20, 10]
    assert [len(s.truth["visible"]) for s in segments] == [3, 2, 1]


def test_starts_landing_on_one_row_run_once_and_a_bad_count_is_refused():
    assert [s.name for s in start_segments([_sequence(2)], 5)] == ["s", "s@1"]
    absent = _sequence(4)
    absent.truth["visible"][2:] = 0.0
    assert [s.name for s in start_segments([absent], 2)] == ["s"]  # nothing to start from after row 1
    with pytest.raises(ValueError, match="at least 1"):
        start_segments([_sequence(4)], 0)


def test_run_and_evaluate_from_several_starts(tmp_path, capsys):
    _moving_square(tmp_path / "data" / "square", frames=6)
    out = tmp_path / "csrt"
    args = ["run", "--model", "csrt-rgb", "--dataset", "otb", "--root", str(tmp_path / "data"), "--out", str(out)]
    assert main([*args, "--starts", "2"]) == 0
    assert "tracked 2 sequence(s)" in capsys.readouterr().out
    assert read_boxes(out / "square.txt").shape == (6, 4)
    later = read_boxes(out / "square@3.txt")
    assert later.shape == (3, 4) and later[0].tolist() == [14, 16, 12, 12]  # frame 3's truth

    evaluate = ["evaluate", "--dataset", "otb", "--root", str(tmp_path / "data"), "--per-sequence", str(out)]
    assert main([*evaluate, "--starts", "2"]) == 0
    table = capsys.readouterr().out
    assert "square@3" in table and f"{2:>5}  {9:>7}" in table  # 2 runs over 6 + 3 frames
    assert main(evaluate) == 0
    assert "square@3" not in capsys.readouterr().out

    (out / "square@3.txt").unlink()
    assert main([*evaluate, "--starts", "2"]) != 0
    assert "square@3" in capsys.readouterr().err
