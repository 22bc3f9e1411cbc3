"""Our metrics against the `rgbt` toolkit (PyPI) on many random result sets, files and all.

Each trial writes ground truth and results in the toolkit's layouts, scores them with the
toolkit and with our readers and metrics, and requires agreement within 0.05 percentage points.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rgbt_tracking_ros.data.results import ltrb_to_xywh, read_boxes, read_results, read_rows
from rgbt_tracking_ros.eval.metrics import PROTOCOLS, score_results

rgbt = pytest.importorskip("rgbt", reason="the `rgbt` toolkit (pip install rgbt, in the [dev] extra) is the oracle")
from rgbt.utils import RGBT_end, RGBT_start  # noqa: E402

TOLERANCE = 0.0005  # 0.05 percentage points
TRIALS = 25
ATTRIBUTES_234 = ("BC", "CM", "DEF", "FM", "HO", "LI", "LR", "MB", "NO", "TC", "PO", "SC")
WORST: dict[str, float] = {}


def _truth(rng: np.random.Generator, frames: int) -> np.ndarray:
    xy = rng.integers(0, 300, size=(frames, 2))
    wh = rng.integers(3, 90, size=(frames, 2))
    return np.concatenate([xy, wh], axis=1).astype(np.float64)


def _prediction(rng: np.random.Generator, truth: np.ndarray, extra: int = 0) -> np.ndarray:
    """Noisy boxes with half-pixel values, and degenerate rows: zero, negative, NaN, far away."""
    frames = len(truth) + extra
    base = np.concatenate([truth, np.repeat(truth[-1:], extra, axis=0)])
    noise = rng.normal(0, rng.uniform(0.5, 25), size=(frames, 4))
    pred = np.round((base + noise) * 2) / 2
    kinds = rng.integers(0, 12, size=frames)
    pred[kinds == 0, 2] = 0
    pred[kinds == 1, 3] = -rng.integers(1, 20, size=(kinds == 1).sum())
    pred[kinds == 2, 2:] = -5
    pred[kinds == 3] = np.nan
    pred[kinds == 4, :2] += 500
    pred[kinds == 5] = base[kinds == 5]  # exact hits put errors on the thresholds
    return pred


def _write(path: Path, rows: np.ndarray, rng: np.random.Generator) -> None:
    separator = [",", " ", "\t"][rng.integers(0, 3)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(separator.join(f"{v:g}" for v in row) + "\n" for row in rows))


def _check(name: str, ours: float, theirs: float) -> None:
    WORST[name] = max(WORST.get(name, 0.0), abs(ours - theirs))
    assert abs(ours - theirs) <= TOLERANCE, f"{name}: ours {ours:.6f}, toolkit {theirs:.6f}"


def _names(rng: np.random.Generator) -> list[str]:
    return [f"seq{i}" for i in range(int(rng.integers(2, 6)))]


@pytest.mark.parametrize("seed", range(TRIALS))
def test_rgbt234_mpr_msr(tmp_path, seed):
    rng = np.random.default_rng(seed)
    names, truths = _names(rng), {}
    for name in names:
        frames = int(rng.integers(15, 90))
        visible = _truth(rng, frames)
        infrared = visible + rng.integers(-3, 4, size=visible.shape)
        infrared[:, 2:] = np.maximum(infrared[:, 2:], 1)
        _write(tmp_path / "gt" / name / "visible.txt", visible, rng)
        _write(tmp_path / "gt" / name / "infrared.txt", infrared, rng)
        _write(tmp_path / "res" / f"{name}.txt", _prediction(rng, visible, int(rng.integers(0, 3))), rng)
        truths[name] = (read_boxes(tmp_path / "gt" / name / "visible.txt"), read_boxes(tmp_path / "gt" / name / "infrared.txt"))
    (tmp_path / "names.txt").write_text("\n".join(names))
    for attribute in ATTRIBUTES_234:
        _write(tmp_path / "attr_txt" / f"{attribute}.txt", np.ones((len(names), 1)), rng)
    toolkit = rgbt.RGBT234(gt_path=str(tmp_path / "gt") + "/", seq_name_path=str(tmp_path / "names.txt"))
    toolkit("t", str(tmp_path / "res"))
    ours = score_results(read_results(tmp_path / "res", names), truths, "rgbt234")
    _check("rgbt234 MPR", ours.pr, toolkit.MPR("t")[0])
    _check("rgbt234 MSR", ours.sr, toolkit.MSR("t")[0])
    np.testing.assert_allclose(ours.precision_curve, toolkit.MPR("t")[1].mean(0), atol=TOLERANCE)


@pytest.mark.parametrize("seed", range(TRIALS))
def test_vtuav_is_rgbt234_on_annotated_frames(tmp_path, seed):
    """VTUAV (not in the toolkit): MPR/MSR on every 10th frame = the toolkit's MPR/MSR on those frames."""
    rng = np.random.default_rng(100 + seed)
    names, truths, preds = _names(rng), {}, {}
    for name in names:
        rows = int(rng.integers(5, 20))
        visible = _truth(rng, rows)
        infrared = visible + rng.integers(-3, 4, size=visible.shape)
        full = _prediction(rng, np.repeat(visible, 10, axis=0))
        preds[name] = full
        truths[name] = (visible, infrared)
        _write(tmp_path / "gt" / name / "visible.txt", visible, rng)
        _write(tmp_path / "gt" / name / "infrared.txt", infrared, rng)
        _write(tmp_path / "res" / f"{name}.txt", full[::10], rng)
    (tmp_path / "names.txt").write_text("\n".join(names))
    for attribute in ATTRIBUTES_234:
        _write(tmp_path / "attr_txt" / f"{attribute}.txt", np.ones((len(names), 1)), rng)
    toolkit = rgbt.RGBT234(gt_path=str(tmp_path / "gt") + "/", seq_name_path=str(tmp_path / "names.txt"))
    toolkit("t", str(tmp_path / "res"))
    ours = score_results(preds, truths, "vtuav")
    _check("vtuav MPR", ours.pr, toolkit.MPR("t")[0])
    _check("vtuav MSR", ours.sr, toolkit.MSR("t")[0])


