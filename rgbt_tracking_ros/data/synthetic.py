"""Synthetic RGB-T sequences made from real photographs, for training and evaluating trackers.

Images: scikit-image's sample images, which ship inside its wheel (`skimage/data/`). They are
read by path, never through `skimage.data`'s fetchers, so nothing is downloaded, and each is
read once per process. A sequence is a crop window moving and zooming over a background
photograph (camera motion), a target cut out of another image with a mask (the horse
silhouette or a procedural outline filled with a photo's texture, a coin, a face, the
scikit-image logo) and, with occlusion, an occluder cut from a third image.

Split: seeds below `EVAL_SEED_START` (1000) draw from `TRAIN_POOL`, the others from
`EVAL_POOL`; the two share no image (faces are split by index in `lfw_subset.npy`), so a
tracker trained on seeds < 1000 is evaluated on backgrounds and objects it has never seen.
`sequence_sources(seed)` names the images a seed uses.

    training:   backgrounds astronaut brick camera coffee grass motorcycle_left/right page rocket;
                textures astronaut coffee color motorcycle_left rocket brick; silhouette horse;
                cutouts coins; faces 0-79
    evaluation: backgrounds gravel hubble_deep_field ihc moon retina text;
                textures chelsea ihc retina gravel hubble_deep_field; cutout logo; faces 80-99

Thermal: the background's radiometric image is built from image structure (one colour channel
of the background, the smoothed luminance of another image, edge strength and a vertical
ramp), so it is not the RGB image in grey. Targets are a temperature relative to their
surroundings, warmer in their core, with a little texture; frames are uint16 counts around
20000-30000 with temporal noise, fixed-pattern noise, vignetting and slow drift.

Conditions (`CONDITIONS`), drawn from the seed or forced with `conditions=`: exactly one of
hot / cold / crossover (the target's temperature drifts through its surroundings', contrast
passing zero mid-sequence), and any of low_light (dark, noisy RGB), fog (RGB contrast much
reduced, thermal mildly), occlusion (an occluder passes over the target; the ground truth
stays the full target box), camera_motion, scale_change (target size changes by 1.4-1.8x
over the sequence) and misalignment (thermal shifted by 3-7 px and slightly scaled and rotated;
ground truth is in RGB pixels). Each aspect has its own random stream, so switching one
condition on or off leaves everything else in the sequence unchanged. Deterministic by seed.

Sizes, speeds and shifts in pixels are those at 320x240 (targets 20-70 px, moving a few pixels a
frame) and scale with the image, so a 640x480 sequence shows the same scene at twice the detail.
"""
from __future__ import annotations

import functools
import importlib.resources
import math
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from .results import write_boxes

# OpenCV's stubs type every image it returns as integer-or-float (cv2.typing.MatLike): the casts
# below restore the dtype OpenCV keeps (its input's, or the one asked for).

EVAL_SEED_START = 1000
POLARITIES = ("hot", "cold", "crossover")
CONDITIONS = (*POLARITIES, "low_light", "fog", "occlusion", "camera_motion", "scale_change", "misalignment")
_STREAMS = (
    "conditions", "sources", "object", "scale", "motion", "camera", "scene", "temperature", "occlusion",
    "misalignment", "light", "sensor", "noise",
)
_OBJECT_WEIGHTS = {"shape": 0.4, "silhouette": 0.2, "cutout": 0.2, "face": 0.2}


@dataclass
class SyntheticSequence:
    rgb: list[npt.NDArray[np.uint8]]  # (H, W, 3) uint8 frames, RGB order
    thermal: list[npt.NDArray[np.uint16]]  # (H, W) uint16 frames, like a radiometric camera
    boxes: npt.NDArray[np.float64]  # (N, 4) ground truth x, y, w, h in RGB pixels
    conditions: tuple[str, ...] = ()  # names from CONDITIONS active in the sequence


@dataclass(frozen=True)
class ImagePool:
    """The sample images one side of the train/evaluation split draws from."""

    backgrounds: tuple[str, ...]
    textures: tuple[str, ...]  # fill procedural outlines and silhouettes; cut into occluders
    silhouettes: tuple[str, ...]  # outlines without usable pixels of their own
    cutouts: tuple[str, ...]  # objects with their own outline and pixels
    faces: range  # indices into lfw_subset.npy, whose first 100 images are faces

    def names(self) -> set[str]:
        return {*self.backgrounds, *self.textures, *self.silhouettes, *self.cutouts, *map(_face_name, self.faces)}


TRAIN_POOL = ImagePool(
    backgrounds=("astronaut", "brick", "camera", "coffee", "grass", "motorcycle_left", "motorcycle_right", "page", "rocket"),
    textures=("astronaut", "coffee", "color", "motorcycle_left", "rocket", "brick"),
    silhouettes=("horse",),
    cutouts=("coins",),
    faces=range(0, 80),
)
EVAL_POOL = ImagePool(
    backgrounds=("gravel", "hubble_deep_field", "ihc", "moon", "retina", "text"),
    textures=("chelsea", "ihc", "retina", "gravel", "hubble_deep_field"),
    silhouettes=(),
    cutouts=("logo",),
    faces=range(80, 100),
)


