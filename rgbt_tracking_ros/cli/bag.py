"""`rgbt-track bag ...`: sequences into rosbag2, in-process evaluation, live replay, scoring."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..data.datasets import READERS, read_sequence
from ..defaults import DEFAULT_MODEL
from ..eval.metrics import PROTOCOLS
from ..runtime.parameters import SPECS_BY_NAME, TIME_OFFSET_CHOICES
from .options import add_policy_argument

if TYPE_CHECKING:
    from ..bags.evaluate import Topics
    from ..sync import PairingConfig


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def from_sequence(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bags.write import SINGLE_MODALITY_NOTE, BagOptions, image_topics, write_sequence_bag

    options = BagOptions(
        rate=args.rate, thermal_rate=args.thermal_rate, thermal_offset=args.thermal_offset, jitter=args.jitter,
        seed=args.seed, storage=args.storage, rgb_topic=args.rgb_topic, thermal_topic=args.thermal_topic,
        ground_truth_topic=args.ground_truth_topic, rgb_frame_id=args.rgb_frame_id,
        thermal_frame_id=args.thermal_frame_id,
        infrared_ground_truth_topic=args.infrared_ground_truth_topic, compressed=not args.raw,
        jpeg_quality=args.jpeg_quality,
    )
    sequence = read_sequence(args.sequence, args.dataset)
    with tqdm(total=len(sequence), unit="frame", dynamic_ncols=True, disable=args.quiet) as bar:
        summary = write_sequence_bag(sequence, args.out, options, args.overwrite, bar.update)
    print(f"wrote {summary.path} ({options.storage}): {summary.frames} RGB and {summary.thermal_frames} thermal "
          f"frames over {summary.duration:.2f} s, ground truth on {options.ground_truth_topic}")
    rgb_topic, thermal_topic = image_topics(options)
    kind = "CompressedImage" if summary.compressed else "raw Image"
    print(f"images: {kind} on {rgb_topic} and {thermal_topic}"
          + (f" ({summary.passed_through} frame files stored as they are)" if summary.compressed else "")
          + (f"; infrared ground truth on {options.infrared_ground_truth_topic}" if summary.infrared_truth else ""))
    if summary.single_modality:
        print(f"note: {SINGLE_MODALITY_NOTE}")
    return 0


def _pairing(args: argparse.Namespace) -> PairingConfig:
    from ..sync import PairingConfig

    return PairingConfig(slop=args.slop, queue_size=args.queue_size, rgb_offset=args.rgb_offset,
                         thermal_offset=args.thermal_offset)


def _topics(args: argparse.Namespace) -> Topics:
    from ..bags.evaluate import Topics

    return Topics(args.rgb_topic, args.thermal_topic, args.ground_truth_topic,
                  getattr(args, "infrared_ground_truth_topic", Topics.infrared_ground_truth))


def _start_box(text: str | None) -> npt.NDArray[np.float64] | None:
    if text is None:
        return None
    values = [float(v) for v in text.replace(",", " ").split()]
    if len(values) != 4:
        raise ValueError(f"--start-box takes x,y,w,h (4 numbers), got {text!r}")
    return np.array(values, dtype=np.float64)


def evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..bags.evaluate import evaluate_bag, runtime_parameters
    from ..eval.runner import make_tracker, save_run

    config = _pairing(args)
    params = runtime_parameters(config, time_offset_estimation=args.time_offset_estimation)
    with tqdm(unit="pair", dynamic_ncols=True, disable=args.quiet) as bar:
        result = evaluate_bag(args.bag, lambda: make_tracker(args.model, args.checkpoint, args.device, args.half,
                                                             args.policy),
                              config, _topics(args), bar.update, _start_box(args.start_box),
                              args.protocol, params)
    if args.out:
        save_run(args.out, result.run)
    s = result.scores
    report = {
        "tracker": args.model, "bag": str(args.bag), "sequence": result.name, "protocol": result.protocol,
        "pr": _percent(None if s is None else s.pr), "npr": _percent(None if s is None else s.npr),
        "sr": _percent(None if s is None else s.sr),
        "frames": s.frames if s else 0, "tracked_frames": len(result.run.boxes), "pairs": result.pairs,
        "rgb_frames": result.received_rgb, "thermal_frames": result.received_thermal,
        "unpaired_truth_frames": result.unpaired_truth_frames, "fps": round(result.run.fps, 2),
        **result.time_offset,
    }
    if args.json:
        print(json.dumps(report))
    elif s is None:
        print(f"{result.name}: tracked {len(result.run.boxes)} frames from the start box, none with ground truth "
              f"on {args.ground_truth_topic}: not scored ({result.run.fps:.1f} FPS)")
        if args.out:
            print(f"results in {args.out}", file=sys.stderr)
    else:
        pr, sr = ("MPR", "MSR") if PROTOCOLS[result.protocol].best_of_modalities else ("PR", "SR")
        npr = "" if s.npr is None else f"NPR {100 * s.npr:.1f}  "
        print(f"{result.name}: {pr} {100 * s.pr:.1f}  {npr}{sr} {100 * s.sr:.1f}  over {s.frames} frames "
              f"with ground truth, {result.protocol} protocol "
              f"({result.pairs} pairs of {result.received_rgb} RGB and {result.received_thermal} thermal frames; "
              f"{result.unpaired_truth_frames} ground-truth frames unpaired), {result.run.fps:.1f} FPS")
        if args.out:
            print(f"results in {args.out}", file=sys.stderr)
    return 0


def score(args: argparse.Namespace) -> int:
    from ..bags.score import score_recording

    result = score_recording(args.recorded, args.truth_bag, args.topic, _pairing(args), _topics(args), args.all_frames)
    s = result.scores
    report = {
        "pr": _percent(s.pr), "sr": _percent(s.sr), "frames": result.expected, "missing": result.missing,
        "missing_percent": round(result.missing_percent, 2), "unmatched_outputs": result.unmatched_outputs,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"PR {100 * s.pr:.1f}  SR {100 * s.sr:.1f}  over {result.expected} frames; "
              f"{result.missing} without output ({result.missing_percent:.1f} %, scored as misses); "
              f"{result.unmatched_outputs} outputs matched no frame")
    return 0


def replay(args: argparse.Namespace) -> int:
    from ..bags.replay import replay_bag

    count = replay_bag(args.bag, rate=args.rate, loop=args.loop, clock=args.clock, topics=args.topics,
                       wait_for_subscribers=args.wait_for_subscribers)
    print(f"published {count} messages")
    return 0


def offset(args: argparse.Namespace) -> int:
    from ..bags.offset import estimate_bag_offset
    from ..timing.offset import OffsetConfig

    config = OffsetConfig(window=args.window, min_span=min(args.min_span, args.window),
                          max_offset=args.max_offset)
    estimate, n_rgb, n_thermal = estimate_bag_offset(args.bag, args.rgb_topic, args.thermal_topic, config,
                                                     args.start)
    if estimate is None:
        print(f"no estimate: {n_rgb} RGB and {n_thermal} thermal frames do not cover {config.min_span:g} s "
              "of both cameras", file=sys.stderr)
        return 1
    thermal_offset = estimate.thermal_offset(args.rgb_offset)
    residual = estimate.offset - (args.rgb_offset - args.thermal_offset)
    report = {
        "offset_ms": round(estimate.offset_ms, 2), "correlation": round(estimate.correlation, 3),
        "reliable": estimate.reliable, "span_s": round(estimate.span, 2), "rgb_frames": n_rgb,
        "thermal_frames": n_thermal, "thermal_offset": round(thermal_offset, 5),
        "residual_ms": round(1e3 * residual, 2), "exceeds_half_slop": abs(residual) > args.slop / 2,
    }
    if args.json:
        print(json.dumps(report))
        return 0 if estimate.reliable else 2
    side = "later" if estimate.offset >= 0 else "earlier"
    quality = "reliable" if estimate.reliable else "NOT reliable (too little motion, or the cameras disagree)"
    print(f"thermal stamps are {abs(estimate.offset_ms):.1f} ms {side} than RGB stamps of the same moment "
          f"(correlation {estimate.correlation:.2f} over {estimate.span:.1f} s, {n_rgb} RGB and {n_thermal} "
          f"thermal frames: {quality})")
    print(f"pair with thermal_offset: {thermal_offset:.4f} (rgb_offset {args.rgb_offset:g})")
    if abs(residual) > args.slop / 2:
        print(f"warning: with thermal_offset {args.thermal_offset:g} the stamps of the same moment differ by "
              f"{1e3 * abs(residual):.1f} ms, more than half the slop ({1e3 * args.slop:g} ms): pairs may use "
              "the wrong frame")
    return 0 if estimate.reliable else 2


def _add_topics(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rgb-topic", default="/rgb/image")
    parser.add_argument("--thermal-topic", default="/thermal/image")
    parser.add_argument("--ground-truth-topic", default="/ground_truth")
    parser.add_argument("--infrared-ground-truth-topic", default="/ground_truth/infrared",
                        help="the thermal modality's own ground truth (RGBT234, GTOT, VTUAV score against both)")


def _add_pairing(parser: argparse.ArgumentParser) -> None:
    """The node's pairing parameters, with its defaults."""
    from ..sync import PairingConfig

    defaults = PairingConfig()
    parser.add_argument("--slop", type=float, default=defaults.slop, help="pairing tolerance in seconds")
    parser.add_argument("--queue-size", type=int, default=defaults.queue_size)
    parser.add_argument("--rgb-offset", type=float, default=defaults.rgb_offset, help="seconds added to RGB stamps")
    parser.add_argument("--thermal-offset", type=float, default=defaults.thermal_offset,
                        help="seconds added to thermal stamps")