@pytest.mark.parametrize("seed", range(TRIALS))
def test_rgbt210_and_otb_pr_sr(tmp_path, seed):
    rng = np.random.default_rng(200 + seed)
    names, truths = _names(rng), {}
    for name in names:
        truth = _truth(rng, int(rng.integers(15, 90)))
        _write(tmp_path / "gt" / name / "init.txt", truth, rng)
        _write(tmp_path / "res" / f"T_{name}.txt", _prediction(rng, truth, int(rng.integers(0, 3))), rng)
        boxes = read_boxes(tmp_path / "gt" / name / "init.txt")
        truths[name] = (boxes, boxes)
    (tmp_path / "names.txt").write_text("\n".join(names))
    (tmp_path / "attr_txt").mkdir()
    (tmp_path / "attr_txt" / "SequencesName.txt").write_text("\n".join(names))
    for attribute in ATTRIBUTES_234:
        _write(tmp_path / "attr_txt" / f"{attribute}.txt", np.ones((len(names), 1)), rng)
    toolkit = rgbt.RGBT210(gt_path=str(tmp_path / "gt") + "/", seq_name_path=str(tmp_path / "names.txt"))
    toolkit("t", str(tmp_path / "res"), prefix="T_")
    predictions = read_results(tmp_path / "res", names)  # the prefix is found on its own
    for dataset in ("rgbt210", "otb"):
        ours = score_results(predictions, truths, dataset)
        _check(f"{dataset} PR", ours.pr, toolkit.PR("t")[0])
        _check(f"{dataset} SR", ours.sr, toolkit.SR("t")[0])
        assert ours.npr is None


@pytest.mark.parametrize("seed", range(TRIALS))
def test_lasher_pr_npr_sr(tmp_path, seed):
    rng = np.random.default_rng(300 + seed)
    names, truths = _names(rng), {}
    (tmp_path / "AttriSeqsTxt").mkdir()
    for name in names:
        truth = _truth(rng, int(rng.integers(15, 90)))
        absent = rng.random(len(truth)) < 0.1
        truth[absent] = 0  # target out of view
        truth[rng.random(len(truth)) < 0.03, 0] = 0  # a box on the left border: also flagged by the toolkit
        _write(tmp_path / "gt" / f"{name}.txt", truth, rng)
        _write(tmp_path / "res" / f"{name}.txt", _prediction(rng, truth, int(rng.integers(0, 3))), rng)
        _write(tmp_path / "AttriSeqsTxt" / f"{name}.txt", np.ones((1, 19)), rng)
        truths[name] = (read_boxes(tmp_path / "gt" / f"{name}.txt"),)
    (tmp_path / "names.txt").write_text("\n".join(names))
    toolkit = rgbt.LasHeR(gt_path=str(tmp_path / "gt") + "/", seq_name_path=str(tmp_path / "names.txt"))
    toolkit("t", str(tmp_path / "res"))
    ours = score_results(read_results(tmp_path / "res", names, inclusive_corners=True), truths, "lasher")
    _check("lasher PR", ours.pr, toolkit.PR("t")[0])
    _check("lasher NPR", ours.npr, toolkit.NPR("t")[0])
    _check("lasher SR", ours.sr, toolkit.SR("t")[0])


