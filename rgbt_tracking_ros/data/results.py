"""Box text files: ground truth and the per-sequence result files trackers publish.

One box per line, values separated by commas, spaces or tabs (all three occur in published
results). Rows of 8 values are the corner format some GTOT/RGBT234 results use
(x1 y1 x2 y1 x2 y2 x1 y2). Result files are named `<prefix><sequence>.txt`, as the toolkits
look them up.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

_SEPARATORS = re.compile(r"[,\s]+")


def read_rows(path: str | os.PathLike[str]) -> npt.NDArray[np.float64]:
    """All rows of a box file as float64 (N, 4) or (N, 8); blank lines are skipped, `nan` is kept.

    A row with another number of values is an error, as in the toolkits (which refuse the file)
    rather than a silent shift of every later frame.
    """
    rows: list[list[float]] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = [field for field in _SEPARATORS.split(line.strip()) if field]
        if not fields:
            continue
        try:
            values = [float(field) for field in fields]
        except ValueError as error:
            raise ValueError(f"{path}:{number}: not a number in {line.strip()!r}") from error
        if len(values) not in (4, 8) or (rows and len(values) != len(rows[0])):
            raise ValueError(f"{path}:{number}: expected 4 or 8 values per row, got {len(values)}")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no boxes")
    return np.array(rows, dtype=np.float64)


def corners_to_xywh(rows: npt.NDArray[np.float64], inclusive: bool) -> npt.NDArray[np.float64]:
    """(x1 y1 x2 y1 x2 y2 x1 y2) -> (x, y, w, h); `inclusive` counts both edge pixels (w = x2 - x1 + 1)."""
    extra = 1.0 if inclusive else 0.0
    return np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0] + extra, rows[:, 5] - rows[:, 1] + extra], 1)


def ltrb_to_xywh(rows: npt.NDArray[np.float64], inclusive: bool) -> npt.NDArray[np.float64]:
    """(left, top, right, bottom) -> (x, y, w, h), e.g. GTOT's ground truth."""
    extra = 1.0 if inclusive else 0.0
    return np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0] + extra, rows[:, 3] - rows[:, 1] + extra], 1)


def read_boxes(path: str | os.PathLike[str], inclusive_corners: bool = False) -> npt.NDArray[np.float64]:
    """(N, 4) x y w h boxes from a result or ground-truth file, converting corner rows.

    Corners are rounded to whole pixels before the conversion, as the toolkits read them (the
    metrics round x y w h boxes themselves), so round(x2) - round(x1) is the width.
    """
    rows = read_rows(path)
    return corners_to_xywh(np.round(rows), inclusive_corners) if rows.shape[1] == 8 else rows


def write_boxes(path: str | os.PathLike[str], boxes: Iterable[Iterable[float]]) -> None:
    """One comma-separated `x,y,w,h` line per box (what every toolkit reads); creates the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(f"{value:.2f}" for value in box) for box in np.asarray(list(boxes), dtype=np.float64)]
    Path(path).write_text("".join(line + "\n" for line in lines))


def result_path(folder: str | os.PathLike[str], sequence: str, prefix: str = "") -> Path:
    """Where the toolkits expect a tracker's result for one sequence."""
    return Path(folder) / f"{prefix}{sequence}.txt"


def guess_prefix(folder: str | os.PathLike[str], sequences: Iterable[str]) -> str:
    """The file-name prefix of a results folder: '' or '<tracker>_' (e.g. `TFNet_afterrain.txt`)."""
    folder = Path(folder)
    sequences = list(sequences)
    for prefix in ("", f"{folder.name}_"):
        if any(result_path(folder, name, prefix).is_file() for name in sequences):
            return prefix
    stems = [path.stem for path in folder.glob("*.txt")]
    for name in sequences:
        matches = [stem[: -len(name)] for stem in stems if stem.endswith(name) and stem[: -len(name)].endswith("_")]
        if len(matches) == 1:
            return matches[0]
    return ""


def read_results(
    folder: str | os.PathLike[str], sequences: Iterable[str], prefix: str | None = None, inclusive_corners: bool = False
) -> dict[str, npt.NDArray[np.float64]]:
    """{sequence: (N, 4) boxes} for a tracker's results folder; every sequence must have a file."""
    sequences = list(sequences)
    prefix = guess_prefix(folder, sequences) if prefix is None else prefix
    missing = [name for name in sequences if not result_path(folder, name, prefix).is_file()]
    if missing:
        shown = ", ".join(str(result_path(folder, name, prefix)) for name in missing[:3])
        raise FileNotFoundError(f"{len(missing)} of {len(sequences)} result files missing in {folder}: {shown}")
    return {name: read_boxes(result_path(folder, name, prefix), inclusive_corners) for name in sequences}


def _squashed(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def is_dataset_folder(name: str, dataset: str) -> bool:
    """Whether a folder name names the benchmark (`LasHeR`, `lasher_test`, `RGBT234`, `VTUAV-ST`),
    as in the usual `<tracker>/<dataset>/` layout of published raw results."""
    return dataset != "otb" and _squashed(name).startswith(_squashed(dataset))


def has_results(folder: str | os.PathLike[str], sequences: Iterable[str], prefix: str | None = None) -> bool:
    sequences = list(sequences)
    folder = Path(folder)
    if not folder.is_dir():
        return False
    prefix = guess_prefix(folder, sequences) if prefix is None else prefix
    return any(result_path(folder, name, prefix).is_file() for name in sequences)


def tracker_folder(
    spec: str, dataset: str, sequences: Iterable[str], prefix: str | None = None
) -> tuple[str, Path]:
    """(tracker name, results folder) of a command-line argument.

    `NAME=DIR` names the tracker. Otherwise a folder named after the benchmark (`BAT/LasHeR`)
    takes the name of the folder above it, and a tracker folder without result files but with
    one benchmark-named subfolder holding them (`BAT/` with `BAT/LasHeR/`) is read from there;
    any other folder is named by its base name.
    """
    sequences = list(sequences)
    name: str | None = None
    if "=" in spec and not Path(spec).exists():
        name, spec = spec.split("=", 1)
        if not name:
            raise ValueError(f"empty tracker name in {spec!r} (give NAME=DIR)")
    folder = Path(spec)
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder {folder}")
    if is_dataset_folder(folder.resolve().name, dataset):
        return name or folder.resolve().parent.name, folder
    if not has_results(folder, sequences, prefix):
        inner = [path for path in sorted(folder.iterdir())
                 if path.is_dir() and is_dataset_folder(path.name, dataset) and has_results(path, sequences, prefix)]
        if len(inner) == 1:
            return name or folder.resolve().name, inner[0]
    return name or folder.resolve().name, folder
