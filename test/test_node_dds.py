"""The tracker node end to end over real DDS, as a user would run it.

Three kinds of process per test: the node (``python -m rgbt_tracking_ros.ros.node
--ros-args ...``), the synthetic camera (``scripts/synthetic_camera.py``: RGB rgb8 + thermal
mono16 of held-out sequence 1000, with faults on request) and this test process, which
subscribes to the outputs and calls the services. Every test has its own ROS domain and
namespace and loads the Fast DDS large-data profile; every wait is bounded; processes are
stopped with SIGINT and must exit 0 (a clean shutdown leaves no shared-memory segments).

The node runs the shipped default model (the session fixture ``trained_checkpoint``) on the
CPU; the camera publishes at 10-12 Hz so the node keeps up on a shared 2-core machine.
"""
from __future__ import annotations

import itertools
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from ros_availability import require_ros

ROOT = Path(__file__).resolve().parents[1]
CAMERA_SCRIPT = ROOT / "scripts" / "synthetic_camera.py"
PROFILE = ROOT / "config" / "fastdds_large_data.xml"
FAULT_NODE = ROOT / "test" / "fault_node.py"
NODE_READY_S = 90.0  # node start: imports, model load and warm-up on a busy machine
WAIT_S = 30.0
STOP_S = 20.0
SEED, WIDTH, HEIGHT = 1000, 320, 240
RGB_FRAME_ID = "rgb_camera_optical_frame"