def _face_name(index: int) -> str:
    return f"lfw_subset[{index}]"


def _face_index(name: str) -> int:
    return int(name.removeprefix("lfw_subset[").removesuffix("]"))


def _data_folder() -> Path:
    """scikit-image's bundled sample images; reading them by path never triggers a download."""
    try:
        return Path(str(importlib.resources.files("skimage") / "data"))
    except ModuleNotFoundError as error:
        raise RuntimeError("synthetic sequences need scikit-image: pip install 'scikit-image>=0.21'") from error


@functools.cache
def load_image(name: str) -> npt.NDArray[np.uint8]:
    """A sample image as read-only RGB uint8, long side at most 768 px; read once per process."""
    from PIL import Image  # a scikit-image dependency; unlike libpng via OpenCV it reads page.png silently

    folder = _data_folder()
    paths = [folder / f"{name}{suffix}" for suffix in (".png", ".jpg")]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no sample image {name!r} in {folder}")
    with Image.open(path) as file:
        image = np.array(file.convert("RGB"))
    scale = 768 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    image.flags.writeable = False
    return image


@functools.cache
def _faces() -> npt.NDArray[np.float32]:
    faces: npt.NDArray[np.float32] = np.load(_data_folder() / "lfw_subset.npy")[:100].astype(np.float32)
    faces.flags.writeable = False
    return faces


def _binary_outline(name: str) -> npt.NDArray[np.uint8]:
    """Foreground pixels of an image that holds whole objects (uint8 0/255)."""
    image = load_image(name)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if name == "coins":  # bright coins on a background whose brightness varies: threshold locally
        return cast(npt.NDArray[np.uint8], cv2.adaptiveThreshold(
            cv2.GaussianBlur(grey, (5, 5), 0), 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 71, -10
        ))
    if name == "logo":  # two halves split by a line inside a white margin: their convex hull
        hull = cv2.convexHull(cv2.findNonZero(((image.min(axis=2) < 235) * 255).astype(np.uint8)))
        return cast(npt.NDArray[np.uint8], cv2.fillConvexPoly(np.zeros_like(grey), hull, 255))
    return ((grey < 128) * 255).astype(np.uint8)  # a dark silhouette on white (horse)


@functools.cache
def _outlined_objects(name: str) -> tuple[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]], ...]:
    """(RGB uint8 patch, uint8 mask) of every sizeable object in an image, holes filled."""
    binary = _binary_outline(name)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    objects = []
    for contour in sorted(contours, key=lambda c: tuple(cv2.boundingRect(c)[:2])):
        if cv2.contourArea(contour) < 800:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        mask = cast(npt.NDArray[np.uint8], cv2.drawContours(np.zeros((h, w), np.uint8), [contour - (x, y)], -1, 255,
                                                             cv2.FILLED))
        objects.append((load_image(name)[y : y + h, x : x + w], mask))
    return tuple(objects)


@dataclass(frozen=True)
class _Plan:
    """What a seed renders: its conditions and the source images of each part."""

    conditions: tuple[str, ...]
    background: str
    heat_image: str  # its smoothed luminance shapes the thermal background
    object_kind: str
    object_source: str  # the texture, silhouette, cutout or face image
    texture: str | None  # fills a procedural outline or a silhouette
    occluder: str | None

    @property
    def sources(self) -> tuple[str, ...]:
        names = (self.background, self.heat_image, self.object_source, self.texture, self.occluder)
        return tuple(dict.fromkeys(name for name in names if name is not None))


