"""`rgbt-track synth`: write synthetic RGB-T sequences as a LasHeR-layout data set, so the
evaluation commands and any LasHeR reader can run on them."""
from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from ..data.synthetic import CONDITIONS, EVAL_SEED_START, make_sequence, seed_range, write_sequence


def synth(args: argparse.Namespace) -> int:
    out = Path(args.out)
    seeds = [seed for item in args.seeds for seed in seed_range(item)]
    for seed in tqdm(seeds, desc="sequences", unit="seq"):
        sequence = make_sequence(seed, args.frames, args.height, args.width, conditions=args.conditions)
        write_sequence(sequence, out / f"synth_{seed}")
    print(f"wrote {len(seeds)} sequences to {out}")
    return 0


def add_synth_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("synth", help="write synthetic RGB-T sequences in the LasHeR layout")
    parser.add_argument("out", help="output folder; one synth_<seed>/ sequence folder per seed")
    parser.add_argument(
        "--seeds", nargs="+", default=[f"{EVAL_SEED_START}-{EVAL_SEED_START + 9}"],
        help=f"seeds or FIRST-LAST ranges; seeds >= {EVAL_SEED_START} use held-out images "
        "(default: the first 10 of those)",
    )
    parser.add_argument("--frames", type=int, default=120, help="frames per sequence")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument(
        "--conditions", nargs="+", choices=CONDITIONS, default=None,
        help="force these conditions in every sequence instead of drawing them from the seed",
    )
    parser.set_defaults(func=synth)
