"""Hand-checked cases of each protocol's conventions (independent of the toolkit oracle)."""
from __future__ import annotations

import numpy as np
import pytest

from rgbt_tracking_ros.eval.metrics import PROTOCOLS, frame_measures, overlaps, score_results


def _boxes(*rows):
    return np.array(rows, dtype=np.float64)


def test_perfect_tracking_scores_one_except_the_strict_top_overlap():
    truth = _boxes(*[[10 + i, 20, 30, 40] for i in range(10)])
    scores = score_results({"a": truth}, {"a": (truth, truth)}, "rgbt234")
    assert scores.pr == 1.0
    assert scores.sr == pytest.approx(20 / 21)  # IoU 1 is not > 1
    assert scores.npr is None


def test_precision_threshold_is_inclusive_except_gtot():
    truth = _boxes([0, 0, 10, 10], [0, 0, 10, 10])
    pred = _boxes([0, 0, 10, 10], [5, 0, 10, 10])  # 5 px off on the second frame
    gtot = score_results({"a": pred}, {"a": (truth, truth)}, "gtot")
    assert gtot.pr == 0.5  # GTOT counts error < 5
    at_five = frame_measures(pred, (truth, truth), PROTOCOLS["rgbt234"]).errors
    assert at_five.tolist() == [0, 5]


def test_best_of_modalities_and_single_truth():
    visible, infrared = _boxes([0, 0, 10, 10]), _boxes([100, 100, 10, 10])
    pred = _boxes([100, 100, 10, 10])
    assert score_results({"a": pred}, {"a": (visible, infrared)}, "rgbt234").pr == 1.0
    lone = _boxes([0, 0, 10, 10], [100, 100, 10, 10])
    assert score_results({"a": lone}, {"a": (_boxes([0, 0, 10, 10], [0, 0, 10, 10]),)}, "rgbt210").pr == 0.5


def test_sequences_weigh_equally_except_gtot_frames():
    truth_long, truth_short = np.tile([[0, 0, 10, 10]], (9, 1)), _boxes([0, 0, 10, 10])
    miss = np.tile([[200, 200, 10, 10]], (9, 1))
    predictions = {"long": miss, "short": truth_short}
    truths = {"long": (truth_long, truth_long), "short": (truth_short, truth_short)}
    assert score_results(predictions, truths, "rgbt234").pr == 0.5
    assert score_results(predictions, truths, "gtot").pr == pytest.approx(0.1)


def test_lasher_fills_empty_predictions_and_flags_absent_truth():
    truth = _boxes([1, 1, 10, 10], [1, 1, 10, 10], [0, 0, 0, 0], [50, 50, 10, 10], [0, 5, 10, 10])
    pred = _boxes([99, 99, 5, 5], [1, 1, 10, 10], [7, 7, 7, 7], [50, 50, 0, 10], [0, 5, 10, 10])
    measures = frame_measures(pred, (truth,), PROTOCOLS["lasher"])
    # frame 0 takes the truth; frames 2 and 4 (x = 0) are flagged; frame 3's empty box is frame 2's box
    assert measures.errors[[0, 1, 2, 4]].tolist() == [0, 0, -1, -1]
    assert measures.errors[3] == pytest.approx(np.hypot(44.5, 44.5))  # centre 10 vs 54.5
    assert measures.overlaps[2] == -1
    scores = score_results({"a": pred}, {"a": (truth,)}, "lasher")
    assert scores.pr == 0.8 and scores.npr == 0.8 and scores.sr < 0.5  # the flagged frame passes precision, as in the toolkit


def test_vtuav_scores_every_tenth_frame():
    truth = _boxes([0, 0, 10, 10], [0, 0, 10, 10])
    pred = np.tile([[300, 300, 10, 10]], (20, 1)).astype(float)
    pred[0] = pred[10] = [0, 0, 10, 10]
    assert score_results({"a": pred}, {"a": (truth, truth)}, "vtuav").pr == 1.0


def test_degenerate_boxes_fail_every_overlap_threshold():
    truth = np.tile([[0, 0, 10, 10]], (4, 1)).astype(float)
    pred = _boxes([0, 0, 0, 10], [0, 0, -10, -10], [np.nan] * 4, [0, 0, 10, 10])
    ious = overlaps(np.round(pred).astype(np.float32), truth.astype(np.float32))
    assert not (ious[:3] > 0).any() and ious[3] == 1


def test_results_shorter_than_lasher_truth_are_refused():
    truth = np.tile([[0, 0, 10, 10]], (5, 1))
    with pytest.raises(ValueError, match="4 predicted boxes for 5"):
        score_results({"a": truth[:4]}, {"a": (truth,)}, "lasher")


def test_missing_sequence_is_named():
    truth = _boxes([0, 0, 10, 10])
    with pytest.raises(ValueError, match="seqB"):
        score_results({"seqA": truth}, {"seqA": (truth,), "seqB": (truth,)}, "otb")
