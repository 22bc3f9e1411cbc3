"""`rgbt-track evaluate` and `rgbt-track run`: benchmark scores one command away."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .defaults import DEFAULT_MODEL, TRACKER_POLICIES
from .eval.datasets import READERS, read_dataset, read_otb
from .eval.metrics import PROTOCOLS, Scores, score_results
from .eval.results import read_results


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def _table(dataset: str, results: dict[str, Scores]) -> str:
    pr, sr = ("MPR", "MSR") if PROTOCOLS[dataset].best_of_modalities else ("PR", "SR")
    width = max(len("tracker"), *(len(name) for name in results))
    lines = [f"{'tracker':<{width}}  {pr:>6}  {'NPR':>6}  {sr:>6}  {'seqs':>5}  {'frames':>7}"]
    for name, s in results.items():
        npr = "-" if s.npr is None else f"{100 * s.npr:6.1f}"
        lines.append(f"{name:<{width}}  {100 * s.pr:6.1f}  {npr:>6}  {100 * s.sr:6.1f}  {s.sequences:>5}  {s.frames:>7}")
    return "\n".join(lines)


def _sequence_table(per_tracker: dict[str, dict[str, Scores]]) -> str:
    """Rows of sequences, a PR / SR column pair per tracker."""
    names = list(per_tracker)
    sequences = list(next(iter(per_tracker.values())))
    width = max(len("sequence"), *(len(s) for s in sequences))
    header = f"{'sequence':<{width}}" + "".join(f"  {name[:15] + ' PR/SR':>21}" for name in names)
    lines = [header]
    for sequence in sequences:
        cells = "".join(
            f"  {100 * per_tracker[n][sequence].pr:>10.1f}/{100 * per_tracker[n][sequence].sr:<10.1f}" for n in names
        )
        lines.append(f"{sequence:<{width}}{cells}")
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> int:
    """Score one or several trackers' result folders side by side (the ground truth read once)."""
    protocol = PROTOCOLS[args.dataset]
    truths = {s.name: s.truths() for s in read_dataset(args.dataset, args.root, frames=False)}
    results: dict[str, Scores] = {}
    per_tracker: dict[str, dict[str, Scores]] = {}
    for folder in args.results:
        name = Path(folder).resolve().name
        if name in results:
            raise ValueError(f"two results folders are named {name!r}")
        predictions = read_results(folder, list(truths), args.prefix, protocol.inclusive_corners)
        results[name] = score_results(predictions, truths, protocol)
        if args.per_sequence:  # each sequence alone: where a tracker wins or loses, not just on average
            per_tracker[name] = {
                sequence: score_results({sequence: predictions[sequence]}, {sequence: truths[sequence]}, protocol)
                for sequence in truths
            }
    if args.json:
        for name, s in results.items():
            scores = {"pr": _percent(s.pr), "npr": _percent(s.npr), "sr": _percent(s.sr)}
            print(json.dumps({"tracker": name, "dataset": args.dataset, **scores}))
    else:
        print(_table(args.dataset, results))
    if args.per_sequence:
        print(_sequence_table(per_tracker))
    if args.plot:
        from .eval.plots import plot_scores

        for path in plot_scores(results, args.plot, args.dataset):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Track a dataset or one sequence folder into result, confidence and timing files."""
    from .eval.runner import make_tracker, run_sequences

    if (args.dataset is None) == (args.sequence is None):
        raise ValueError("give either --dataset with --root, or --sequence")
    if args.sequence is not None:
        sequences = read_otb(args.sequence) if (Path(args.sequence) / "groundtruth_rect.txt").is_file() else None
        if sequences is None:
            raise ValueError(f"{args.sequence} is not a sequence folder (img/ + groundtruth_rect.txt)")
    else:
        if args.root is None:
            raise ValueError("--dataset needs --root")
        sequences = read_dataset(args.dataset, args.root)
    runs = run_sequences(
        lambda: make_tracker(args.model, args.checkpoint, args.device, args.half, args.policy), sequences, args.out
    )
    done = [r for r in runs if not r.skipped]
    print(f"tracked {len(done)} sequence(s), skipped {len(runs) - len(done)} already finished; results in {args.out}")
    for r in done:
        print(f"  {r.name}: {len(r.boxes)} frames, {r.fps:.1f} FPS")
    return 0


def add_policy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", choices=TRACKER_POLICIES, default=TRACKER_POLICIES[0],
        help="target state after low-confidence frames: 'robust' (default) keeps the last confident box, widens "
        "the search and re-detects over the whole frame; 'official' follows every prediction as the AINet and "
        "DMTrack papers do (use it to reproduce their benchmark numbers)",
    )


def add_evaluate_parsers(commands) -> None:
    parser = commands.add_parser("evaluate", help="score result files against a benchmark's ground truth")
    parser.add_argument("--dataset", required=True, choices=sorted(READERS))
    parser.add_argument(
        "--root", required=True, help="dataset folder (frames not needed) or the toolkit's ground truth"
    )
    parser.add_argument("results", nargs="+", help="one folder of <sequence>.txt result files per tracker")
    parser.add_argument("--prefix", default=None, help="result file name prefix (default: found automatically)")
    parser.add_argument("--json", action="store_true", help="one JSON object per tracker, scores in percent")
    parser.add_argument("--plot", metavar="OUT_DIR", help="write precision and success plots (PNG) here")
    parser.add_argument("--per-sequence", action="store_true", help="also a PR / SR table per sequence")
    parser.set_defaults(func=evaluate)

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
    parser.set_defaults(func=run)