def add_bag_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bag = commands.add_parser("bag", help="rosbag2 tools: from-sequence, evaluate, score, replay, offset")
    bag.epilog = ("Camera topics are base topics: raw sensor_msgs/Image there, or sensor_msgs/CompressedImage "
                  "there or on <topic>/compressed (image_transport).")
    sub = bag.add_subparsers(dest="bag_command", required=True)

    parser = sub.add_parser("from-sequence", help="write a dataset sequence into a rosbag2")
    parser.add_argument("sequence", help="sequence folder")
    parser.add_argument("out", help="bag folder to create")
    parser.add_argument("--dataset", choices=sorted(READERS), default="otb", help="layout of the sequence folder")
    parser.add_argument("--rate", type=float, default=30.0, help="RGB frame rate (Hz)")
    parser.add_argument("--thermal-rate", type=float, default=None, help="lower thermal rate (Hz): frames dropped")
    parser.add_argument("--thermal-offset", type=float, default=0.0, help="constant seconds added to thermal stamps")
    parser.add_argument("--jitter", type=float, default=0.0, help="uniform random thermal stamp jitter (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    _add_topics(parser)
    parser.add_argument("--rgb-frame-id", default="rgb_camera")
    parser.add_argument("--thermal-frame-id", default="thermal_camera")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag folder")
    parser.add_argument("--raw", action="store_true",
                        help="raw sensor_msgs/Image on the topics instead of CompressedImage on <topic>/compressed "
                             "(JPEG RGB, PNG thermal, 16-bit PNG for 16-bit thermal)")
    parser.add_argument("--jpeg-quality", type=int, default=95,
                        help="for RGB frames that are not JPEG files already (those are stored as they are)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=from_sequence)

    parser = sub.add_parser("evaluate", help="track a bag in process and score it against its ground truth")
    parser.add_argument("bag")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"registered model name, YAML config, or csrt-rgb / csrt-thermal (default {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--half", action="store_true", help="fp16 on CUDA")
    add_policy_argument(parser)
    parser.add_argument("--out", default=None, help="write <sequence>.txt result, confidence and time files here")
    parser.add_argument("--json", action="store_true", help="one JSON object, scores in percent")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--start-box", default=None, metavar="X,Y,W,H",
                        help="start on the first pair with this box (RGB pixels) instead of the first ground-truth "
                             "box; a bag without ground truth is then tracked and not scored")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                        help="scoring protocol (default: the dataset the bag was written from, else otb)")
    parser.add_argument("--time-offset-estimation", choices=TIME_OFFSET_CHOICES,
                        default=SPECS_BY_NAME["time_offset_estimation"].default,
                        help="the node's time_offset_estimation: 'apply' pairs with the camera offset found from "
                             "the images (docs/timing.md); the estimate is in --json's time_offset_* keys")
    _add_pairing(parser)
    _add_topics(parser)
    parser.set_defaults(func=evaluate)

    parser = sub.add_parser("score", help="score a recording of the node's output against the replayed bag")
    parser.add_argument("recorded", help="bag with the node's rgbt_tracking_ros/msg/TrackedObject topic")
    parser.add_argument("truth_bag", help="the bag that was replayed (with ground truth)")
    parser.add_argument("--topic", default="/tracked_object", help="TrackedObject topic in the recording")
    parser.add_argument("--all-frames", action="store_true",
                        help="expect an output for every ground-truth frame, not only the paired ones")
    parser.add_argument("--json", action="store_true", help="one JSON object, scores in percent")
    _add_pairing(parser)
    _add_topics(parser)
    parser.set_defaults(func=score)

    parser = sub.add_parser("replay", help="publish a bag to live topics with its original timing (needs rclpy)")
    parser.add_argument("bag")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--loop", action="store_true", help="start over at the end (until Ctrl-C)")
    parser.add_argument("--clock", action="store_true", help="publish /clock (rosgraph_msgs/Clock) from bag time")
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds for a subscriber on every topic before starting")
    parser.set_defaults(func=replay)

    parser = sub.add_parser("offset", help="estimate the constant offset between the cameras' stamps from the "
                                           "images (exit 2 when the estimate is not reliable)")
    parser.add_argument("bag")
    parser.add_argument("--start", type=float, default=0.0, help="seconds into the bag to start at")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of both cameras to compare")
    parser.add_argument("--min-span", type=float, default=5.0, help="fewer seconds than this: no estimate")
    parser.add_argument("--max-offset", type=float, default=0.25, help="largest offset searched (s)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    _add_pairing(parser)
    parser.add_argument("--rgb-topic", default="/rgb/image")
    parser.add_argument("--thermal-topic", default="/thermal/image")
    parser.set_defaults(func=offset)