def _stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per aspect, so forcing one condition leaves the rest as drawn."""
    return np.random.default_rng([seed, _STREAMS.index(name)])


def _check_conditions(conditions: Collection[str]) -> set[str]:
    chosen = set(conditions)
    unknown = chosen - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}; choose from {', '.join(CONDITIONS)}")
    if len(chosen & set(POLARITIES)) > 1:
        raise ValueError(f"at most one of {', '.join(POLARITIES)}")
    return chosen


def _draw_conditions(seed: int, forced: Collection[str] | None) -> tuple[str, ...]:
    """Hot targets are the most common, as people and vehicles are in real RGB-T data; a forced set
    is used as given, with the polarity drawn when it names none."""
    rng = _stream(seed, "conditions")
    polarity = POLARITIES[rng.choice(3, p=(0.6, 0.2, 0.2))]
    rgb_degradation = (None, "low_light", "fog")[rng.choice(3, p=(0.7, 0.15, 0.15))]
    extras = {name for name, p in (("occlusion", 0.25), ("camera_motion", 0.5), ("scale_change", 0.35),
                                   ("misalignment", 0.4)) if rng.random() < p}
    if forced is None:
        chosen = {polarity, *extras} | ({rgb_degradation} if rgb_degradation else set())
    else:
        chosen = _check_conditions(forced)
        if not chosen & set(POLARITIES):
            chosen.add(polarity)
    return tuple(name for name in CONDITIONS if name in chosen)


def _plan(seed: int, conditions: Collection[str] | None) -> _Plan:
    pool = EVAL_POOL if seed >= EVAL_SEED_START else TRAIN_POOL
    rng = _stream(seed, "sources")
    background = str(rng.choice(pool.backgrounds))
    others = [name for name in pool.backgrounds + pool.textures if name != background]
    heat_image = str(rng.choice(others))
    texture = str(rng.choice([name for name in pool.textures if name != background]))
    occluder = str(rng.choice([name for name in others if name != texture]))
    options = (pool.textures, pool.silhouettes, pool.cutouts, pool.faces)
    kinds = [kind for kind, available in zip(_OBJECT_WEIGHTS, options) if len(available)]
    weights = np.array([_OBJECT_WEIGHTS[kind] for kind in kinds])
    kind = str(rng.choice(kinds, p=weights / weights.sum()))
    silhouette = str(rng.choice(pool.silhouettes)) if pool.silhouettes else None
    cutout = str(rng.choice(pool.cutouts))
    face = _face_name(int(rng.choice(pool.faces)))
    source = {"shape": texture, "silhouette": silhouette, "cutout": cutout, "face": face}[kind]
    assert source is not None, "a kind with no image in the pool is never drawn"
    chosen = _draw_conditions(seed, conditions)
    return _Plan(
        chosen,
        background,
        heat_image,
        kind,
        source,
        texture if kind in ("shape", "silhouette") else None,
        occluder if "occlusion" in chosen else None,
    )


def sequence_sources(seed: int, conditions: Collection[str] | None = None) -> tuple[str, ...]:
    """Names of the sample images a seed's sequence is made from (faces as `lfw_subset[i]`)."""
    return _plan(seed, conditions).sources


@dataclass
class _Sprite:
    """An object to paste: colour and coverage, and the thermal pattern it is rendered with."""

    colour_mask: npt.NDArray[np.float32]  # (h, w, 4) float32: RGB 0..1 and coverage 0..1
    warmth: npt.NDArray[np.float32]  # (h, w) float32: 1 in the core, lower towards the outline
    texture: npt.NDArray[np.float32]  # (h, w) float32: luminance minus its mean, a weak thermal texture

    @property
    def aspect(self) -> float:
        return float(self.colour_mask.shape[1] / self.colour_mask.shape[0])

    def resized(self, longest: float) -> _Sprite:
        """Resampled once to about the largest size it is drawn at, so per-frame warps stay sharp."""
        height, width = self.colour_mask.shape[:2]
        scale = longest / max(height, width)
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        return _Sprite(*(cast(npt.NDArray[np.float32],
                              np.ascontiguousarray(cv2.resize(a, size, interpolation=interpolation)))
                         for a in (self.colour_mask, self.warmth, self.texture)))


def _texture_patch(
    rng: np.random.Generator, name: str, height: int, width: int
) -> npt.NDArray[np.floating[Any]]:
    """A random crop of a photograph resized to (height, width), float32 RGB 0..1."""
    image = load_image(name)
    side = rng.uniform(0.2, 0.5) * min(image.shape[:2])
    crop_h = int(min(image.shape[0], side * math.sqrt(height / width)))
    crop_w = int(min(image.shape[1], side * math.sqrt(width / height)))
    y = int(rng.integers(0, image.shape[0] - crop_h + 1))
    x = int(rng.integers(0, image.shape[1] - crop_w + 1))
    patch = cv2.resize(image[y : y + crop_h, x : x + crop_w], (width, height), interpolation=cv2.INTER_AREA)
    return patch.astype(np.float32) / 255