@pytest.mark.parametrize("seed", range(TRIALS))
def test_gtot_frame_pooled_5px(tmp_path, seed):
    rng = np.random.default_rng(400 + seed)
    names, truths = _names(rng), {}
    for name in names:
        truth = _truth(rng, int(rng.integers(15, 90)))
        corners = np.concatenate([truth[:, :2], truth[:, :2] + truth[:, 2:]], axis=1)
        _write(tmp_path / "gt" / name / "groundTruth_v.txt", corners, rng)
        _write(tmp_path / "gt" / name / "groundTruth_i.txt", corners + rng.integers(-2, 3, size=corners.shape), rng)
        pred = _prediction(rng, truth)
        if seed % 2:  # the 8-value corner format
            x1, y1, x2, y2 = pred[:, 0], pred[:, 1], pred[:, 0] + pred[:, 2], pred[:, 1] + pred[:, 3]
            pred = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1)
        _write(tmp_path / "res" / f"{name}.txt", pred, rng)
        truths[name] = tuple(ltrb_to_xywh(read_rows(tmp_path / "gt" / name / f"groundTruth_{m}.txt"), False) for m in "vi")
    (tmp_path / "names.txt").write_text("\n".join(names))
    RGBT_start()  # the toolkit's documented GTOT usage
    try:
        toolkit = rgbt.GTOT(gt_path=str(tmp_path / "gt") + "/", seq_name_path=str(tmp_path / "names.txt"))
        toolkit("t", str(tmp_path / "res"), bbox_type="corner" if seed % 2 else "ltwh")
        mpr, msr = toolkit.MPR("t"), toolkit.MSR("t")
    finally:
        RGBT_end()
    ours = score_results(read_results(tmp_path / "res", names), truths, PROTOCOLS["gtot"])
    _check("gtot MPR", ours.pr, mpr[0])
    _check("gtot MSR", ours.sr, msr[0])
    np.testing.assert_allclose(ours.precision_curve, mpr[1].mean(0), atol=TOLERANCE)


@pytest.mark.parametrize("dataset", ["lasher", "rgbt234", "gtot"])
def test_shipped_ground_truth(tmp_path, dataset):
    """A few real sequences of the ground truth the toolkit ships (absent-target rows and all)."""
    from rgbt_tracking_ros.data.datasets import read_dataset

    base = Path(rgbt.__file__).parent / "gt_file"
    gt_root = {"lasher": base / "LasHeR" / "lasher_gt", "rgbt234": base / "RGBT234" / "rgbt234_gt", "gtot": base / "GTOT" / "groundtruth"}[dataset]
    rng = np.random.default_rng(7)
    sequences = read_dataset(dataset, gt_root, frames=False)
    chosen = [sequences[i] for i in rng.choice(len(sequences), size=4, replace=False)]
    for sequence in chosen:
        truth = sequence.truth["visible"]
        _write(tmp_path / "res" / f"{sequence.name}.txt", _prediction(rng, truth), rng)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(s.name for s in chosen))
    if dataset == "gtot":
        RGBT_start()
    try:
        toolkit = {"lasher": rgbt.LasHeR, "rgbt234": rgbt.RGBT234, "gtot": rgbt.GTOT}[dataset](seq_name_path=str(names))
        toolkit("t", str(tmp_path / "res"))
        theirs = (toolkit.PR("t")[0], toolkit.SR("t")[0]) if dataset == "lasher" else (toolkit.MPR("t")[0], toolkit.MSR("t")[0])
    finally:
        RGBT_end()
    ours = score_results(read_results(tmp_path / "res", [s.name for s in chosen]), {s.name: s.truths() for s in chosen}, dataset)
    _check(f"{dataset} shipped PR", ours.pr, theirs[0])
    _check(f"{dataset} shipped SR", ours.sr, theirs[1])


def test_report_worst_disagreement():
    """Runs last in this module: prints the largest difference seen per metric (pytest -s)."""
    assert WORST, "no oracle comparison ran"
    for name, worst in sorted(WORST.items()):
        print(f"{name:>14}: max |ours - toolkit| = {worst * 100:.2e} pp")
