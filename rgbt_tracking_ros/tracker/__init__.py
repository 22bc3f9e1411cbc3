"""Tracker runtime: numpy RGB + thermal frames in, (x, y, w, h) boxes out; no ROS imports."""
from __future__ import annotations

from rgbt_tracking_ros.tracker.geometry import (
    clip_box,
    crop_square,
    hann_window,
    map_box_back,
    validate_box,
)
from rgbt_tracking_ros.tracker.preprocess import (
    align_thermal,
    check_homography,
    thermal_to_rgb8,
    to_rgb_uint8,
    to_tensor,
)
from rgbt_tracking_ros.tracker.result import TrackResult, TrackState
from rgbt_tracking_ros.tracker.tracker import RGBTTracker, TrackerConfig

__all__ = [
    "RGBTTracker",
    "TrackResult",
    "TrackState",
    "TrackerConfig",
    "align_thermal",
    "check_homography",
    "clip_box",
    "crop_square",
    "hann_window",
    "map_box_back",
    "thermal_to_rgb8",
    "to_rgb_uint8",
    "to_tensor",
    "validate_box",
]
