"""The tracker's parameter schema: one table of names, types, defaults, ranges, descriptions
and when a change takes effect, and the checks that turn raw values into :class:`NodeParameters`.

Everything that lists parameters comes from :data:`SPECS`: the node's declarations
(ros/parameters.py), `rgbt-track node`'s options (cli/node.py), parameter_text's kinds, the
generated docs/node.md and the checks of the platform files. Neither ROS, numpy nor torch is
imported here (launch files import it on a robot). Double and double-array parameters accept
integers (``slop: 0`` or ``initial_box:=[100,80,40,40]`` are what people type) and are
converted to float here.

When a change takes effect (``ParamSpec.when``):

* ``live``: at once, also while the node is active (thresholds, slop, offsets, budgets, ...);
* ``activate``: refused while active; read at the next activate (topics, QoS, inputs);
* ``configure``: refused unless the node is unconfigured; read at configure (model, device).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rgbt_tracking_ros.defaults import DEFAULT_MODEL, TRACKER_POLICIES
from rgbt_tracking_ros.sync import PairingConfig

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

IMAGE_QOS_CHOICES = ("sensor_data", "reliable", "system_default")
TRANSPORT_CHOICES = ("raw", "compressed")
FALLBACK_CHOICES = ("cpu", "fail")
THERMAL_MODE_CHOICES = ("minmax", "fixed")
CLICK_TYPE_CHOICES = ("point_stamped", "point")
TIME_OFFSET_CHOICES = ("off", "report", "apply")  # rgbt_tracking_ros.timing.monitor.MODES
LIVE, ACTIVATE, CONFIGURE = "live", "activate", "configure"
WHEN_TEXT = {
    LIVE: "at once, also while active",
    ACTIVATE: "at the next activate (refused while active)",
    CONFIGURE: "at the next configure (refused unless unconfigured)",
}


class ParameterError(ValueError):
    """Invalid parameter values; the message lists every problem found."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: kind is "string", "bool", "int", "double" or "double[]"; when is LIVE,
    ACTIVATE or CONFIGURE (see the module docstring)."""

    name: str
    kind: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    lengths: tuple[int, ...] = ()
    when: str = LIVE

    @property
    def live(self) -> bool:
        return self.when == LIVE


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("model", "string", "", "Registered model name (e.g. ainet_256) or path of a model "
              f"YAML config; empty = the model a checkpoint in this package's own format names, "
              f"or without a checkpoint the default model {DEFAULT_MODEL}", when=CONFIGURE),
    ParamSpec("checkpoint", "string", "", "Weights file; empty = the model's shipped weights "
              "(compact_rgbt has them), else its initial (untrained) weights", when=CONFIGURE),
    ParamSpec("device", "string", "cuda:0", "torch device: cuda, cuda:N or cpu",
              when=CONFIGURE),
    ParamSpec("device_fallback", "string", "cpu", "When the device is unavailable: 'cpu' runs "
              "on the CPU with one warning, 'fail' makes configure fail (with autostart the "
              "process then exits, naming device_fallback:=cpu as the fix)",
              choices=FALLBACK_CHOICES, when=CONFIGURE),
    ParamSpec("half", "bool", False, "fp16 inference on CUDA (ignored, with a warning, on CPU)",
              when=CONFIGURE),
    ParamSpec("rgb_topic", "string", "rgb/image", "RGB image topic", when=ACTIVATE),
    ParamSpec("thermal_topic", "string", "thermal/image", "Thermal image topic", when=ACTIVATE),
    ParamSpec("rgb_transport", "string", "raw", "'raw': sensor_msgs/Image on rgb_topic; "
              "'compressed': sensor_msgs/CompressedImage on <rgb_topic>/compressed",
              choices=TRANSPORT_CHOICES, when=ACTIVATE),
    ParamSpec("thermal_transport", "string", "raw", "'raw' or 'compressed', as rgb_transport "
              "(16-bit PNG keeps radiometric counts)", choices=TRANSPORT_CHOICES, when=ACTIVATE),
    ParamSpec("image_qos", "string", "sensor_data", "Image subscription QoS: 'sensor_data' "
              "(best effort, receives from any camera), 'reliable' (gets nothing from a "
              "best-effort camera) or 'system_default'; qos_overrides.<topic>.subscription.* "
              "parameters override single policies", choices=IMAGE_QOS_CHOICES, when=ACTIVATE),
    ParamSpec("queue_size", "int", 10, "Pairing queue per camera, image subscription depth and "
              "the most image pairs waiting for the tracker (see max_pair_wait)",
              range=(1, 100), when=ACTIVATE),
    ParamSpec("slop", "double", 0.015, "Pairing tolerance in seconds; keep it below half the "
              "faster camera's period", range=(0.0, 1.0)),
    ParamSpec("rgb_offset", "double", 0.0, "Seconds added to every RGB stamp before pairing "
              "(constant clock offset)", range=(-1e5, 1e5)),
    ParamSpec("thermal_offset", "double", 0.0, "Seconds added to every thermal stamp before "
              "pairing (thermal stamped 0.15 s late: -0.15)", range=(-1e5, 1e5)),
    ParamSpec("jump_back_tolerance", "double", 0.5, "Stamps going back more than this many "
              "seconds (bag loop, restarted camera) reset the pairing and mark the target LOST; "
              "must be > 0", range=(0.0, 60.0)),
    ParamSpec("use_message_filters", "bool", True, "Pair with message_filters' "
              "ApproximateTimeSynchronizer when it is installed, both offsets are 0 and "
              "time_offset_estimation is not 'apply'; otherwise the package's own pairer "
              "(closest match, offsets, counters)", when=ACTIVATE),
    ParamSpec("time_offset_estimation", "string", "report", "Camera stamp offset found from the "
              "images (docs/timing.md): 'off'; 'report' (in /diagnostics, WARN beyond half the "
              "slop); 'apply' (also set thermal_offset to it, with the package's own pairer)",
              choices=TIME_OFFSET_CHOICES, when=ACTIVATE),
    ParamSpec("lost_threshold", "double", -1.0, "Confidence below which the state is LOST; "
              "negative = the model's own (config/models/<model>.yaml, tracker.lost_threshold)",
              range=(-1.0, 1.0)),
    ParamSpec("tracker_policy", "string", TRACKER_POLICIES[0], "'robust': a low-confidence "
              "prediction does not move the target, the search widens while LOST and the whole "
              "frame is searched now and then; 'official': every prediction is followed, as the "
              "AINet and DMTrack papers do (docs/tracking-state.md)", choices=TRACKER_POLICIES,
              when=CONFIGURE),
    ParamSpec("thermal_mode", "string", "minmax", "16-bit/float thermal to 8 bit: 'minmax' "
              "per frame or 'fixed' over thermal_range", choices=THERMAL_MODE_CHOICES,
              when=CONFIGURE),
    ParamSpec("thermal_range", "double[]", [], "[lo, hi] raw thermal values mapped to 0..255 "
              "with thermal_mode 'fixed'", lengths=(0, 2), when=CONFIGURE),
    ParamSpec("homography", "double[]", [], "9 values, row-major 3x3 thermal pixel -> RGB pixel; "
              "empty = the thermal image is resized onto the RGB image", lengths=(0, 9),
              when=CONFIGURE),
    ParamSpec("initial_box", "double[]", [], "[x, y, w, h] in RGB pixels: start tracking it on "
              "the first image pair after activate; empty = wait for set_target, a click or a "
              "detection", lengths=(0, 4), when=ACTIVATE),
    ParamSpec("target_id", "string", "target", "Target id in the outputs (of targets set later)"),
    ParamSpec("min_box_size", "double", 4.0, "Boxes (set_target, clicks, detections) narrower "
              "or lower than this many pixels are refused: too small to track",
              range=(1.0, 1e4)),
    ParamSpec("click_topic", "string", "rgb/image_mouse_left", "Clicks that set the target "
              "(rqt_image_view publishes on <image topic>_mouse_left); empty = none",
              when=ACTIVATE),
    ParamSpec("click_type", "string", "point_stamped", "Message type on click_topic: "
              "'point_stamped' (geometry_msgs/PointStamped) or 'point' (geometry_msgs/Point)",
              choices=CLICK_TYPE_CHOICES, when=ACTIVATE),
    ParamSpec("click_box_size", "double[]", [64.0, 64.0], "[w, h] of the box centred on a click "
              "(a detection containing the click is used instead when there is one)",
              lengths=(2,)),
    ParamSpec("detection_topic", "string", "", "vision_msgs/Detection2DArray topic; the best "
              "detection re-initialises the target while LOST or waiting; empty = none",
              when=ACTIVATE),
    ParamSpec("detection_min_score", "double", 0.5, "Minimum detection score for "
              "re-initialisation", range=(0.0, 1.0)),
    ParamSpec("detection_class", "string", "", "Only detections of this class id "
              "re-initialise; empty = any class"),
    ParamSpec("camera_timeout", "double", 1.0, "Seconds without a usable image from a camera "
              "(none, or only malformed ones) before the target is LOST (STOPPED without a "
              "target) and diagnostics name the camera; also the longest gap between image "
              "pair stamps the tracker bridges", range=(0.05, 60.0)),
    ParamSpec("latency_budget", "double", 0.5, "Seconds from an image's stamp to its output "
              "above which diagnostics go WARN, naming the latency", range=(0.001, 60.0)),
    ParamSpec("max_pair_wait", "double", 0.25, "Seconds an image pair may wait for the "
              "tracker. After a slow step (the first frame's setup, a full-frame search) it "
              "answers the pairs that waited no longer, oldest first, and drops older ones "
              "(counted as stale); 0 = only the newest pair waits, the lowest latency when the "
              "model is slower than the cameras. At most queue_size pairs wait",
              range=(0.0, 10.0)),
    ParamSpec("min_answered_ratio", "double", 0.5, "Diagnostics go WARN when the tracker "
              "answers fewer than this fraction of the image pairs that arrive (the model is "
              "too slow for the cameras)", range=(0.0, 1.0)),
    ParamSpec("diagnostics_period", "double", 1.0, "Seconds between /diagnostics messages",
              range=(0.1, 60.0)),
    ParamSpec("autostart", "bool", True, "Configure and activate on start; false = wait for "
              "lifecycle transitions", when=CONFIGURE),
)
SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in SPECS}


@dataclass(frozen=True)
class NodeParameters:
    """Validated values (see SPECS for when each is read)."""

    model: str
    checkpoint: str
    device: str
    device_fallback: str
    half: bool
    rgb_topic: str
    thermal_topic: str
    rgb_transport: str
    thermal_transport: str
    image_qos: str
    queue_size: int
    slop: float
    rgb_offset: float
    thermal_offset: float
    jump_back_tolerance: float
    use_message_filters: bool
    time_offset_estimation: str
    lost_threshold: float
    tracker_policy: str
    thermal_mode: str
    thermal_range: tuple[float, ...]
    homography: tuple[float, ...]
    initial_box: tuple[float, ...]
    target_id: str
    min_box_size: float
    click_topic: str
    click_type: str
    click_box_size: tuple[float, ...]
    detection_topic: str
    detection_min_score: float
    detection_class: str
    camera_timeout: float
    latency_budget: float
    max_pair_wait: float
    min_answered_ratio: float
    diagnostics_period: float
    autostart: bool

    def pairing_config(self) -> PairingConfig:
        return PairingConfig(slop=self.slop, queue_size=self.queue_size,
                             rgb_offset=self.rgb_offset, thermal_offset=self.thermal_offset,
                             jump_back_tolerance=self.jump_back_tolerance)

    def homography_matrix(self) -> npt.NDArray[np.float64] | None:
        import numpy as np

        return np.array(self.homography, np.float64).reshape(3, 3) if self.homography else None

    def thermal_value_range(self) -> tuple[float, float] | None:
        """The range the tracker takes: only with mode 'fixed' (it refuses one otherwise)."""
        if self.thermal_mode != "fixed":
            return None
        return self.thermal_range[0], self.thermal_range[1]

    def model_lost_threshold(self) -> float | None:
        """The tracker's lost_threshold: None (the model's own) for a negative value."""
        return self.lost_threshold if self.lost_threshold >= 0 else None

    def tracker_config(self, device: str, half: bool) -> Any:
        from rgbt_tracking_ros.tracker import TrackerConfig

        return TrackerConfig(lost_threshold=self.model_lost_threshold(), policy=self.tracker_policy,
                             device=device, half=half,
                             thermal_mode=self.thermal_mode,
                             thermal_range=self.thermal_value_range(),
                             homography=self.homography_matrix())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """The value in its Python type (ints become floats for doubles, None an empty array) and
    an error naming the problem, or None."""
    name = spec.name
    if spec.kind == "string":
        if not isinstance(value, str):
            return value, f"{name} must be a string, got {value!r}"
        if spec.choices and value not in spec.choices:
            return value, f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
        return value, None
    if spec.kind == "bool":
        if not isinstance(value, bool):
            return value, f"{name} must be true or false, got {value!r}"
        return value, None
    if spec.kind == "int":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            return value, f"{name} must be an integer, got {value!r}"
        return value, _range_error(spec, value)
    if spec.kind == "double":
        if not _is_number(value) or not math.isfinite(value):
            return value, f"{name} must be a finite number, got {value!r}"
        return float(value), _range_error(spec, value)
    if value is None:
        value = []
    if not isinstance(value, (list, tuple)) and not hasattr(value, "tolist"):
        return value, f"{name} must be a list of numbers, got {value!r}"
    values = list(value.tolist() if hasattr(value, "tolist") else value)
    if not all(_is_number(v) and math.isfinite(v) for v in values):
        return value, f"{name} must be a list of finite numbers, got {values!r}"
    if spec.lengths and len(values) not in spec.lengths:
        counts = " or ".join(str(n) for n in spec.lengths)
        return value, f"{name} needs {counts} values, got {len(values)}: {values!r}"
    return tuple(float(v) for v in values), None


def _range_error(spec: ParamSpec, value: float) -> str | None:
    if spec.range is None:
        return None
    low, high = spec.range
    if not low <= value <= high:
        return f"{spec.name} must be in [{low:g}, {high:g}], got {value!r}"
    return None


def parse_parameters(values: Mapping[str, Any]) -> tuple[NodeParameters, list[str]]:
    """Validate every value and the combinations; returns the parameters and warnings.

    Raises ParameterError listing all problems, so one configure attempt reports them all.
    """
    errors: list[str] = []
    clean: dict[str, Any] = {}
    for spec in SPECS:
        value, error = check_value(spec, values.get(spec.name, spec.default))
        if error:
            errors.append(error)
        clean[spec.name] = value
    warnings: list[str] = []
    if not errors:
        _check_combinations(clean, errors, warnings)
    if errors:
        raise ParameterError("invalid parameters: " + "; ".join(errors))
    return NodeParameters(**clean), warnings


def _check_combinations(values: dict[str, Any], errors: list[str], warnings: list[str]) -> None:
    if values["jump_back_tolerance"] <= 0:
        errors.append("jump_back_tolerance must be > 0 s")
    if not values["device"].strip():
        errors.append("device must not be empty (cuda:0 or cpu)")
    if not values["rgb_topic"].strip() or not values["thermal_topic"].strip():
        errors.append("rgb_topic and thermal_topic must not be empty")
    if values["rgb_topic"] == values["thermal_topic"]:
        errors.append(f"rgb_topic and thermal_topic are both {values['rgb_topic']!r}")
    thermal_range = values["thermal_range"]
    if values["thermal_mode"] == "fixed":
        if len(thermal_range) != 2 or not thermal_range[1] > thermal_range[0]:
            errors.append(f"thermal_mode 'fixed' needs thermal_range [lo, hi] with hi > lo, "
                          f"got {list(thermal_range)}")
    elif thermal_range:
        warnings.append("thermal_range is ignored with thermal_mode 'minmax'")
    if values["homography"]:
        import numpy as np

        from rgbt_tracking_ros.tracker.preprocess import check_homography

        try:
            check_homography(np.array(values["homography"]).reshape(3, 3))
        except ValueError as error:
            errors.append(f"homography: {error}")
    box = values["initial_box"]
    if box and not (box[2] > 0 and box[3] > 0):
        errors.append(f"initial_box {list(box)} needs a positive width and height")
    if not all(v > 0 for v in values["click_box_size"]):
        errors.append(f"click_box_size must be positive, got {list(values['click_box_size'])}")
