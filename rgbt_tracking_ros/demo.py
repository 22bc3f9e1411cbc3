"""`rgbt-track demo`: train a tiny tracker on synthetic RGB-T sequences, track held-out ones,
print the scores and write an annotated video; the whole pipeline in a few minutes on a CPU."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from .eval.boxes import centre_error, iou_xywh
from .models import build_model
from .models.checkpoints import save_checkpoint
from .tracker import RGBTTracker, TrackerConfig, TrackState, align_thermal, thermal_to_rgb8
from .train.fit import fit_synthetic
from .train.synthetic import SyntheticSequence, make_sequence
from .visualize import annotate

TRAIN_SEEDS = range(8)
HELD_OUT_SEEDS = (1000, 1001, 1002)


def train_tiny_tracker(model_name: str, steps: int, seed: int, progress: bool) -> torch.nn.Module:
    """A tiny model trained end to end, backbone included: a tiny random backbone has nothing
    to adapt from, unlike the published models' pretrained ones."""
    model = build_model(model_name)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    sequences = [make_sequence(s, frames=40) for s in TRAIN_SEEDS]
    fit_synthetic(model, sequences, steps=steps, batch_size=8, lr=2e-3, seed=seed, progress=progress)
    return model


def track_sequence(
    tracker: RGBTTracker, sequence: SyntheticSequence, video: cv2.VideoWriter | None = None
) -> tuple[np.ndarray, float]:
    """Boxes for every frame (the first is the given one) and the tracking speed in frames/s."""
    tracker.initialize(sequence.rgb[0], sequence.thermal[0], sequence.boxes[0])
    boxes = [sequence.boxes[0]]
    start = time.perf_counter()
    for rgb, thermal, truth in zip(sequence.rgb[1:], sequence.thermal[1:], sequence.boxes[1:]):
        box, confidence, state = tracker.track(rgb, thermal)
        boxes.append(box)
        if video is not None:
            thermal_rgb8 = align_thermal(thermal_to_rgb8(thermal), rgb.shape)
            label = f"{state.name} {confidence:.2f}"
            video.write(annotate(rgb, thermal_rgb8, box, label, state is TrackState.LOST, truth))
    return np.array(boxes), (len(sequence.rgb) - 1) / (time.perf_counter() - start)


def demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"training {args.model} for {args.steps} steps on synthetic RGB-T sequences")
    model = train_tiny_tracker(args.model, args.steps, args.seed, progress=True)
    save_checkpoint(out / "model.pt", model, model.config, {"steps": args.steps, "seed": args.seed})
    tracker = RGBTTracker(model, TrackerConfig())
    print(f"{'sequence':>10} {'mean IoU':>9} {'IoU>0.5':>8} {'centre err':>11} {'fps':>6}")
    for index, seed in enumerate(HELD_OUT_SEEDS):
        sequence = make_sequence(seed, frames=60)
        video = None
        if index == 0:
            height, width = sequence.rgb[0].shape[:2]
            video = cv2.VideoWriter(str(out / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 15, (width, height))
        boxes, fps = track_sequence(tracker, sequence, video)
        if video is not None:
            video.release()
        iou = iou_xywh(boxes[1:], sequence.boxes[1:])
        error = centre_error(boxes[1:], sequence.boxes[1:])
        print(f"{seed:>10} {iou.mean():>9.3f} {(iou > 0.5).mean():>8.2f} {np.median(error):>9.1f}px {fps:>6.1f}")
    print(f"wrote {out / 'demo.mp4'} and {out / 'model.pt'}")
    return 0


def add_demo_parser(commands) -> None:
    parser = commands.add_parser("demo", help="train a tiny tracker on synthetic data and track")
    parser.add_argument("--model", default="ainet_tiny", help="a registered model name or YAML config")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.set_defaults(func=demo)
