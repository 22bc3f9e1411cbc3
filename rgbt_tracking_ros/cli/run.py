"""`rgbt-track run`: a tracker over a dataset or one sequence folder, into result files that
`rgbt-track evaluate` scores."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.datasets import READERS, read_dataset, read_otb
from ..defaults import DEFAULT_MODEL
from .options import add_policy_argument, add_starts_argument


def run(args: argparse.Namespace) -> int:
    """Track a dataset or one sequence folder into result, confidence and timing files."""
    from ..eval.runner import make_tracker, run_sequences

    if (args.dataset is None) == (args.sequence is None):
        raise ValueError("give either --dataset with --root, or --sequence")
    if args.sequence is not None:
        if not (Path(args.sequence) / "groundtruth_rect.txt").is_file():
            raise ValueError(f"{args.sequence} is not a sequence folder (img/ + groundtruth_rect.txt)")
        sequences = read_otb(args.sequence)
    else:
        if args.root is None:
            raise ValueError("--dataset needs --root")
        sequences = read_dataset(args.dataset, args.root)
    if args.starts != 1:
        from ..data.segments import start_segments

        sequences = start_segments(sequences, args.starts)
    runs = run_sequences(
        lambda: make_tracker(args.model, args.checkpoint, args.device, args.half, args.policy), sequences, args.out
    )
    done = [r for r in runs if not r.skipped]
    print(f"tracked {len(done)} sequence(s), skipped {len(runs) - len(done)} already finished; results in {args.out}")
    for r in done:
        print(f"  {r.name}: {len(r.boxes)} frames, {r.fps:.1f} FPS")
    return 0


def add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("run", help="run a tracker over a dataset or a sequence folder")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"registered model name, YAML config, or csrt-rgb / csrt-thermal (default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--dataset", choices=sorted(READERS), default=None)
    parser.add_argument("--root", default=None, help="dataset folder (with --dataset)")
    parser.add_argument("--sequence", default=None, help="one OTB-style sequence folder (img/ + groundtruth_rect.txt)")
    parser.add_argument("--out", required=True, help="results folder; finished sequences are skipped on a rerun")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA")
    add_policy_argument(parser)
    add_starts_argument(parser)
    parser.set_defaults(func=run)
