"""Two-camera recordings with a known stamp offset, for testing and measuring the estimator.

Frames are rendered (or interpolated) at each camera's *true* capture times and stamped with
the true time plus the camera's clock offset, so the offset the estimator should find is known
exactly. Two sources of images:

* ``PanningScene``: a continuous-time scene over one of scikit-image's photographs (the same
  images the synthetic training sequences use, read by path): a camera window panning and
  zooming with a speed that varies irregularly (a sum of sinusoids of incommensurate
  frequencies), a warm object crossing it, and a thermal image built from image structure
  (not the RGB in grey) with its own slightly different field of view and sensor noise;
  rendered exactly at any time t.
* ``InterpolatedVideo``: frames of a real sequence (e.g. /work/shared/data/*/img) played at a
  frame rate and linearly blended between neighbours at times between frames.

``sample_recording`` turns a source into the frames two cameras deliver; ``write_bag`` stores
them as a rosbag2 with the layout of `rgbt-track bag from-sequence` (topics, receive time =
stamp + a small delay), which `rgbt-track bag offset` reads.
"""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

_NS_PER_S = 1_000_000_000
START_NS = 1_700_000_000 * _NS_PER_S
_PATH_SECONDS = 130.0  # PanningScene renders 0 <= t <= this


@dataclass(frozen=True)
class CameraTiming:
    """One camera: rate (Hz), clock offset added to its stamps (s), uniform stamp jitter (s)."""

    rate: float
    offset: float = 0.0
    jitter: float = 0.0
    phase: float = 0.0  # first capture at this true time (s)


@dataclass(frozen=True)
class RecordedFrame:
    camera: str  # "rgb" or "thermal"
    stamp: int  # ns: true time + offset + jitter
    true_time: float  # s since the recording's start
    image: npt.NDArray[Any]  # RGB uint8 or thermal uint16


