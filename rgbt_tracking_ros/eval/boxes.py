"""Box overlap and centre distance for (x, y, w, h) boxes, vectorised over rows, and whether a
box marks a visible target."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def valid_box(box: npt.NDArray[Any]) -> bool:
    """Whether an (x, y, w, h) box shows a target: finite, with positive width and height
    (benchmarks mark an absent target with zeros, NaN or negative sizes)."""
    return bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)


def iou_xywh(pred: npt.NDArray[Any], truth: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """IoU of matching rows of two (N, 4) arrays (or two single boxes); 0 for empty boxes."""
    pred, truth = np.atleast_2d(pred).astype(np.float64), np.atleast_2d(truth).astype(np.float64)
    left = np.maximum(pred[:, 0], truth[:, 0])
    top = np.maximum(pred[:, 1], truth[:, 1])
    right = np.minimum(pred[:, 0] + pred[:, 2], truth[:, 0] + truth[:, 2])
    bottom = np.minimum(pred[:, 1] + pred[:, 3], truth[:, 1] + truth[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = np.clip(pred[:, 2], 0, None) * np.clip(pred[:, 3], 0, None) + np.clip(truth[:, 2], 0, None) * np.clip(
        truth[:, 3], 0, None
    ) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def centre_error(pred: npt.NDArray[Any], truth: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Euclidean distance in pixels between box centres, per row."""
    pred, truth = np.atleast_2d(pred).astype(np.float64), np.atleast_2d(truth).astype(np.float64)
    offset = (pred[:, :2] + pred[:, 2:] / 2) - (truth[:, :2] + truth[:, 2:] / 2)
    return np.hypot(offset[:, 0], offset[:, 1])
