"""OpenCV's CSRT on one modality, behind the tracker interface, as a known baseline.

Its scores printed beside ours on the same frames tell whether a number is plausible; CSRT
comes with opencv-contrib, which the package already depends on.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..tracker.geometry import BoxLike
from ..tracker.preprocess import align_thermal, thermal_to_rgb8, to_rgb_uint8
from ..tracker.result import TrackResult, TrackState

PEERS = {"csrt-rgb": "rgb", "csrt-thermal": "thermal"}


def _create_csrt() -> cv2.Tracker:
    if hasattr(cv2, "TrackerCSRT"):
        return cv2.TrackerCSRT.create()
    raise RuntimeError("OpenCV has no CSRT tracker: install opencv-contrib-python-headless")


class CsrtTracker:
    """CSRT on the RGB or the thermal stream with RGBTTracker's initialize/track calls.

    Thermal frames are brought to 8 bit and onto the RGB pixel grid first, so boxes are in RGB
    pixels for both modalities. Confidence is 1 while CSRT reports the target found, else 0
    (the box then stays where it was).
    """

    def __init__(self, modality: str = "rgb") -> None:
        if modality not in ("rgb", "thermal"):
            raise ValueError(f"modality must be 'rgb' or 'thermal', got {modality!r}")
        self.modality = modality
        self._tracker: cv2.Tracker | None = None
        self._box: npt.NDArray[np.float64] | None = None
        self._unseen = 0

    def _image(self, rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        rgb = to_rgb_uint8(rgb)
        image = rgb if self.modality == "rgb" else align_thermal(thermal_to_rgb8(thermal), rgb.shape)
        return np.ascontiguousarray(image[:, :, ::-1])

    def initialize(self, rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any], box_xywh: BoxLike) -> None:
        box = np.asarray(box_xywh, dtype=np.float64)
        if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"initial box must be finite (x, y, w, h) with w, h > 0, got {box_xywh}")
        self._tracker = _create_csrt()
        self._tracker.init(self._image(rgb, thermal), tuple(int(round(v)) for v in box))
        self._box = box
        self._unseen = 0

    def track(self, rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any]) -> TrackResult:
        if self._tracker is None or self._box is None:
            raise RuntimeError("track() called before initialize()")
        found, box = self._tracker.update(self._image(rgb, thermal))
        if found:
            self._box = np.asarray(box, dtype=np.float64)
            self._unseen = 0
            return TrackResult(self._box.copy(), 1.0, TrackState.TRACKING)
        self._unseen += 1
        return TrackResult(self._box.copy(), 0.0, TrackState.LOST, self._unseen, "CSRT reports the target not found")