class PanningScene:
    """A scene over a photograph, rendered at any time t (s): RGB uint8 and thermal uint16."""

    def __init__(self, seed: int = 0, size: tuple[int, int] = (320, 240), background: str | None = None,
                 heat_image: str | None = None) -> None:
        from ..data.synthetic import load_image

        rng = np.random.default_rng(seed)
        names = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "brick", "grass", "page")
        background = background or names[seed % len(names)]
        heat_image = heat_image or names[(seed + 3) % len(names)]
        self.width, self.height = size
        photo = load_image(background).astype(np.float32) / 255
        # The scene is at least 1.6x the view, so the window can pan.
        zoom = max(1.6 * self.width / photo.shape[1], 1.6 * self.height / photo.shape[0])
        scene_size = (round(photo.shape[1] * zoom), round(photo.shape[0] * zoom))
        self.rgb_scene = cv2.resize(photo, scene_size, interpolation=cv2.INTER_CUBIC)
        grey = cv2.cvtColor(self.rgb_scene, cv2.COLOR_RGB2GRAY)
        other = cv2.cvtColor(load_image(heat_image).astype(np.float32) / 255, cv2.COLOR_RGB2GRAY)
        other = cv2.GaussianBlur(cv2.resize(other, scene_size, interpolation=cv2.INTER_AREA), (0, 0), 6)
        channel = cv2.GaussianBlur(self.rgb_scene[..., int(rng.integers(3))], (0, 0), 1.5)
        edges = cv2.GaussianBlur(np.hypot(cv2.Sobel(grey, -1, 1, 0), cv2.Sobel(grey, -1, 0, 1)), (0, 0), 2)
        heat = 0.7 * channel + 0.6 * other + 0.3 * edges
        heat = (heat - heat.mean()) / max(float(heat.std()), 1e-6)
        self.heat_scene = (25000 + 400 * heat).astype(np.float32)
        self.scene_w, self.scene_h = scene_size
        # Pan: velocity knots every 0.25 s (some at rest), linear in between and integrated,
        # folded back into the room the scene leaves: irregular speed like a hand-held or
        # vehicle camera, a few pixels a frame at 30 Hz.
        unit = self.width / 320
        room = np.array([self.scene_w - self.width * 1.15, self.scene_h - self.height * 1.15]) / 2
        self._room = np.maximum(room, 1.0)
        knots = rng.normal(0, 90 * unit, (int(_PATH_SECONDS / 0.25) + 2, 2))
        knots *= rng.random((len(knots), 1)) > 0.15
        fine = np.arange(0, _PATH_SECONDS + 0.5, 0.001)
        velocity = np.stack([np.interp(fine, np.arange(len(knots)) * 0.25, knots[:, i]) for i in range(2)], axis=1)
        self._path_times = fine
        self._path = np.cumsum(velocity, axis=0) * 0.001 + rng.uniform(-1, 1, 2) * self._room
        self._centre = np.array([self.scene_w, self.scene_h], np.float64) / 2
        self._zoom = (rng.uniform(0.03, 0.08), rng.uniform(0.1, 0.3), rng.uniform(0, 2 * math.pi))
        # A warm object: a disc wandering over the view.
        self._object_freq = rng.uniform(0.1, 0.6, (2, 3))
        self._object_phase = rng.uniform(0, 2 * math.pi, (2, 3))
        self._object_radius = 0.06 * min(size)
        self._object_colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        self._noise_seed = seed
        # The thermal camera sits beside the RGB one: a slightly different field of view.
        self.thermal_map = np.asarray(cv2.getRotationMatrix2D((self.width / 2, self.height / 2), rng.uniform(-1, 1),
                                                              rng.uniform(0.92, 0.98)), dtype=np.float64)
        self.thermal_map[:, 2] += rng.uniform(-6, 6, 2)

    def _view(self, t: float) -> npt.NDArray[np.float32]:
        """2x3 map from output pixels to scene pixels at time t."""
        if not 0 <= t <= _PATH_SECONDS:
            raise ValueError(f"the scene is defined for 0 <= t <= {_PATH_SECONDS} s, got {t}")
        offset = np.array([np.interp(t, self._path_times, self._path[:, i]) for i in range(2)])
        # Fold into [-room, room] (a triangle wave): the view bounces off the scene's edges.
        offset = self._room - np.abs(np.mod(offset + self._room, 4 * self._room) - 2 * self._room)
        centre = self._centre + offset
        amplitude, frequency, phase = self._zoom
        zoom = 1 + amplitude * math.sin(2 * math.pi * frequency * t + phase)
        origin = centre - np.array([self.width, self.height]) / (2 * zoom)
        return np.array([[1 / zoom, 0, origin[0]], [0, 1 / zoom, origin[1]]], np.float32)

    def _object_centre(self, t: float) -> tuple[float, float]:
        swing = np.sin(2 * math.pi * self._object_freq * t + self._object_phase).mean(axis=1)
        return (self.width * (0.5 + 0.35 * swing[0]), self.height * (0.5 + 0.35 * swing[1]))

    def render(self, t: float, camera: str) -> npt.NDArray[Any]:
        """The camera's image at true time t; noise differs per call (seeded by t and camera)."""
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        view = self._view(t)
        noise_rng = np.random.default_rng((self._noise_seed, round(t * 1e6), camera == "rgb"))
        cx, cy = self._object_centre(t)
        radius = max(1, round(self._object_radius))
        if camera == "rgb":
            image = np.asarray(cv2.warpAffine(self.rgb_scene, view, (self.width, self.height), flags=flags,
                                              borderMode=cv2.BORDER_REFLECT_101), dtype=np.float32)
            cv2.circle(image, (round(cx), round(cy)), radius, self._object_colour.tolist(), -1, cv2.LINE_AA)
            image = image + noise_rng.normal(0, 0.01, image.shape).astype(np.float32)
            return np.clip(image * 255, 0, 255).astype(np.uint8)
        drawn = cv2.warpAffine(self.heat_scene, view, (self.width, self.height), flags=flags,
                               borderMode=cv2.BORDER_REFLECT_101)
        cv2.circle(drawn, (round(cx), round(cy)), radius, 27000.0, -1, cv2.LINE_AA)
        drawn = cv2.warpAffine(drawn, self.thermal_map, (self.width, self.height), borderMode=cv2.BORDER_REPLICATE)
        heat = np.asarray(cv2.GaussianBlur(drawn, (5, 5), 0.8), dtype=np.float32)
        heat = heat + noise_rng.normal(0, 25, heat.shape).astype(np.float32)
        return np.clip(heat, 0, 65535).astype(np.uint16)


