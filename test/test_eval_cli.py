"""`rgbt-track evaluate` and `rgbt-track run` end to end on tiny fake sequences."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data.results import read_boxes, write_boxes


def _moving_square(folder: Path, frames: int = 5, size: int = 48) -> None:
    """An OTB-style sequence: a bright textured square moving right on a dark background."""
    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    patch = rng.integers(120, 255, size=(12, 12, 3), dtype=np.uint8)
    rows = []
    for index in range(frames):
        image = np.full((size, size, 3), 20, np.uint8)
        x = 8 + 2 * index
        image[16:28, x : x + 12] = patch
        cv2.imwrite(str(folder / "img" / f"{index + 1:04d}.png"), image)
        rows.append(f"{x},16,12,12")
    (folder / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")


def _rgbt234_truth(root: Path) -> None:
    for name in ("s1", "s2"):
        (root / name).mkdir(parents=True)
        for file in ("visible.txt", "infrared.txt"):
            write_boxes(root / name / file, [[10, 10, 20, 20]] * 4)


def test_evaluate_table_json_and_plots(tmp_path, capsys):
    _rgbt234_truth(tmp_path / "gt")
    for tracker, shift in (("good", 0), ("poor", 30)):
        for name in ("s1", "s2"):
            write_boxes(tmp_path / tracker / f"{name}.txt", [[10 + shift, 10, 20, 20]] * 4)
    folders = [str(tmp_path / "good"), str(tmp_path / "poor")]
    assert main(["evaluate", "--dataset", "rgbt234", "--root", str(tmp_path / "gt"), *folders]) == 0
    table = capsys.readouterr().out
    assert "MPR" in table and "good" in table and "poor" in table
    args = ["evaluate", "--dataset", "rgbt234", "--root", str(tmp_path / "gt"), *folders, "--json", "--plot", str(tmp_path / "plots")]
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == {"tracker": "good", "dataset": "rgbt234", "pr": 100.0, "npr": None, "sr": pytest.approx(100 * 20 / 21, abs=0.01)}
    assert rows[1]["pr"] == 0.0 and rows[1]["sr"] == 0.0
    for plot in ("rgbt234_precision.png", "rgbt234_success.png"):
        image = cv2.imread(str(tmp_path / "plots" / plot))
        assert image is not None and image.shape[1] > 400


def test_evaluate_per_sequence_shows_where_a_tracker_loses(tmp_path, capsys):
    _rgbt234_truth(tmp_path / "gt")
    write_boxes(tmp_path / "mixed" / "s1.txt", [[10, 10, 20, 20]] * 4)
    write_boxes(tmp_path / "mixed" / "s2.txt", [[60, 10, 20, 20]] * 4)
    assert main(["evaluate", "--per-sequence", "--dataset", "rgbt234", "--root", str(tmp_path / "gt"),
                 str(tmp_path / "mixed")]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines() if line[:2] in ("s1", "s2")}
    assert rows == {"s1": "100.0/95.2", "s2": "0.0/0.0"}


def test_evaluate_reports_missing_results(tmp_path, capsys):
    _rgbt234_truth(tmp_path / "gt")
    write_boxes(tmp_path / "t" / "s1.txt", [[10, 10, 20, 20]] * 4)
    assert main(["evaluate", "--dataset", "rgbt234", "--root", str(tmp_path / "gt"), str(tmp_path / "t")]) == 2
    assert "result files missing" in capsys.readouterr().err


def test_run_csrt_resume_and_evaluate(tmp_path, capsys):
    _moving_square(tmp_path / "square")
    out = tmp_path / "csrt"
    args = ["run", "--model", "csrt-rgb", "--sequence", str(tmp_path / "square"), "--out", str(out)]
    assert main(args) == 0
    boxes = read_boxes(out / "square.txt")
    assert boxes.shape == (5, 4) and boxes[0].tolist() == [8, 16, 12, 12]
    assert len((out / "confidence" / "square.txt").read_text().split()) == 5
    assert len((out / "time" / "square.txt").read_text().split()) == 5
    assert "tracked 1 sequence(s), skipped 0" in capsys.readouterr().out

    stamp = (out / "square.txt").stat().st_mtime_ns
    assert main(args) == 0
    assert "tracked 0 sequence(s), skipped 1" in capsys.readouterr().out
    assert (out / "square.txt").stat().st_mtime_ns == stamp

    write_boxes(out / "square.txt", boxes[:3])  # a result file that does not cover the sequence
    assert main(args) == 0
    assert "tracked 1 sequence(s)" in capsys.readouterr().out and len(read_boxes(out / "square.txt")) == 5

    assert main(["evaluate", "--dataset", "otb", "--root", str(tmp_path / "square"), str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tracker"] == "csrt" and row["pr"] > 50


def test_run_tiny_model_on_a_dataset_and_thermal_csrt(tmp_path, capsys):
    root = tmp_path / "rgbt234"
    _moving_square(root / "sq", frames=3)
    (root / "sq" / "img").rename(root / "sq" / "visible")
    (root / "sq" / "infrared").mkdir()
    for path in sorted((root / "sq" / "visible").iterdir()):
        cv2.imwrite(str(root / "sq" / "infrared" / path.name), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    for file in ("visible.txt", "infrared.txt"):
        (root / "sq" / file).write_text((root / "sq" / "groundtruth_rect.txt").read_text())
    for model in ("ainet_tiny", "csrt-thermal"):
        out = tmp_path / model
        assert main(["run", "--model", model, "--dataset", "rgbt234", "--root", str(root), "--out", str(out)]) == 0
        boxes = read_boxes(out / "sq.txt")
        assert boxes.shape == (3, 4) and np.isfinite(boxes).all()
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "rgbt234", "--root", str(root), str(tmp_path / "ainet_tiny"), str(tmp_path / "csrt-thermal")]) == 0
    assert "csrt-thermal" in capsys.readouterr().out


def test_run_needs_one_source(tmp_path, capsys):
    assert main(["run", "--model", "csrt-rgb", "--out", str(tmp_path)]) == 2
    assert "either --dataset" in capsys.readouterr().err