def _outline_mask(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    """An antialiased lumpy superellipse: from an ellipse to a rounded box, float32 0..1."""
    y, x = np.mgrid[-1 : 1 : complex(height), -1 : 1 : complex(width)].astype(np.float32)
    power = rng.uniform(2.0, 5.0)
    angle = np.arctan2(y, x)
    radius = 0.92 + sum(rng.uniform(0, 0.05) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    norm = (np.abs(x) ** power + np.abs(y) ** power) ** (1 / power)
    mask: npt.NDArray[np.float32] = np.clip((radius - norm) * min(height, width) / 2 + 0.5, 0, 1).astype(np.float32)
    return mask


def _sprite(colour: npt.NDArray[np.floating[Any]], mask: npt.NDArray[np.floating[Any]]) -> _Sprite:
    """Crop to the mask and derive the thermal pattern: warmest in the core, as bodies and engines are."""
    rows, cols = np.nonzero(mask > 0.02)
    colour = colour[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    mask = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    core = cv2.GaussianBlur(mask, (0, 0), 0.15 * max(mask.shape))
    warmth = 0.7 + 0.3 * core / max(float(core.max()), 1e-6)
    luminance = colour.mean(axis=2)
    texture = luminance - float(luminance[mask > 0.5].mean())
    return _Sprite(np.dstack([colour, mask]).astype(np.float32), warmth.astype(np.float32), texture.astype(np.float32))


def _make_object(plan: _Plan, rng: np.random.Generator) -> _Sprite:
    """The target as drawn for its seed: a patch of a real image with a mask."""
    colour: npt.NDArray[np.floating[Any]]
    mask: npt.NDArray[np.floating[Any]]
    if plan.object_kind == "shape":
        assert plan.texture is not None, "_plan gives shapes a texture"
        height, width = 120, int(120 * math.exp(rng.uniform(-0.5, 0.5)))
        colour, mask = _texture_patch(rng, plan.texture, height, width), _outline_mask(rng, height, width)
    elif plan.object_kind == "face":
        face = cv2.resize(_faces()[_face_index(plan.object_source)], (100, 100), interpolation=cv2.INTER_CUBIC)
        tint = rng.uniform((0.9, 0.7, 0.55), (1.0, 0.85, 0.75)).astype(np.float32)
        colour = np.clip(face, 0, 1)[..., None] * tint
        mask = cast(npt.NDArray[np.float32], cv2.ellipse(np.zeros((100, 100), np.float32), (50, 50), (42, 50), 0, 0,
                                                           360, 1.0, cv2.FILLED))
    else:
        objects = _outlined_objects(plan.object_source)
        patch, outline = objects[int(rng.integers(len(objects)))]
        mask = outline.astype(np.float32) / 255
        if plan.object_kind == "silhouette":
            assert plan.texture is not None, "_plan gives silhouettes a texture"
            colour = _texture_patch(rng, plan.texture, *mask.shape)
        else:
            colour = patch.astype(np.float32) / 255
            if plan.object_source == "coins":  # grey coins: copper, brass or silver
                colour = colour * rng.uniform((0.8, 0.6, 0.4), (1.0, 0.95, 0.9)).astype(np.float32)
    if rng.random() < 0.5:
        colour, mask = colour[:, ::-1], mask[:, ::-1]
    colour, mask = _stretched(rng, np.ascontiguousarray(colour), np.ascontiguousarray(mask))
    return _sprite(colour, mask)


def _stretched(
    rng: np.random.Generator, colour: npt.NDArray[np.floating[Any]], mask: npt.NDArray[np.floating[Any]]
) -> tuple[npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]:
    """Most real targets are far from square (people, masts, cars, aircraft): widen or narrow
    the object by up to 2.5x so box shapes cover that range."""
    if rng.random() < 0.3:
        return colour, mask
    factor = math.exp(rng.uniform(-0.9, 0.9))
    height, width = mask.shape
    size = (max(2, round(width * factor)), height)
    resized = [cast(npt.NDArray[np.floating[Any]], cv2.resize(image, size, interpolation=cv2.INTER_AREA))
               for image in (colour, mask)]
    return resized[0], resized[1]


def _pixel_scale(height: int, width: int) -> float:
    """Image size relative to 320x240, the size at which sizes and speeds are given in pixels."""
    return min(height / 240, width / 320)


def _sizes(
    rng: np.random.Generator, frames: int, aspect: float, target_size: tuple[int, int] | None, scale_change: bool,
    unit: float,
) -> npt.NDArray[np.float64]:
    """(N, 2) drawn width and height per frame: a steady growth or shrink by 1.4-1.8x with
    scale_change (kept within 20-70 px at 320x240 when the size is drawn), else a slight breathing."""
    smallest, largest = 20 * unit, 70 * unit
    longest = rng.uniform(26, 56) * unit
    if target_size is None:
        base = np.array([longest, longest / aspect]) if aspect >= 1 else np.array([longest * aspect, longest])
    else:
        base = np.asarray(target_size, np.float64)
    ratio = rng.uniform(1.4, 1.8)
    phase = 2 * np.pi * np.arange(frames) / rng.uniform(20, 40) + rng.uniform(0, 2 * np.pi)
    breathing = 0.03 * (np.sin(phase) - np.sin(phase[0]))
    if not scale_change:
        breathing_sizes: npt.NDArray[np.float64] = base * (1 + breathing)[:, None]
        return breathing_sizes
    size = max(base)
    can_grow, can_shrink = size * 1.4 <= largest, size / 1.4 >= smallest
    grow = can_grow and (not can_shrink or rng.random() < 0.5)
    ratio = min(ratio, largest / size) if grow else 1 / min(ratio, size / smallest)
    progress = np.arange(frames) / max(frames - 1, 1)
    sizes: npt.NDArray[np.float64] = base * (ratio**progress)[:, None]
    return sizes


def _trajectory(
    rng: np.random.Generator, sizes: npt.NDArray[np.float64], height: int, width: int
) -> npt.NDArray[np.float64]:
    """(N, 4) drawn rectangles: a smooth random walk of the centre that bounces off the border."""
    limit = np.array([width, height], np.float64)
    low, high = sizes[0] / 2 + 2, np.maximum(sizes[0] / 2 + 2, limit - sizes[0] / 2 - 2)
    centre = rng.uniform(low, high)
    unit = _pixel_scale(height, width)
    velocity = rng.normal(0.0, 3.0 * unit, 2)
    rects = []
    for size in sizes:
        velocity = 0.9 * velocity + rng.normal(0.0, unit, 2)
        centre = centre + velocity
        low, high = size / 2 + 2, np.maximum(size / 2 + 2, limit - size / 2 - 2)
        outside = (centre < low) | (centre > high)
        velocity[outside] = -velocity[outside]
        centre = np.clip(centre, low, high)
        rects.append([*(centre - size / 2), *size])
    return np.array(rects)


@dataclass
class _Scene:
    """The background photograph and its thermal image, at the scale the camera sees them."""

    rgb: npt.NDArray[np.floating[Any]]  # (h, w, 3) float32 0..1
    heat: npt.NDArray[np.float32]  # (h, w) float32 counts
    mean_heat: float
    heat_spread: float  # standard deviation of the background's counts


def _make_scene(plan: _Plan, rng: np.random.Generator, zoom: float) -> _Scene:
    """Thermal counts from structure, not brightness alone: one colour channel (materials differ
    in the infrared), another image's smoothed luminance (shade, moisture), edges and a ramp."""
    return scene_from_images(load_image(plan.background), load_image(plan.heat_image), rng, zoom)


def scene_from_images(
    image: npt.NDArray[np.uint8], heat_image: npt.NDArray[np.uint8], rng: np.random.Generator, zoom: float
) -> _Scene:
    """The scene of an RGB uint8 photograph at `zoom`, its thermal image shaped also by another
    photograph's smoothed luminance (see _make_scene)."""
    size = (max(2, round(image.shape[1] * zoom)), max(2, round(image.shape[0] * zoom)))
    interpolation = cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(image, size, interpolation=interpolation).astype(np.float32) / 255
    channel = cv2.GaussianBlur(rgb[..., int(rng.integers(3))], (0, 0), 1.5)
    grey = cv2.cvtColor(heat_image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    other = cv2.GaussianBlur(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), (0, 0), 8)
    edges = cv2.GaussianBlur(np.hypot(cv2.Sobel(channel, -1, 1, 0), cv2.Sobel(channel, -1, 0, 1)), (0, 0), 2)
    ramp = np.linspace(-0.5, 0.5, size[1], dtype=np.float32)[:, None]
    weights = rng.uniform((0.5, 0.3, 0.1, -0.4), (1.0, 0.8, 0.4, 0.4)) * (rng.choice((-1, 1)), 1, 1, 1)
    parts: tuple[npt.NDArray[Any], ...] = (channel, other, edges, ramp)
    heat = cast(npt.NDArray[np.floating[Any]], sum(w * (part - part.mean()) for w, part in zip(weights, parts)))
    heat = heat / max(float(np.std(heat)), 1e-6)
    mean, spread = rng.uniform(22000, 27000), rng.uniform(250, 600)
    return _Scene(rgb, (mean + spread * heat).astype(np.float32), mean, spread)


def _camera_path(
    rng: np.random.Generator, frames: int, scene_shape: tuple[int, int], height: int, width: int, moving: bool
) -> list[npt.NDArray[np.float32]]:
    """Per frame, the affine map from output pixels to scene pixels: a window panning and zooming
    smoothly over the scene with camera motion, else fixed."""
    scene = np.array(scene_shape[::-1], np.float64)
    centre = rng.uniform(0.3, 0.7, 2) * scene
    unit = _pixel_scale(height, width)
    velocity = rng.normal(0, 1.5 * unit, 2)
    zoom_end = math.exp(rng.uniform(-0.2, 0.2))
    matrices = []
    for index in range(frames):
        zoom = zoom_end ** (index / max(frames - 1, 1)) if moving else 1.0
        half = np.array([width, height]) / (2 * zoom)
        if moving:
            velocity = 0.95 * velocity + rng.normal(0, 0.3 * unit, 2)
            centre = centre + velocity
        low, high = half, np.maximum(half, scene - half)
        velocity[(centre < low) | (centre > high)] *= -1
        centre = np.clip(centre, low, high)
        origin = centre - half
        matrices.append(np.array([[1 / zoom, 0, origin[0]], [0, 1 / zoom, origin[1]]], np.float32))
    return matrices


def _camera_view(
    scene: _Scene, view: npt.NDArray[np.float32], height: int, width: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The scene's RGB (0..1) and heat (counts) in the camera window of one `_camera_path` map, float32."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rgb, heat = (cast(npt.NDArray[np.float32], cv2.warpAffine(image, view, (width, height), flags=flags,
                                                                borderMode=cv2.BORDER_REFLECT_101))
                 for image in (scene.rgb, scene.heat))
    return rgb, heat


def _scene_zoom(plan: _Plan, rng: np.random.Generator, height: int, width: int) -> float:
    """Scale of the background so the camera window covers 45-80% of it, leaving room to pan."""
    image_h, image_w = load_image(plan.background).shape[:2]
    cover = rng.uniform(0.45, 0.8)
    return float(max(width / (cover * image_w), height / (cover * image_h)))


def _temperature_contrast(
    rng: np.random.Generator, frames: int, conditions: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    """Target minus surroundings in counts per frame: hot and cold wander by +-25%, crossover
    goes linearly from one sign to the other, through zero mid-sequence."""
    magnitude = rng.uniform(1500, 4000)
    progress = np.arange(frames) / max(frames - 1, 1)
    wander: npt.NDArray[np.float64] = 1 + 0.25 * np.sin(
        2 * np.pi * progress * rng.uniform(0.5, 1.5) + rng.uniform(0, 2 * np.pi)
    )
    direction = rng.choice((-1.0, 1.0))
    if "crossover" in conditions:
        crossing: npt.NDArray[np.float64] = direction * magnitude * (1 - 2 * progress)
        return crossing
    return (-1.0 if "cold" in conditions else 1.0) * magnitude * wander


def _paste(
    rgb: npt.NDArray[np.float32], heat: npt.NDArray[np.float32], sprite: _Sprite, rect: npt.NDArray[np.float64],
    base_heat: float, contrast: float, texture_amplitude: float,
) -> npt.NDArray[np.float64] | None:
    """Draw a sprite into a rectangle of both images in place; returns the tight x, y, w, h of its
    coverage >= 0.5 (None when nothing of it lands in the frame)."""
    x, y, w, h = rect
    frame_h, frame_w = heat.shape
    x0, y0 = max(0, math.floor(x) - 1), max(0, math.floor(y) - 1)
    x1, y1 = min(frame_w, math.ceil(x + w) + 1), min(frame_h, math.ceil(y + h) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    sprite_h, sprite_w = sprite.warmth.shape
    sx, sy = w / sprite_w, h / sprite_h
    # Pixel centres: sprite pixel i + 0.5 maps to x + (i + 0.5) * sx in frame coordinates.
    matrix = np.array([[sx, 0, x - x0 + 0.5 * sx - 0.5], [0, sy, y - y0 + 0.5 * sy - 0.5]], np.float32)
    size = (x1 - x0, y1 - y0)
    colour_mask = cv2.warpAffine(sprite.colour_mask, matrix, size, flags=cv2.INTER_LINEAR)
    sprite_heat = cv2.warpAffine(contrast * sprite.warmth + texture_amplitude * sprite.texture, matrix, size)
    cover = colour_mask[..., 3]
    region = rgb[y0:y1, x0:x1]
    region += (colour_mask[..., :3] - region) * cover[..., None]
    heat_region = heat[y0:y1, x0:x1]
    heat_region += (base_heat + sprite_heat - heat_region) * cover
    rows, cols = np.nonzero((cover >= 0.5).any(axis=1))[0], np.nonzero((cover >= 0.5).any(axis=0))[0]
    if not len(rows):
        return None
    return np.array([x0 + cols[0], y0 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], np.float64)


def _surroundings(heat: npt.NDArray[np.float32], rect: npt.NDArray[np.float64]) -> float:
    """Mean counts in the rectangle grown by half its size: the local background temperature."""
    x, y, w, h = rect
    x0, y0 = max(0, int(x - w / 2)), max(0, int(y - h / 2))
    x1, y1 = min(heat.shape[1], int(x + 1.5 * w) + 1), min(heat.shape[0], int(y + 1.5 * h) + 1)
    return float(heat[y0:y1, x0:x1].mean())


@dataclass
class _Occluder:
    sprite: _Sprite
    rects: npt.NDArray[np.float64]  # (N, 4) drawn rectangles
    heat: float  # its own temperature in counts


def _make_occluder(
    plan: _Plan, rng: np.random.Generator, rects: npt.NDArray[np.float64], scene: _Scene
) -> _Occluder:
    """A board or blob cut from another photograph, crossing the target's position at a random
    moment at constant velocity, covering it for roughly a quarter of the sequence."""
    frames = len(rects)
    size = rects[0, 2:] * rng.uniform(1.1, 1.6, 2)
    height, width = 120, max(2, int(120 * size[0] / size[1]))
    assert plan.occluder is not None, "_plan names an occluder with occlusion"
    sprite = _sprite(_texture_patch(rng, plan.occluder, height, width), _outline_mask(rng, height, width))
    sprite = sprite.resized(max(size) * 1.2)
    crossing = int(rng.integers(int(0.3 * frames), max(int(0.3 * frames) + 1, int(0.7 * frames))))
    angle = rng.uniform(0, 2 * np.pi)
    speed = (size.max() + rects[crossing, 2:].max()) / max(0.25 * frames, 4)
    centre = rects[crossing, :2] + rects[crossing, 2:] / 2
    offsets = (np.arange(frames) - crossing)[:, None] * speed * np.array([math.cos(angle), math.sin(angle)])
    occluder_rects = np.hstack([centre + offsets - size / 2, np.tile(size, (frames, 1))])
    return _Occluder(sprite, occluder_rects, scene.mean_heat + rng.uniform(-1.5, 1.5) * scene.heat_spread)


@dataclass
class _RgbCamera:
    gain: float
    noise: float  # standard deviation, 0..1 units
    fog: float  # fraction of airlight mixed in at the top of the frame
    airlight: npt.NDArray[np.float32]  # (3,) fog colour

    @classmethod
    def draw(cls, rng: np.random.Generator, conditions: tuple[str, ...]) -> _RgbCamera:
        gain, low_gain, noise, low_noise = rng.uniform((0.85, 0.1, 0.006, 0.03), (1.1, 0.22, 0.012, 0.05))
        fog, airlight = rng.uniform(0.55, 0.75), rng.uniform(0.7, 0.9) * rng.uniform(0.95, 1.05, 3)
        low_light = "low_light" in conditions
        return cls(
            low_gain if low_light else gain,
            low_noise if low_light else noise,
            fog if "fog" in conditions else 0.0,
            airlight.astype(np.float32),
        )

    def capture(self, image: npt.NDArray[np.floating[Any]], noise: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
        """Fog (thicker towards the top, i.e. further away), exposure and sensor noise, to 8 bits;
        `noise` is standard normal."""
        if self.fog:
            density = self.fog * np.linspace(1.0, 0.8, image.shape[0], dtype=np.float32)[:, None, None]
            image = image * (1 - density) + self.airlight * density
        return cast(npt.NDArray[np.uint8], cv2.addWeighted(image, 255 * self.gain, noise, 255 * self.noise, 0.0,
                                                          dtype=cv2.CV_8U))


@dataclass
class _ThermalCamera:
    fixed_pattern: npt.NDArray[np.float32]  # (H, W) counts: column and pixel offsets and vignetting
    noise: float  # temporal noise, counts
    drift: npt.NDArray[np.float64]  # (N,) slow global offset, counts
    alignment: npt.NDArray[np.float32] | None  # 2x3 map from RGB pixels to thermal pixels
    fog_contrast: float  # thermal contrast kept through fog
    mean_heat: float

    @classmethod
    def draw(
        cls, rng: np.random.Generator, frames: int, height: int, width: int, conditions: tuple[str, ...],
        mean_heat: float, alignment: npt.NDArray[np.float32],
    ) -> _ThermalCamera:
        columns = rng.normal(0, 12, (1, width))
        pixels = rng.normal(0, 6, (height, width))
        y, x = np.mgrid[-1 : 1 : complex(height), -1 : 1 : complex(width)]
        vignette = -rng.uniform(100, 300) * (x**2 + y**2) / 2
        drift = rng.uniform(0, 150) * np.sin(np.arange(frames) / rng.uniform(15, 40) + rng.uniform(0, 2 * np.pi))
        return cls(
            (columns + pixels + vignette).astype(np.float32),
            rng.uniform(15, 35),
            drift,
            alignment if "misalignment" in conditions else None,
            rng.uniform(0.8, 0.9) if "fog" in conditions else 1.0,
            mean_heat,
        )

    def capture(
        self, heat: npt.NDArray[np.float32], index: int, noise: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.uint16]:
        """Optics blur, the offset between the cameras, fog, sensor noise (`noise` is standard
        normal), 16-bit counts."""
        blurred = cv2.GaussianBlur(heat, (5, 5), 0.8)
        if self.alignment is not None:
            blurred = cv2.warpAffine(blurred, self.alignment, blurred.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
        offset = self.mean_heat * (1 - self.fog_contrast) + self.drift[index]
        counts = cv2.addWeighted(blurred, self.fog_contrast, noise, self.noise, offset) + self.fixed_pattern
        frame: npt.NDArray[np.uint16] = (np.clip(counts, 0, 65535) + 0.5).astype(np.uint16)
        return frame


class _NoiseBank:
    """Standard normal noise drawn once per sequence and read at a random offset each frame:
    several times cheaper than fresh noise per frame, and as unstructured to a tracker."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...], margin: int = 32):
        self.field = rng.standard_normal((shape[0] + margin, shape[1] + margin, *shape[2:]), dtype=np.float32)
        self.shape, self.margin = shape, margin

    def sample(self, rng: np.random.Generator) -> npt.NDArray[np.float32]:
        dy, dx = rng.integers(0, self.margin, 2)
        return self.field[dy : dy + self.shape[0], dx : dx + self.shape[1]]


def _misalignment(rng: np.random.Generator, height: int, width: int) -> npt.NDArray[np.float32]:
    """RGB-to-thermal pixel map of two cameras side by side: a 3-7 px shift (at 320x240), +-3%
    scale, +-1 degree."""
    shift = rng.uniform(3, 7) * _pixel_scale(height, width) * np.array([math.cos(a := rng.uniform(0, 2 * np.pi)), math.sin(a)])
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-1, 1), rng.uniform(0.97, 1.03))
    matrix = cast(npt.NDArray[np.float64], rotation)
    matrix[:, 2] += shift
    return matrix.astype(np.float32)


def make_sequence(
    seed: int,
    frames: int = 30,
    height: int = 240,
    width: int = 320,
    target_size: tuple[int, int] | None = None,
    conditions: Collection[str] | None = None,
) -> SyntheticSequence:
    """A sequence for a seed; `target_size` fixes the first frame's drawn (w, h), `conditions`
    forces the set of conditions (a polarity is drawn if it names none of hot/cold/crossover)."""
    if frames < 1:
        raise ValueError(f"a sequence needs at least one frame, got {frames}")
    plan = _plan(seed, conditions)
    active = plan.conditions
    target = _make_object(plan, _stream(seed, "object"))
    unit = _pixel_scale(height, width)
    sizes = _sizes(_stream(seed, "scale"), frames, target.aspect, target_size, "scale_change" in active, unit)
    target = target.resized(1.5 * sizes.max())
    rects = _trajectory(_stream(seed, "motion"), sizes, height, width)
    camera_rng = _stream(seed, "camera")
    scene = _make_scene(plan, _stream(seed, "scene"), _scene_zoom(plan, camera_rng, height, width))
    views = _camera_path(camera_rng, frames, scene.heat.shape, height, width, "camera_motion" in active)
    temperature_rng = _stream(seed, "temperature")
    contrast = _temperature_contrast(temperature_rng, frames, active)
    texture_amplitude = temperature_rng.uniform(150, 400)
    occluder = _make_occluder(plan, _stream(seed, "occlusion"), rects, scene) if "occlusion" in active else None
    rgb_camera = _RgbCamera.draw(_stream(seed, "light"), active)
    thermal_camera = _ThermalCamera.draw(
        _stream(seed, "sensor"), frames, height, width, active, scene.mean_heat,
        _misalignment(_stream(seed, "misalignment"), height, width),
    )
    noise_rng = _stream(seed, "noise")
    rgb_noise, thermal_noise = _NoiseBank(noise_rng, (height, width, 3)), _NoiseBank(noise_rng, (height, width))
    rgb_frames, thermal_frames, boxes = [], [], []
    for index, (view, rect) in enumerate(zip(views, rects)):
        rgb, heat = _camera_view(scene, view, height, width)
        box = _paste(rgb, heat, target, rect, _surroundings(heat, rect), contrast[index], texture_amplitude)
        boxes.append(rect if box is None else box)
        if occluder is not None:
            _paste(rgb, heat, occluder.sprite, occluder.rects[index], occluder.heat, 0.0, texture_amplitude)
        rgb_frames.append(rgb_camera.capture(rgb, rgb_noise.sample(noise_rng)))
        thermal_frames.append(thermal_camera.capture(heat, index, thermal_noise.sample(noise_rng)))
    return SyntheticSequence(rgb_frames, thermal_frames, np.array(boxes, np.float64).reshape(-1, 4), active)


def _write_jpg(path: Path, image: cv2.typing.MatLike) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"cannot write {path}")


def seed_range(text: str) -> range:
    """`FIRST-LAST` (inclusive) or one seed."""
    first, _, last = text.partition("-")
    start = int(first)
    stop = int(last) if last else start
    if stop < start:
        raise ValueError(f"empty seed range {text!r}")
    return range(start, stop + 1)


def write_sequence(sequence: SyntheticSequence, folder: str | os.PathLike[str]) -> Path:
    """Write a sequence in the LasHeR layout: `visible/` and `infrared/` with 000001.jpg..., the
    thermal stretched to 8-bit grey over the sequence's 0.5-99.5 percentiles and saved with three
    channels as LasHeR's are; `visible.txt`, `infrared.txt` and `init.txt` all hold the RGB-pixel
    ground truth."""
    folder = Path(folder)
    for name in ("visible", "infrared"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    low, high = np.percentile(np.stack(sequence.thermal)[:, ::4, ::4], (0.5, 99.5))
    scale = 255 / max(float(high - low), 1.0)
    for number, (rgb, thermal) in enumerate(zip(sequence.rgb, sequence.thermal), start=1):
        _write_jpg(folder / "visible" / f"{number:06d}.jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        grey = np.clip((thermal.astype(np.float32) - low) * scale, 0, 255).astype(np.uint8)
        _write_jpg(folder / "infrared" / f"{number:06d}.jpg", cv2.merge([grey, grey, grey]))
    for name in ("visible.txt", "infrared.txt", "init.txt"):
        write_boxes(folder / name, sequence.boxes)
    return folder
