"""Sequences cut to start at several frames, for `rgbt-track run` and `evaluate` alike.

Scored from its first frame only, a tracker can win or lose a whole sequence on one early
event (a look-alike passing in frame 117), so a handful of sequences gives noisy means.
Starting each sequence again at evenly spaced later frames (OTB's temporal robustness idea)
gives more runs from the same ground truth, and every tracker is judged on the same frames.

A segment starting at frame f of sequence S is named `S@f`; the one from frame 0 keeps the
name `S`, so it is the same run, and the same result file, as the plain one.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..eval.boxes import valid_box
from .datasets import Sequence


def segment_name(name: str, frame: int) -> str:
    """The name of the segment of sequence `name` that starts at `frame`."""
    return name if frame == 0 else f"{name}@{frame}"


def start_segments(sequences: Iterable[Sequence], count: int) -> list[Sequence]:
    """Each sequence from `count` evenly spaced ground-truth rows (row k * rows // count), each
    moved on to the first row with a box to start from (rows of an absent target are skipped).
    Starts that land on the same row are run once. Frames and both truths are cut alike; with
    VTUAV's `truth_step` the cut is at the frame that row annotates. Works on sequences read
    with or without frames (`evaluate` needs only the ground truth). A segment's metadata
    names its sequence ("sequence") and first frame ("start_frame")."""
    if count < 1:
        raise ValueError(f"the number of starts must be at least 1, got {count}")
    segments = []
    for sequence in sequences:
        visible = sequence.truth["visible"]
        rows: list[int] = []
        for k in range(count):
            row = next((r for r in range(k * len(visible) // count, len(visible)) if valid_box(visible[r])), None)
            if row is not None and row not in rows:
                rows.append(row)
        for row in rows:
            frame = row * sequence.truth_step
            segments.append(
                replace(
                    sequence,
                    name=segment_name(sequence.name, frame),
                    rgb_frames=sequence.rgb_frames[frame:],
                    thermal_frames=sequence.thermal_frames[frame:],
                    truth={modality: boxes[row:] for modality, boxes in sequence.truth.items()},
                    metadata={**sequence.metadata, "sequence": sequence.name, "start_frame": str(frame)},
                )
            )
    return segments