require_ros("diagnostic_msgs.msg", "std_srvs.srv", module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Point, PointStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from rgbt_tracking_ros.data.synthetic import make_sequence  # noqa: E402
from rgbt_tracking_ros.eval.boxes import iou_xywh  # noqa: E402
from rgbt_tracking_ros.msg import TrackedObject  # noqa: E402
from rgbt_tracking_ros.ros.diagnostics import KEYS  # noqa: E402
from rgbt_tracking_ros.srv import SetTarget  # noqa: E402

_DOMAINS = itertools.count()
STOPPED, NEW, TRACKING, LOST, ERROR = (
    TrackedObject.STATE_STOPPED, TrackedObject.STATE_NEW, TrackedObject.STATE_TRACKING,
    TrackedObject.STATE_LOST, TrackedObject.STATE_ERROR)


def _domain_id() -> int:
    """Ids 10-100 (above 101 DDS ports reach Linux's ephemeral range); distinct from the
    interface tests' ids in the same session by an offset."""
    return 10 + (os.getpid() + 37 + next(_DOMAINS)) % 91


def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def _format(value) -> str:
    """A value as `--ros-args -p name:=value` reads it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(repr(float(v)) for v in value) + "]"
    return str(value)


class Process:
    """A child process whose stdout and stderr lines are collected on threads."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name = name
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.new_lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self.new_lines.put(line)

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.new_lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.new_lines.empty():
                    break
                continue
            if line.startswith(prefix):
                return line
        pytest.fail(f"{self.name} printed no line starting with {prefix!r} in {timeout:.0f} s; "
                    f"{self.describe()}")

    def log_contains(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def describe(self) -> str:
        code = self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        tail = "\n  ".join(self.lines[-25:]) or "(no output)"
        return f"{self.name} {state}; last output:\n  {tail}"

    def stop(self) -> int:
        """SIGINT (stdin closed too), then SIGTERM; SIGKILL only if both hang."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            for sig, wait in ((signal.SIGINT, STOP_S), (signal.SIGTERM, 10.0)):
                self.proc.send_signal(sig)
                try:
                    return self.proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
            self.proc.kill()
            self.proc.wait(timeout=10)
            return -9
        return self.proc.returncode


class Camera(Process):
    """The synthetic camera; records the stamp (ns) -> sequence index of every RGB frame."""

    def frames(self) -> dict[int, tuple[int, str]]:
        out = {}
        for line in list(self.lines):
            if line.startswith("FRAME "):
                _, index, stamp, what = line.split()
                out[int(stamp)] = (int(index), what)
        return out

    def last_frame(self, back: int = 0) -> tuple[int, int]:
        """(sequence index, stamp ns) of the newest frame published, or `back` frames before."""
        lines = [line for line in list(self.lines) if line.startswith("FRAME ")]
        if len(lines) <= back:
            pytest.fail(f"the camera published {len(lines)} frames; {self.describe()}")
        _, index, stamp, _ = lines[-1 - back].split()
        return int(index), int(stamp)


class Session:
    """One test's domain: the node and camera processes and a probe node in this process."""

    def __init__(self, env: dict[str, str], domain: int):
        self.env, self.domain = env, domain
        self.ns = f"/t{uuid.uuid4().hex[:8]}"
        self.processes: list[Process] = []
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(f"probe_{uuid.uuid4().hex[:8]}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.tracked: list[tuple[float, TrackedObject]] = []
        self.diagnostics: list[tuple[float, object]] = []
        self.node.create_subscription(TrackedObject, f"{self.ns}/tracked_object",
                                      lambda m: self.tracked.append((time.monotonic(), m)),
                                      QoSProfile(depth=100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics,
                                      QoSProfile(depth=100))
        self.node_process: Process | None = None

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name == "rgbt_tracker: tracking":
                self.diagnostics.append((time.monotonic(), status))

    def start_node(self, fault: str = "", **params) -> Process:
        """The node; with fault, through test/fault_node.py (a tracker that fails on purpose)."""
        launcher = ([str(FAULT_NODE), fault, "--"] if fault
                    else ["-m", "rgbt_tracking_ros.ros.node"])
        args = [sys.executable, *launcher, "--ros-args", "-r", f"__ns:={self.ns}"]
        for name, value in params.items():
            args += ["-p", f"{name}:={_format(value)}"]
        self.node_process = Process("node", args, self.env)
        self.processes.append(self.node_process)
        return self.node_process

    def wait_until_active(self) -> None:
        client = self.node.create_client(SetTarget, f"{self.ns}/set_target")
        assert self.spin_until(client.service_is_ready, NODE_READY_S), (
            f"the node did not become active in {NODE_READY_S:.0f} s (domain {self.domain}); "
            f"{self.node_process.describe()}")
        self.node.destroy_client(client)

    def start_camera(self, *args: str) -> Camera:
        camera = Camera("camera", [
            sys.executable, str(CAMERA_SCRIPT), "--stdin-eof-stops", "--seed", str(SEED),
            "--width", str(WIDTH), "--height", str(HEIGHT),
            "--rgb-topic", f"{self.ns}/rgb/image", "--thermal-topic", f"{self.ns}/thermal/image",
            "--wait-for-subscribers", str(WAIT_S), *args], self.env)
        self.processes.append(camera)
        camera.wait_for_line("READY", WAIT_S + 30)
        return camera

    def spin_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return bool(done())

    def spin_for(self, seconds: float) -> None:
        self.spin_until(lambda: False, seconds)

    def call(self, kind, name: str, request):
        client = self.node.create_client(kind, f"{self.ns}/{name}")
        try:
            assert self.spin_until(client.service_is_ready, WAIT_S), f"{name} not available"
            future = client.call_async(request)
            assert self.spin_until(future.done, WAIT_S), (
                f"no reply from {name}; {self.node_process.describe()}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def messages_since(self, since: float) -> list[TrackedObject]:
        return [msg for t, msg in list(self.tracked) if t >= since]

    def statuses_since(self, since: float) -> list:
        return [status for t, status in list(self.diagnostics) if t >= since]

    def describe(self) -> str:
        """What a failed wait saw: outputs received, the last diagnostics, both processes."""
        states = [m.state for _, m in list(self.tracked)]
        counts = {name: states.count(value) for name, value in (
            ("NEW", NEW), ("TRACKING", TRACKING), ("LOST", LOST), ("STOPPED", STOPPED),
            ("ERROR", ERROR))}
        last = self.diagnostics[-1][1].message if self.diagnostics else "(none)"
        processes = "\n".join(p.describe() for p in self.processes)
        return (f"domain {self.domain}, namespace {self.ns}; tracked_object states received: "
                f"{counts}; last diagnostics: {last}\n{processes}")

    def stop_processes(self) -> dict[str, int]:
        codes = {}
        for process in reversed(self.processes):  # camera first, the node last
            codes[process.name] = process.stop()
        self.processes.clear()
        return codes

    def close(self) -> None:
        self.stop_processes()
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def session(monkeypatch):
    domain = _domain_id()
    settings = {
        "ROS_DOMAIN_ID": str(domain),
        # Fast DDS 2.x (Humble, Jazzy) reads FASTRTPS_..., Fast DDS 3 (Kilted) FASTDDS_...
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(PROFILE),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
        "RCUTILS_COLORIZED_OUTPUT": "0",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    s = Session(dict(os.environ), domain)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """Ground-truth boxes of the held-out sequence the camera plays (90 frames)."""
    return make_sequence(SEED, frames=90, height=HEIGHT, width=WIDTH).boxes


def _node_params(checkpoint, **extra):
    return {"checkpoint": str(checkpoint), "device": "cpu", **extra}


def _assert_clean_exit(s: Session) -> None:
    node = s.node_process
    codes = s.stop_processes()
    assert codes.get("node") == 0, f"the node did not exit cleanly ({codes}); {node.describe()}"


def _values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def _iou_by_stamp(messages, camera: Camera, truth: np.ndarray) -> np.ndarray:
    frames = camera.frames()
    pairs = [(msg, frames[_stamp_ns(msg.header.stamp)][0]) for msg in messages]
    boxes = np.array([[m.x, m.y, m.width, m.height] for m, _ in pairs])
    return iou_xywh(boxes, truth[[index for _, index in pairs]])


def test_node_follows_the_target_with_the_rgb_header(session, trained_checkpoint, truth):
    s = session
    s.start_node(**_node_params(trained_checkpoint, initial_box=truth[0].tolist()))
    annotated = []
    s.node.create_subscription(Image, f"{s.ns}/annotated_image", annotated.append, 5)
    s.wait_until_active()
    camera = s.start_camera("--frames", "60", "--rate", "10", "--hold-first", "1.0")
    assert s.spin_until(lambda: camera.proc.poll() is not None, 60), camera.describe()
    s.spin_for(1.5)  # the last pairs

    messages = [m for _, m in s.tracked]
    assert messages, f"no tracked_object messages; {s.describe()}"
    assert messages[0].state == NEW
    # The cameras stopped at the end: one LOST event (stamped now) closes the stream, saying why.
    frames = camera.frames()
    last = messages[-1]
    assert last.state == LOST and "sent no image" in last.reason, (last.state, last.reason)
    assert last.header.frame_id == RGB_FRAME_ID and _stamp_ns(last.header.stamp) not in frames
    assert not any(m.state == STOPPED for m in messages)
    messages = messages[:-1]
    for msg in messages:  # every output for an image pair carries that RGB image's header
        assert msg.header.frame_id == RGB_FRAME_ID
        assert _stamp_ns(msg.header.stamp) in frames, "stamp of no published RGB image"
        assert msg.target_id == "target"
    tracked = [m for m in messages if m.state in (TRACKING, LOST)]
    assert len(tracked) >= 30, f"only {len(tracked)} tracked frames of 70; {s.describe()}"
    indices = [frames[_stamp_ns(m.header.stamp)][0] for m in tracked]
    travelled = np.hypot(*(truth[indices, :2] - truth[0, :2]).T).max()
    assert travelled > 30, "the target must move far enough for a frozen box to fail"
    iou = _iou_by_stamp(tracked, camera, truth)
    assert iou.mean() > 0.5, f"mean IoU {iou.mean():.2f} over {len(iou)} frames"
    assert all(m.pair_dt.sec == 0 and abs(m.pair_dt.nanosec - 2_000_000) < 1000 for m in tracked)
    assert tracked[-1].age >= len(tracked)

    assert annotated, "no annotated image although this process subscribed"
    image = annotated[-1]
    assert (image.width, image.height, image.encoding) == (WIDTH, HEIGHT, "rgb8")
    assert image.header.frame_id == RGB_FRAME_ID and _stamp_ns(image.header.stamp) in frames

    statuses = s.statuses_since(0.0)
    assert statuses, "nothing on /diagnostics"
    values = _values(statuses[-1])
    assert set(KEYS) <= set(values)
    assert (values["device"], values["model"], values["pairing"]) == (
        "cpu", "compact_rgbt", "stamp_pairer")
    busy = [_values(st) for st in statuses if float(_values(st)["pair_rate_hz"]) > 0]
    assert busy and max(float(v["tracked_rate_hz"]) for v in busy) > 3
    assert any(float(v["inference_ms_mean"]) > 0 and float(v["latency_ms_mean"]) > 0
               for v in busy)
    _assert_clean_exit(s)


def test_set_target_reset_and_stop_services(session, trained_checkpoint, truth):
    s = session
    s.start_node(**_node_params(trained_checkpoint, target_id="default"))
    s.wait_until_active()
    camera = s.start_camera("--frames", "90", "--rate", "10", "--loop", "--duration", "60")
    assert s.spin_until(lambda: sum(m.state == STOPPED for _, m in s.tracked) >= 5, WAIT_S), (
        f"no STOPPED messages while waiting for a target; {s.describe()}")

    def set_target(box, stamp_ns=0, target_id="person"):
        request = SetTarget.Request(target_id=target_id)
        request.header.stamp.sec, request.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        request.x, request.y, request.width, request.height = (float(v) for v in box)
        return s.call(SetTarget, "set_target", request)

    for box, expected in (((math.nan, 10, 30, 30), "NaN"),
                          ((1000, 1000, 30, 30), "does not overlap"),
                          ((10, 10, 0, 30), "positive width and height")):
        response = set_target(box)
        assert not response.success and expected in response.message, response.message

    # Stamps outside the held history are refused with the reason, not applied to "now".
    index, stamp = camera.last_frame(back=3)
    for offset, expected in ((-33 * 10**9, "too old"), (100 * 10**9, "in the future")):
        response = set_target(truth[index], stamp + offset)
        assert not response.success and expected in response.message, response.message
    response = set_target((10, 10, 2, 30))
    assert not response.success and "too small" in response.message, response.message
    response = set_target((0, 0, 2 * WIDTH, 30))
    assert not response.success and "larger than" in response.message, response.message

    # A frame the node has paired already (the newest waits for its successor to pair):
    # answered once the tracker was initialised on that very frame.
    index, stamp = camera.last_frame(back=3)
    start = time.monotonic()
    response = set_target(truth[index], stamp)
    stamp_text = f"{stamp // 10**9}.{stamp % 10**9:09d}"
    assert response.success and stamp_text in response.message, response.message
    assert s.spin_until(lambda: sum(m.state == TRACKING for m in s.messages_since(start)) >= 5,
                        WAIT_S), s.describe()
    after = s.messages_since(start)
    new = [m for m in after if m.state == NEW]
    assert len(new) == 1 and _stamp_ns(new[0].header.stamp) == stamp  # initialised on that frame
    assert after.index(new[0]) < next(i for i, m in enumerate(after) if m.state == TRACKING)
    assert {m.target_id for m in after if m.state != STOPPED} == {"person"}

    assert s.call(Trigger, "reset", Trigger.Request()).success
    s.spin_for(1.0)  # messages already on their way
    start = time.monotonic()
    s.spin_for(1.5)
    after = s.messages_since(start)
    assert after and all(m.state == STOPPED for m in after), [m.state for m in after]

    index, _ = camera.last_frame()
    start = time.monotonic()
    assert set_target(truth[index]).success  # no stamp: the next pair
    assert s.spin_until(lambda: any(m.state == TRACKING for m in s.messages_since(start)),
                        WAIT_S)
    assert [m.state for m in s.messages_since(start) if m.state != STOPPED][0] == NEW

    start = time.monotonic()
    assert s.call(Trigger, "stop", Trigger.Request()).success
    s.spin_for(1.0)
    stopped = [m for m in s.messages_since(start) if m.state == STOPPED]
    assert len(stopped) == 1 and stopped[0].target_id == "person"
    assert _stamp_ns(stopped[0].header.stamp) not in camera.frames()  # an event, not an image
    start = time.monotonic()
    s.spin_for(1.5)
    assert s.messages_since(start) == [], "the node kept publishing after stop"

    # A click (rqt_image_view style) sets a box of click_box_size around the point.
    clicks = s.node.create_publisher(PointStamped, f"{s.ns}/rgb/image_mouse_left", 10)
    assert s.spin_until(lambda: clicks.get_subscription_count() > 0, WAIT_S)
    index, _ = camera.last_frame()
    x, y, w, h = truth[index]
    start = time.monotonic()
    clicks.publish(PointStamped(point=Point(x=float(x + w / 2), y=float(y + h / 2))))
    assert s.spin_until(lambda: any(m.state == TRACKING for m in s.messages_since(start)),
                        WAIT_S), s.describe()
    new = s.messages_since(start)[0]
    assert new.state == NEW and (new.width, new.height) == (64.0, 64.0)
    assert new.target_id == "default"  # the target_id parameter
    _assert_clean_exit(s)


def test_stamps_jumping_back_mark_the_target_lost_and_say_why(session, trained_checkpoint,
                                                                truth):
    s = session
    node = s.start_node(**_node_params(trained_checkpoint, initial_box=truth[0].tolist()))
    s.wait_until_active()
    camera = s.start_camera("--frames", "90", "--rate", "12", "--hold-first", "0.5",
                            "--malformed-at", "15", "--malformed-at", "16",
                            "--jump-back", "4.0", "7.0")
    assert s.spin_until(lambda: camera.proc.poll() is not None, 60), camera.describe()
    s.spin_for(1.5)

    frames = camera.frames()
    messages = [m for _, m in s.tracked]
    stamps = [_stamp_ns(m.header.stamp) for m in messages]
    jumped = next(i for i, m in enumerate(messages) if "jumped back" in m.reason)
    before, after = messages[:jumped], messages[jumped:]
    assert any(m.state == TRACKING for m in before), s.describe()
    # From the jump on the target is LOST with the reason: the tracker is not trusted on a
    # timeline that restarted (before: "pairing reset", TRACKING in the wrong place).
    per_pair = [m for m in after if _stamp_ns(m.header.stamp) in frames]
    assert len(per_pair) >= 5 and all(m.state == LOST for m in per_pair), [
        (m.state, m.reason) for m in after]
    assert all("jumped back" in m.reason for m in per_pair[:5])
    assert min(stamps[jumped:]) < max(stamps[:jumped]) - 5 * 10**9

    values = _values(s.statuses_since(0.0)[-1])
    assert int(values["pairing_resets"]) >= 1, values
    assert int(values["malformed_rgb"]) >= 1 and int(values["malformed_thermal"]) >= 1, values
    assert node.log_contains("pairing reset: rgb stamp jumped back")
    _assert_clean_exit(s)


def test_a_camera_sending_only_malformed_images_counts_as_stopped(session, trained_checkpoint,
                                                                  truth):
    s = session
    s.start_node(**_node_params(trained_checkpoint, initial_box=truth[0].tolist(),
                                camera_timeout=0.5, diagnostics_period=0.5))
    s.wait_until_active()
    bad = [str(i) for i in range(15, 51)]  # 3 s at 12 Hz, all on the thermal camera
    camera = s.start_camera("--frames", "90", "--rate", "12", "--hold-first", "0.5",
                            "--malformed-camera", "thermal",
                            *[arg for i in bad for arg in ("--malformed-at", i)])
    assert s.spin_until(lambda: camera.proc.poll() is not None, 60), camera.describe()
    s.spin_for(1.0)

    messages = [m for _, m in s.tracked]
    lost = [m for m in messages if "only unusable images" in m.reason]
    assert lost and lost[0].state == LOST and "thermal camera" in lost[0].reason, s.describe()
    first = messages.index(lost[0])
    assert any(m.state == TRACKING for m in messages[:first])
    later = messages[first + 1:]
    assert later and all(m.state == LOST for m in later), [(m.state, m.reason) for m in later]
    statuses = s.statuses_since(0.0)
    flagged = [st for st in statuses if st.level == bytes([2]) and "thermal camera" in st.message]
    assert flagged, [st.message for st in statuses]
    assert _values(flagged[0])["state"].startswith("lost (thermal camera")
    _assert_clean_exit(s)


def test_a_stalled_thermal_camera_makes_the_target_lost(session, trained_checkpoint, truth):
    s = session
    node = s.start_node(**_node_params(trained_checkpoint, initial_box=truth[0].tolist(),
                                       camera_timeout=0.5, diagnostics_period=0.5,
                                       target_id="hot"))
    s.wait_until_active()
    camera = s.start_camera("--frames", "90", "--rate", "10", "--hold-first", "0.5", "--loop",
                            "--thermal-pause", "3.0", "5.0", "--duration", "11.0")
    assert s.spin_until(lambda: camera.proc.poll() is not None, 60), camera.describe()
    s.spin_for(1.0)

    frames = camera.frames()
    paused = sorted(stamp for stamp, (_, what) in frames.items() if "thermal_paused" in what)
    assert paused, "the camera did not pause its thermal stream"
    messages = [m for _, m in s.tracked]
    first_lost = next((i for i, m in enumerate(messages) if "thermal camera" in m.reason), None)
    assert first_lost is not None, f"no LOST naming the thermal camera; {s.describe()}"
    event = messages[first_lost]
    assert event.state == LOST and "sent no image" in event.reason
    assert event.target_id == "hot" and event.width > 0  # keeps the last box
    before, after = messages[:first_lost], messages[first_lost + 1:]
    assert any(m.state == TRACKING for m in before)
    # When the thermal camera is back the target stays LOST, saying why, until a new target
    # is set (before: TRACKING with a box grown over the image).
    resumed = [m for m in after if _stamp_ns(m.header.stamp) > paused[-1]
               and _stamp_ns(m.header.stamp) in frames]
    assert len(resumed) >= 5, "no outputs after the thermal camera came back"
    assert all(m.state == LOST and "set a new target" in m.reason for m in resumed), [
        (m.state, m.reason) for m in resumed]
    assert {m.target_id for m in resumed} == {"hot"}

    statuses = s.statuses_since(0.0)
    stalled = [i for i, st in enumerate(statuses) if st.level == bytes([2])
               and "thermal camera" in st.message and "rgb camera" not in st.message]
    assert stalled, [st.message for st in statuses]
    assert _values(statuses[stalled[0]])["state"].startswith("lost (thermal camera")
    recovered = [_values(st)["state"] for st in statuses[stalled[-1] + 1:]]
    assert "lost" in recovered, f"diagnostics after the camera returned: {recovered}"
    assert node.log_contains("thermal camera") and node.log_contains("is back")
    _assert_clean_exit(s)


def test_lifecycle_over_services_with_a_bad_parameter_and_compressed_images(
        session, trained_checkpoint, truth):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    s = session
    node = s.start_node(**_node_params(trained_checkpoint, autostart=False, slop=5.0,
                                       initial_box=truth[0].tolist(),
                                       rgb_transport="compressed",
                                       thermal_transport="compressed"))

    def state() -> str:
        return s.call(GetState, "rgbt_tracker/get_state", GetState.Request()).current_state.label

    def change(transition_id: int) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return s.call(ChangeState, "rgbt_tracker/change_state", request).success

    client = s.node.create_client(GetState, f"{s.ns}/rgbt_tracker/get_state")
    assert s.spin_until(client.service_is_ready, NODE_READY_S), s.describe()
    assert state() == "unconfigured"
    # A transition invalid in this state is answered (failure), not left to time out.
    asked = time.monotonic()
    assert not change(Transition.TRANSITION_ACTIVATE)
    assert time.monotonic() - asked < 10 and state() == "unconfigured"
    assert s.spin_until(lambda: node.log_contains("is not valid in state 'unconfigured'"),
                        WAIT_S)
    assert not change(Transition.TRANSITION_CONFIGURE)  # slop 5.0 is out of range
    assert state() == "unconfigured" and node.proc.poll() is None
    assert s.spin_until(lambda: node.log_contains("configure failed"), WAIT_S)
    assert node.log_contains("slop"), node.describe()

    fix = Parameter(name="slop", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                       double_value=0.015))
    result = s.call(SetParameters, "rgbt_tracker/set_parameters",
                    SetParameters.Request(parameters=[fix]))
    assert result.results[0].successful, result.results[0].reason
    assert change(Transition.TRANSITION_CONFIGURE) and state() == "inactive"
    assert change(Transition.TRANSITION_ACTIVATE) and state() == "active"
    camera = s.start_camera("--frames", "90", "--rate", "10", "--loop", "--duration", "60",
                            "--transport", "compressed")  # JPEG RGB, 16-bit PNG thermal
    assert s.spin_until(lambda: sum(m.state == TRACKING for _, m in s.tracked) >= 3, WAIT_S), (
        s.describe())

    # Live parameters take effect at once (and are logged); the others are refused while
    # active, with the reason.
    def set_parameter(name, value):
        if isinstance(value, str):
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        return s.call(SetParameters, "rgbt_tracker/set_parameters", SetParameters.Request(
            parameters=[Parameter(name=name, value=pv)])).results[0]

    start = time.monotonic()
    result = set_parameter("lost_threshold", 0.995)
    assert result.successful, result.reason
    assert s.spin_until(lambda: node.log_contains("parameter lost_threshold changed"), WAIT_S)
    assert s.spin_until(lambda: sum("lost_threshold" in m.reason for m in s.messages_since(start))
                        >= 3, WAIT_S), s.describe()
    assert set_parameter("lost_threshold", 0.25).successful
    result = set_parameter("model", "ainet_256")
    assert not result.successful and "read at configure" in result.reason, result.reason
    result = set_parameter("rgb_topic", "other/image")
    assert not result.successful and "while active" in result.reason, result.reason

    assert change(Transition.TRANSITION_DEACTIVATE) and state() == "inactive"
    s.spin_for(0.5)
    start = time.monotonic()
    s.spin_for(1.5)
    assert s.messages_since(start) == [], "publishing while inactive"

    start = time.monotonic()
    assert change(Transition.TRANSITION_ACTIVATE)
    # The target is kept across deactivate/activate; after a pause longer than
    # camera_timeout it is LOST, saying why (the target moved meanwhile).
    assert s.spin_until(lambda: len(s.messages_since(start)) >= 3, WAIT_S), s.describe()
    after = s.messages_since(start)
    assert after[0].state == LOST and "no image pair for" in after[0].reason, [
        (m.state, m.reason) for m in after]
    assert {m.state for m in after} == {LOST} and {m.target_id for m in after} == {"target"}
    assert change(Transition.TRANSITION_DEACTIVATE) and change(Transition.TRANSITION_CLEANUP)
    assert state() == "unconfigured" and camera.proc.poll() is None
    # Lifecycle shutdown ends the process (before: finalized, and the process kept running).
    assert change(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    try:
        code = node.proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node kept running after lifecycle shutdown; {node.describe()}")
    assert code == 0, node.describe()
    _assert_clean_exit(s)


def test_model_failures_are_published_as_error_with_the_reason(session, trained_checkpoint,
                                                               truth):
    s = session
    node = s.start_node(fault="raise", **_node_params(trained_checkpoint,
                                                      initial_box=truth[0].tolist(),
                                                      diagnostics_period=0.5))
    s.wait_until_active()
    camera = s.start_camera("--frames", "30", "--rate", "10", "--hold-first", "0.5")
    assert s.spin_until(lambda: sum(m.state == ERROR for _, m in s.tracked) >= 5, WAIT_S), (
        s.describe())
    errors = [m for _, m in s.tracked if m.state == ERROR]
    assert all("model error: RuntimeError: injected model failure" in m.reason for m in errors)
    assert errors[0].width > 0 and errors[0].target_id == "target"  # the last box, kept
    assert s.spin_until(lambda: any(st.level == bytes([2]) and "model failed" in st.message
                                    for st in s.statuses_since(0.0)), WAIT_S), s.describe()
    assert node.log_contains("published as ERROR")
    camera.proc.wait(timeout=60)
    _assert_clean_exit(s)


def test_a_slow_model_is_reported_on_diagnostics(session, trained_checkpoint, truth):
    s = session
    s.start_node(fault="slow:2.2", **_node_params(trained_checkpoint,
                                                  initial_box=truth[0].tolist(),
                                                  diagnostics_period=2.0,
                                                  latency_budget=1.0))
    s.wait_until_active()
    s.start_camera("--frames", "90", "--rate", "10", "--hold-first", "0.5", "--loop",
                   "--duration", "20")

    def warned():
        return [st for st in s.statuses_since(0.0) if st.level == bytes([1])
                and "answered" in st.message]

    assert s.spin_until(lambda: bool(warned()), 40), [
        st.message for st in s.statuses_since(0.0)]
    status = warned()[-1]
    assert "too slow for the cameras" in status.message
    values = _values(status)
    assert int(values["answered_pairs"]) < int(values["offered_pairs"]) / 2, values
    assert s.spin_until(lambda: any("latency_budget" in st.message
                                    for st in s.statuses_since(0.0)), 30), [
        st.message for st in s.statuses_since(0.0)]
    _assert_clean_exit(s)


def test_a_failed_initialisation_is_answered_and_names_the_active_target(
        session, trained_checkpoint, truth):
    s = session
    s.start_node(fault="init-fails-width:77", **_node_params(trained_checkpoint,
                                                             initial_box=truth[0].tolist(),
                                                             target_id="first"))
    s.wait_until_active()
    s.start_camera("--frames", "90", "--rate", "10", "--loop", "--duration", "40")
    assert s.spin_until(lambda: sum(m.state == TRACKING for _, m in s.tracked) >= 3, WAIT_S), (
        s.describe())
    request = SetTarget.Request(target_id="second")
    request.x, request.y, request.width, request.height = 20.0, 20.0, 77.0, 40.0
    response = s.call(SetTarget, "set_target", request)
    assert not response.success, response.message
    assert "injected initialisation failure" in response.message
    assert "'first' stays active" in response.message
    start = time.monotonic()
    s.spin_for(1.5)
    after = s.messages_since(start)
    assert after and {m.target_id for m in after} == {"first"}
    _assert_clean_exit(s)


def test_without_cuda_fallback_fail_exits_at_once_naming_the_flag(session, trained_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    s = session
    node = s.start_node(**{**_node_params(trained_checkpoint), "device": "cuda:0",
                           "device_fallback": "fail"})
    try:
        code = node.proc.wait(timeout=NODE_READY_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the node sat unconfigured instead of exiting; {node.describe()}")
    assert code == 1 and node.log_contains("device_fallback:=cpu"), node.describe()


def test_qos_overrides_for_images_and_outputs(session, trained_checkpoint, truth):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    s = session
    overrides = {
        f"qos_overrides.{s.ns}/rgb/image.subscription.reliability": "reliable",
        f"qos_overrides.{s.ns}/thermal/image.subscription.reliability": "reliable",
        f"qos_overrides.{s.ns}/tracked_object.publisher.durability": "transient_local",
    }
    s.start_node(**_node_params(trained_checkpoint, initial_box=truth[0].tolist()), **overrides)
    s.wait_until_active()
    s.start_camera("--frames", "30", "--rate", "10", "--hold-first", "0.5", "--qos", "reliable")
    assert s.spin_until(lambda: sum(m.state == TRACKING for _, m in s.tracked) >= 3, WAIT_S), (
        s.describe())
    for topic in ("rgb/image", "thermal/image"):
        [info] = [i for i in s.node.get_subscriptions_info_by_topic(f"{s.ns}/{topic}")
                  if i.node_name == "rgbt_tracker"]
        assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, topic
    [info] = [i for i in s.node.get_publishers_info_by_topic(f"{s.ns}/tracked_object")
              if i.node_name == "rgbt_tracker"]
    assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    _assert_clean_exit(s)
