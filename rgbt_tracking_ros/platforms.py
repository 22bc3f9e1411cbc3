"""The supported robots: their cameras, the topics their parameter file (config/<name>.yaml)
subscribes to, and where that file is.

One table for the launch files, `rgbt-track node` and the tests that check each config against
its cameras (slop against the frame rates, click boxes against the image size). Imports nothing
heavy, so a launch file on a robot stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .package_files import find_package_file


@dataclass(frozen=True)
class Platform:
    """A supported robot: its cameras and the topics config/<name>.yaml subscribes to."""

    name: str
    rgb_hz: float
    thermal_hz: float
    rgb_size: tuple[int, int]  # width, height
    rgb_topic: str  # relative: a namespace applies to them
    thermal_topic: str


# docs/launch.md describes the platforms' hardware and why their configs differ.
PLATFORMS: dict[str, Platform] = {
    "drone": Platform(
        "drone", rgb_hz=30.0, thermal_hz=30.0, rgb_size=(1920, 1080),
        rgb_topic="gimbal/rgb/image_raw", thermal_topic="gimbal/thermal/image_raw",
    ),
    "ground_robot": Platform(
        "ground_robot", rgb_hz=30.0, thermal_hz=9.0, rgb_size=(1280, 720),
        rgb_topic="front/rgb/image_raw", thermal_topic="front/thermal/image_raw",
    ),
}


def platform_params_file(platform: str) -> Path:
    """config/<platform>.yaml of a supported platform (from the checkout or the install)."""
    if platform not in PLATFORMS:
        raise ValueError(
            f"unknown platform {platform!r}: choose one of {', '.join(sorted(PLATFORMS))}, "
            "or pass your own parameter file"
        )
    return find_package_file("config", f"{platform}.yaml")