class InterpolatedVideo:
    """A real frame sequence played at `fps`; frames between two are linearly blended."""

    def __init__(self, frames: Sequence[npt.NDArray[np.uint8]], fps: float = 30.0) -> None:
        if len(frames) < 2:
            raise ValueError("a video needs at least two frames")
        self.frames, self.fps = frames, fps

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], fps: float = 30.0, limit: int | None = None,
                    size: tuple[int, int] | None = None) -> InterpolatedVideo:
        paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
        paths = paths[:limit] if limit else paths
        frames: list[npt.NDArray[np.uint8]] = []
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"cannot read {path}")
            if size is not None:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            frames.append(np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8))
        return cls(frames, fps)

    @property
    def duration(self) -> float:
        return (len(self.frames) - 1) / self.fps

    def render(self, t: float, camera: str) -> npt.NDArray[Any]:
        position = min(max(t * self.fps, 0.0), len(self.frames) - 1.0)
        index = min(int(position), len(self.frames) - 2)
        weight = position - index
        blended = np.asarray(cv2.addWeighted(self.frames[index], 1 - weight, self.frames[index + 1], weight, 0.0,
                                             dtype=cv2.CV_32F), dtype=np.float32)
        if camera == "rgb":
            rgb: npt.NDArray[np.uint8] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
            return rgb
        # A stand-in "thermal" camera: inverted luminance, lower resolution, 16-bit counts.
        grey = cv2.cvtColor(blended, cv2.COLOR_RGB2GRAY)
        small = np.asarray(cv2.resize(grey, (max(2, grey.shape[1] // 2), max(2, grey.shape[0] // 2)),
                                      interpolation=cv2.INTER_AREA), dtype=np.float32)
        return (20000 + 20 * (255 - small)).astype(np.uint16)


def sample_recording(render: Callable[[float, str], npt.NDArray[Any]], duration: float, rgb: CameraTiming,
                     thermal: CameraTiming, seed: int = 0) -> list[RecordedFrame]:
    """Both cameras' frames over [0, duration) s of true time, in stamp order."""
    rng = np.random.default_rng(seed)
    frames = []
    for camera, timing in (("rgb", rgb), ("thermal", thermal)):
        count = math.ceil((duration - timing.phase) * timing.rate)
        for i in range(max(count, 0)):
            true = timing.phase + i / timing.rate
            jitter = rng.uniform(-timing.jitter, timing.jitter) if timing.jitter else 0.0
            stamp = START_NS + round((true + timing.offset + jitter) * _NS_PER_S)
            frames.append(RecordedFrame(camera, stamp, true, render(true, camera)))
    frames.sort(key=lambda frame: (frame.stamp, frame.camera))
    return frames


def write_bag(frames: Sequence[RecordedFrame], out: str | os.PathLike[str], rgb_topic: str = "/rgb/image",
              thermal_topic: str = "/thermal/image", storage: str = "mcap", delay: float = 0.002,
              overwrite: bool = False) -> Path:
    """The frames as a rosbag2 (sensor_msgs/Image), receive time = stamp + delay."""
    from ..bags.messages import IMAGE, image_message, typestore
    from ..bags.write import _writer

    out = Path(out)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists (rosbag2 writes a new folder)")
        shutil.rmtree(out)
    store = typestore()
    with _writer(out, storage) as writer:
        conns = {"rgb": writer.add_connection(rgb_topic, IMAGE, typestore=store),
                 "thermal": writer.add_connection(thermal_topic, IMAGE, typestore=store)}
        frame_ids = {"rgb": "rgb_camera", "thermal": "thermal_camera"}
        for frame in sorted(frames, key=lambda f: f.stamp):
            msg = image_message(frame.image, frame.stamp, frame_ids[frame.camera])
            writer.write(conns[frame.camera], frame.stamp + round(delay * _NS_PER_S),
                         store.serialize_cdr(msg, msg.__msgtype__))
    return out
