"""The package's own interfaces over real DDS, between processes.

A helper process (this file run as a script) publishes a `TrackedObject`, serves
`SetTarget`, or publishes a 1 MB image; the test process subscribes or calls and checks
every field. Each test runs in its own ROS domain with the Fast DDS profile
`config/fastdds_large_data.xml`, discovery limited to this host.

Needs rclpy and the built interfaces: `make ros`, then `. install/ros_env.sh` (`make test`
does both), or a sourced colcon install space. Without them the module is skipped, unless
RGBT_REQUIRE_ROS=1 (as `make test` sets), where it fails.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HELPER_LIFETIME_S = 90.0  # a helper stops by itself after this, or when its stdin closes
WAIT_S = 30.0  # bound on every wait of the tests (discovery, first message, service)
LARGE_SHM_BYTES = 16 * 1024 * 1024
PROFILE_NAME = "fastdds_large_data.xml"

# One message with every field set to a value that differs from its default.
STAMP = {"sec": 1_700_000_123, "nanosec": 456_789_012}
FRAME_ID = "rgb_camera_optical_frame"
FIELDS = {
    "state": 2,  # STATE_LOST
    "x": 12.25,
    "y": -3.5,
    "width": 64.125,
    "height": 48.0,
    "confidence": 0.8125,  # exact in float32
    "age": 4_000_000_000,  # beyond int32
    "frames_since_seen": 7,
    "reason": "confidence below lost_threshold",
    "pair_dt": {"sec": 1, "nanosec": 12_500_000},
}
IMAGE_SHAPE = (512, 640, 3)  # rgb8: 983,040 bytes, above Fast DDS's default 512 KB SHM segment


def _image_bytes() -> bytes:
    pattern = bytes(range(251))  # a prime length, so rows differ
    n = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
    return (pattern * (n // len(pattern) + 1))[:n]


# --------------------------------------------------------------------------------------
# Helper process: `python test_interfaces.py ROLE NAME [JSON]`
# --------------------------------------------------------------------------------------


def _stop_when_parent_goes() -> threading.Event:
    """An event set when stdin closes (the test ended or died) or after HELPER_LIFETIME_S.
    The helper then shuts down cleanly, so Fast DDS removes its shared-memory files; it is
    killed outright only if that hangs."""
    stop = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    lifetime = threading.Timer(HELPER_LIFETIME_S, stop.set)
    lifetime.daemon = True
    lifetime.start()
    hard_stop = threading.Timer(HELPER_LIFETIME_S + 15, lambda: os._exit(3))
    hard_stop.daemon = True
    hard_stop.start()
    return stop


def _mapped_shm_segments() -> dict[str, int]:
    """Bytes mapped per Fast DDS shared-memory data segment of this process (Linux)."""
    sizes: dict[str, int] = {}
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split()
            # Fast DDS 2.x names its segments fastrtps_*, 3.x fastdds_*.
            if len(parts) < 6 or not parts[5].startswith(("/dev/shm/fastrtps_",
                                                          "/dev/shm/fastdds_")):
                continue
            path = parts[5]
            if "_port" in path or path.endswith("_el"):
                continue
            start, end = (int(v, 16) for v in parts[0].split("-"))
            sizes[path] = sizes.get(path, 0) + end - start
    return sizes


def _helper_main(role: str, name: str, spec: dict) -> None:
    stop = _stop_when_parent_goes()
    import rclpy
    from builtin_interfaces.msg import Duration, Time
    from std_msgs.msg import Header

    from rgbt_tracking_ros.msg import TrackedObject
    from rgbt_tracking_ros.srv import SetTarget

    rclpy.init()  # ROS_DOMAIN_ID from the environment
    node = rclpy.create_node(f"rgbt_test_{role}")

    if role == "publish":
        msg = TrackedObject()
        msg.header = Header(stamp=Time(**spec["stamp"]), frame_id=spec["frame_id"])
        msg.target_id = spec["target_id"]
        for key, value in spec["fields"].items():
            setattr(msg, key, Duration(**value) if key == "pair_dt" else value)
        pub = node.create_publisher(TrackedObject, name, 10)
        node.create_timer(0.1, lambda: pub.publish(msg))
    elif role == "serve":

        def handle(request, response):
            if request.width <= 0 or request.height <= 0:
                response.success = False
                response.message = "box must have a positive width and height"
                return response
            response.success = True
            response.message = json.dumps({
                "stamp": {"sec": request.header.stamp.sec,
                          "nanosec": request.header.stamp.nanosec},
                "frame_id": request.header.frame_id,
                "box": [request.x, request.y, request.width, request.height],
                "target_id": request.target_id,
            })
            return response

        node.create_service(SetTarget, name, handle)
    elif role == "publish_image":
        from sensor_msgs.msg import Image

        height, width, channels = IMAGE_SHAPE
        image = Image(height=height, width=width, encoding="rgb8", step=width * channels)
        image.header.frame_id = spec["frame_id"]
        image.data = _image_bytes()
        pub = node.create_publisher(Image, name, 1)
        reported = []

        def send() -> None:
            pub.publish(image)
            if not reported and pub.get_subscription_count() > 0:
                reported.append(True)
                print("SHM " + json.dumps(_mapped_shm_segments()), flush=True)

        node.create_timer(0.2, send)
    else:
        raise SystemExit(f"unknown role {role}")

    print("READY", flush=True)
    try:
        while not stop.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown()
        os._exit(0)


if __name__ == "__main__":
    _helper_main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else {})
    sys.exit(0)


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------

import pytest  # noqa: E402
from ros_availability import require_ros  # noqa: E402

require_ros(module_level=True)

# lark (used by rosidl's parser) imports deprecated modules on Python 3.11.
pytestmark = pytest.mark.filterwarnings("ignore:module 'sre_:DeprecationWarning")

import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from rgbt_tracking_ros.msg import TrackedObject  # noqa: E402
from rgbt_tracking_ros.srv import SetTarget  # noqa: E402

_DOMAIN_COUNTER = itertools.count()


def _domain_id() -> int:
    """A domain per test, from the pid and a counter. Ids 10-100: on Linux, ids above 101
    put DDS ports into the ephemeral port range."""
    return 10 + (os.getpid() + next(_DOMAIN_COUNTER)) % 91


def _profile_path() -> Path:
    here = Path(__file__).resolve().parents[1] / "config" / PROFILE_NAME
    if here.is_file():
        return here
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        installed = Path(prefix) / "share" / "rgbt_tracking_ros" / "config" / PROFILE_NAME
        if prefix and installed.is_file():
            return installed
    pytest.fail(f"{PROFILE_NAME} not found in config/ nor in any share/rgbt_tracking_ros/config")


class Helper:
    """A helper process; its stdout lines are read on a thread."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.other: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append),
                         daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def wait_for(self, tag: str, timeout: float) -> str:
        """The rest of the first stdout line that starts with `tag` (other lines, such as
        Fast DDS's own log, are kept for the failure message)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"helper sent no {tag!r} line in {timeout:.0f} s; {self.describe()}")
            if line.split(" ", 1)[0] == tag:
                return line[len(tag):].strip()
            self.other.append(line)

    def describe(self) -> str:
        code = self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        out = " | ".join(self.other[-10:]) or "(empty)"
        err = " | ".join(self.stderr[-20:]) or "(empty)"
        return f"helper {state}; stdout: {out}; stderr: {err}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the helper shuts down on EOF
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)


@pytest.fixture
def dds(monkeypatch):
    """A ROS domain of its own: env for helpers, a node in this process, cleanup of both."""
    domain = _domain_id()
    settings = {
        "ROS_DOMAIN_ID": str(domain),
        # Fast DDS 2.x (Humble, Jazzy) reads FASTRTPS_..., Fast DDS 3 (Kilted) FASTDDS_...
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(_profile_path()),
        "FASTDDS_DEFAULT_PROFILES_FILE": str(_profile_path()),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # discovery stays on this host
        "PYTHONUNBUFFERED": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    env = dict(os.environ)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node(f"rgbt_test_{uuid.uuid4().hex[:8]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    helpers: list[Helper] = []

    class DDS:
        def __init__(self):
            self.node, self.executor, self.domain = node, executor, domain
            self.nonce = uuid.uuid4().hex[:10]

        def start(self, role: str, name: str, spec: dict | None = None) -> Helper:
            helper = Helper([role, name, json.dumps(spec or {})], env)
            helpers.append(helper)
            helper.wait_for("READY", WAIT_S)
            return helper

        def spin_until(self, done, timeout: float = WAIT_S) -> bool:
            deadline = time.monotonic() + timeout
            while not done() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            return done()

    try:
        yield DDS()
    finally:
        for helper in helpers:
            helper.stop()
        executor.shutdown(timeout_sec=5)
        node.destroy_node()
        rclpy.shutdown(context=context)


def _as_dict(msg) -> dict:
    """A message as nested dicts, every field included (compares whole messages)."""
    if not hasattr(msg, "get_fields_and_field_types"):
        return msg
    return {name: _as_dict(getattr(msg, name)) for name in msg.get_fields_and_field_types()}


def test_message_definitions():
    assert (TrackedObject.STATE_NEW, TrackedObject.STATE_TRACKING, TrackedObject.STATE_LOST,
            TrackedObject.STATE_STOPPED, TrackedObject.STATE_ERROR) == (0, 1, 2, 3, 4)
    fields = TrackedObject.get_fields_and_field_types()
    assert fields["header"] == "std_msgs/Header"
    assert fields["pair_dt"] == "builtin_interfaces/Duration"
    assert set(fields) == {"header", "target_id", *FIELDS}
    assert set(SetTarget.Request.get_fields_and_field_types()) == {
        "header", "x", "y", "width", "height", "target_id"}
    assert set(SetTarget.Response.get_fields_and_field_types()) == {"success", "message"}


def test_tracked_object_crosses_processes_with_every_field(dds):
    topic = f"/rgbt_test_{dds.nonce}/tracked_object"
    target_id = f"target-{dds.nonce}"
    received: list[TrackedObject] = []
    dds.node.create_subscription(TrackedObject, topic, received.append, 10)

    helper = dds.start("publish", topic, {
        "stamp": STAMP, "frame_id": FRAME_ID, "target_id": target_id, "fields": FIELDS})
    assert dds.spin_until(lambda: received), (
        f"no TrackedObject on {topic} in {WAIT_S:.0f} s (domain {dds.domain}); {helper.describe()}")

    expected = TrackedObject()
    assert _as_dict(received[0]) != _as_dict(expected), "the message arrived empty"
    got = _as_dict(received[0])
    assert got["header"] == {"stamp": STAMP, "frame_id": FRAME_ID}
    assert got["target_id"] == target_id
    for key, value in FIELDS.items():
        assert got[key] == value, f"{key}: sent {value!r}, received {got[key]!r}"
    # Every field of the message was checked above and differs from its default.
    assert set(got) == {"header", "target_id", *FIELDS}
    for key in FIELDS:
        assert got[key] != _as_dict(expected)[key], f"{key} was sent with its default value"


def test_set_target_service_across_processes(dds):
    service = f"/rgbt_test_{dds.nonce}/set_target"
    helper = dds.start("serve", service)
    client = dds.node.create_client(SetTarget, service)
    assert client.wait_for_service(timeout_sec=WAIT_S), (
        f"{service} not available in {WAIT_S:.0f} s (domain {dds.domain}); {helper.describe()}")

    def call(request: SetTarget.Request) -> SetTarget.Response:
        future = client.call_async(request)
        assert dds.spin_until(future.done), f"no response from {service}; {helper.describe()}"
        return future.result()

    request = SetTarget.Request()
    request.header.stamp.sec, request.header.stamp.nanosec = STAMP["sec"], STAMP["nanosec"]
    request.header.frame_id = FRAME_ID
    request.x, request.y, request.width, request.height = 10.5, 20.25, 30.0, 40.125
    request.target_id = f"person-{dds.nonce}"
    response = call(request)
    assert response.success, response.message
    echoed = json.loads(response.message)
    assert echoed == {
        "stamp": STAMP,
        "frame_id": FRAME_ID,
        "box": [10.5, 20.25, 30.0, 40.125],
        "target_id": f"person-{dds.nonce}",
    }

    request.width = 0.0
    response = call(request)
    assert not response.success
    assert "positive" in response.message


def test_large_data_profile_delivers_a_1mb_image(dds):
    from sensor_msgs.msg import Image

    if not Path("/proc/self/maps").is_file():
        pytest.skip("needs /proc/self/maps (Linux) to see the shared-memory segment")
    topic = f"/rgbt_test_{dds.nonce}/image"
    received: list[Image] = []
    dds.node.create_subscription(Image, topic, received.append, 1)
    helper = dds.start("publish_image", topic, {"frame_id": FRAME_ID})
    assert dds.spin_until(lambda: received), (
        f"no Image on {topic} in {WAIT_S:.0f} s (domain {dds.domain}); {helper.describe()}")

    image = received[0]
    assert (image.height, image.width, image.encoding) == (IMAGE_SHAPE[0], IMAGE_SHAPE[1], "rgb8")
    assert image.header.frame_id == FRAME_ID
    assert hashlib.sha256(bytes(image.data)).digest() == hashlib.sha256(_image_bytes()).digest()

    sizes = json.loads(helper.wait_for("SHM", WAIT_S))
    assert sizes and max(sizes.values()) >= LARGE_SHM_BYTES, (
        f"the publisher mapped no 16 MB shared-memory segment ({sizes}): "
        f"{PROFILE_NAME} was not loaded")
