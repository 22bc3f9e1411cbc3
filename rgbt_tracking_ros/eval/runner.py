"""Run a tracker over benchmark sequences and write result files that can be resumed.

Layout of an output folder (the result files are exactly what the toolkits read):

    <out>/<sequence>.txt             x,y,w,h per frame (frame 0 is the initial box)
    <out>/confidence/<sequence>.txt  one confidence per frame (1.0 on frame 0)
    <out>/time/<sequence>.txt        seconds per frame (initialize on frame 0, then track)

A sequence counts as finished when its result file exists with one row per frame. The result
file is written last and atomically (temporary file, then rename), and nothing of a sequence is
written before its last frame: a run stopped in the middle of a sequence leaves no trace of it,
and the next run starts that sequence again from frame 0. Restarting mid-sequence would need
the tracker's internal state (templates, memory), so the numbers would differ from an
uninterrupted run.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..data.datasets import Sequence
from ..data.results import read_rows, result_path, write_boxes
from ..defaults import TRACKER_POLICIES
from ..tracker.result import TrackResult


class Tracker(Protocol):
    def initialize(
        self, rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any], box_xywh: npt.NDArray[np.float64]
    ) -> None: ...

    def track(self, rgb: npt.NDArray[np.uint8], thermal: npt.NDArray[Any]) -> TrackResult: ...


@dataclass
class SequenceRun:
    name: str
    boxes: npt.NDArray[np.float64]
    confidences: npt.NDArray[np.float64]
    seconds: npt.NDArray[np.float64]
    skipped: bool = False

    @property
    def fps(self) -> float:
        tracked = self.seconds[1:]
        return float(len(tracked) / tracked.sum()) if len(tracked) and tracked.sum() > 0 else float("nan")


def make_tracker(
    model: str, checkpoint: str | None = None, device: str = "cpu", half: bool = False, policy: str = TRACKER_POLICIES[0]
) -> Tracker:
    """A registered model / YAML config with optional checkpoint, or a peer (`csrt-rgb`, `csrt-thermal`).

    `policy` is TrackerConfig.policy: "robust" (default) or "official", the papers' protocol
    (every prediction followed), for reproducing AINet's and DMTrack's benchmark numbers."""
    from .peers import PEERS, CsrtTracker

    if model in PEERS:
        return CsrtTracker(PEERS[model])
    from ..models.loading import load_model
    from ..tracker import RGBTTracker, TrackerConfig

    return RGBTTracker(load_model(model, checkpoint), TrackerConfig(device=device, half=half, policy=policy))


def is_finished(out_dir: str | os.PathLike[str], sequence: Sequence) -> bool:
    path = result_path(out_dir, sequence.name)
    if not path.is_file():
        return False
    try:
        return len(read_rows(path)) == len(sequence)
    except ValueError:
        return False


def track_sequence(tracker: Tracker, sequence: Sequence, on_frame: Callable[[], object] | None = None) -> SequenceRun:
    """Initialise on frame 0 with the first ground-truth box, then track every later frame."""
    count = len(sequence)
    boxes, confidences, seconds = np.zeros((count, 4)), np.ones(count), np.zeros(count)
    for index in range(count):
        rgb = sequence.rgb(index)
        thermal = rgb if sequence.single_modality else sequence.thermal(index)
        start = time.perf_counter()
        if index == 0:
            boxes[0] = sequence.init_box
            tracker.initialize(rgb, thermal, boxes[0])
        else:
            result = tracker.track(rgb, thermal)
            boxes[index], confidences[index] = result.box, result.confidence
        seconds[index] = time.perf_counter() - start
        if on_frame is not None:
            on_frame()
    return SequenceRun(sequence.name, boxes, confidences, seconds)


def _write_column(path: Path, values: npt.NDArray[np.float64], fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{value:{fmt}}\n" for value in values))


def save_run(out_dir: str | os.PathLike[str], run: SequenceRun) -> None:
    """Confidence and timing first, the result file last and atomically (it marks completion)."""
    out = Path(out_dir)
    _write_column(out / "confidence" / f"{run.name}.txt", run.confidences, ".4f")
    _write_column(out / "time" / f"{run.name}.txt", run.seconds, ".6f")
    final = result_path(out, run.name)
    partial = final.with_name(final.name + ".partial")
    write_boxes(partial, run.boxes)
    os.replace(partial, final)


def run_sequences(
    make: Callable[[], Tracker], sequences: Iterable[Sequence], out_dir: str | os.PathLike[str], progress: bool = True
) -> list[SequenceRun]:
    """Track every unfinished sequence into `out_dir` with one progress bar over all frames."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sequences = list(sequences)
    finished = {sequence.name for sequence in sequences if is_finished(out, sequence)}
    todo = [sequence for sequence in sequences if sequence.name not in finished]
    runs = [SequenceRun(name, np.empty((0, 4)), np.empty(0), np.empty(0), skipped=True) for name in sorted(finished)]
    if not todo:
        return runs
    tracker = make()
    with tqdm(total=sum(len(s) for s in todo), unit="frame", disable=not progress, dynamic_ncols=True) as bar:
        for sequence in todo:
            bar.set_postfix_str(sequence.name)
            run = track_sequence(tracker, sequence, bar.update)
            save_run(out, run)
            runs.append(run)
    return runs
