"""Annotated frames: the RGB image with the tracked box, state and confidence, and the
thermal frame as a colour-mapped inset. Shared by the demo, evaluation videos and the node."""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the tracker package imports torch; only its box type is needed here
    from rgbt_tracking_ros.tracker.geometry import BoxLike

TRACKING_COLOUR = (0, 220, 0)
LOST_COLOUR = (0, 0, 255)
TRUTH_COLOUR = (255, 255, 255)


def _rectangle(image: np.ndarray, box: BoxLike, colour: tuple[int, int, int], thickness: int) -> None:
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, thickness)


def annotate(
    rgb: np.ndarray,
    thermal_rgb8: np.ndarray | None,
    box: BoxLike | None,
    label: str,
    lost: bool = False,
    truth: BoxLike | None = None,
    inset_fraction: float = 0.3,
) -> np.ndarray:
    """A BGR image for display or video: box in green (red when lost), truth in white."""
    canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if thermal_rgb8 is not None:
        height, width = canvas.shape[:2]
        inset_w = max(1, int(width * inset_fraction))
        inset_h = max(1, int(thermal_rgb8.shape[0] * inset_w / thermal_rgb8.shape[1]))
        gray = cv2.cvtColor(thermal_rgb8, cv2.COLOR_RGB2GRAY)
        inset = cv2.applyColorMap(cv2.resize(gray, (inset_w, min(inset_h, height))), cv2.COLORMAP_INFERNO)
        canvas[: inset.shape[0], width - inset_w :] = inset
    if truth is not None:
        _rectangle(canvas, truth, TRUTH_COLOUR, 1)
    if box is not None:
        _rectangle(canvas, box, LOST_COLOUR if lost else TRACKING_COLOUR, 2)
    cv2.putText(canvas, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
