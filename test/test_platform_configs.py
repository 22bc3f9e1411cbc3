"""config/drone.yaml, config/ground_robot.yaml and config/rgbt_tracking.rviz: structure,
types, ranges, the platform reasoning (camera rates vs slop, queue and timeouts), the node's
own validation, where the platform files are found (checkout, installs) and, with rclpy, what
rcl actually loads from them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from rgbt_tracking_ros import launch_support as ls
from rgbt_tracking_ros import package_files
from rgbt_tracking_ros.node_command import DEFAULT_NODE_NAME, check_topic_name, node_settings, resolve_topic
from rgbt_tracking_ros.platforms import PLATFORMS, platform_params_file
from rgbt_tracking_ros.runtime.parameters import SPECS_BY_NAME

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
KIND_TYPES = {"string": str, "bool": bool, "int": int, "double": float}
CHOICES = {
    "device_fallback": {"cpu", "fail"},
    "rgb_transport": {"raw", "compressed"},
    "thermal_transport": {"raw", "compressed"},
    "image_qos": {"sensor_data", "reliable", "system_default"},
    "thermal_mode": {"minmax", "fixed"},
    "click_type": {"point_stamped", "point"},
}


def load(platform: str) -> dict:
    document = yaml.safe_load((CONFIG / f"{platform}.yaml").read_text())
    assert list(document) == ["/**"], "one wildcard section, so renamed nodes still match"
    assert list(document["/**"]) == ["ros__parameters"]
    params = document["/**"]["ros__parameters"]
    assert isinstance(params, dict) and params
    return params


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request) -> str:
    return request.param


def test_every_platform_has_a_config_and_nothing_else_does():
    platform_files = {p.stem for p in CONFIG.glob("*.yaml")}
    assert platform_files == set(PLATFORMS)


def test_keys_are_node_parameters_with_their_types(platform):
    for name, value in load(platform).items():
        assert name in SPECS_BY_NAME, f"{platform}.yaml: {name} is not a node parameter"
        kind = SPECS_BY_NAME[name].kind
        if kind == "double[]":
            # Floats only: rcl refuses a mixed list and types an int list INTEGER_ARRAY; an
            # empty list would be read as "not set".
            assert isinstance(value, list) and value, f"{name}: {value!r}"
            assert all(type(v) is float for v in value), f"{name}: write doubles, {value!r}"
        else:
            assert type(value) is KIND_TYPES[kind], f"{platform}.yaml: {name}={value!r} is not {kind}"


def test_values_are_in_range(platform):
    p = load(platform)
    for name, allowed in CHOICES.items():
        assert p[name] in allowed, (name, p[name])
    assert p["model"] == "" and p["checkpoint"] == "", "empty: the shipped default model"
    assert p["device"] == "cpu" or p["device"].startswith("cuda")
    assert not p["half"] or p["device"].startswith("cuda"), "fp16 needs CUDA"
    assert 0 < p["slop"] < 1 and 1 <= p["queue_size"] <= 100
    assert 0 <= p["detection_min_score"] <= 1
    assert p["lost_threshold"] < 0, "the platforms use the model's own calibrated threshold"
    assert p["jump_back_tolerance"] > p["slop"]
    assert p["camera_timeout"] > 0 and p["diagnostics_period"] > 0
    if p["thermal_mode"] == "fixed":
        low, high = p["thermal_range"]
        assert 0 <= low < high <= 65535, "16-bit counts"
    else:
        assert "thermal_range" not in p, "ignored with minmax: leave it out"
    size = PLATFORMS[platform].rgb_size
    width, height = p["click_box_size"]
    assert 8 <= width <= size[0] / 4 and 8 <= height <= size[1] / 2
    assert p["rgb_topic"] != p["thermal_topic"]
    assert p["autostart"] is True


def test_topics_match_the_platform_table_and_stay_relative(platform):
    p, info = load(platform), PLATFORMS[platform]
    assert (p["rgb_topic"], p["thermal_topic"]) == (info.rgb_topic, info.thermal_topic)
    for name in ("rgb_topic", "thermal_topic"):
        assert not p[name].startswith("/"), f"{name}: relative, so namespace:= applies"
        check_topic_name(p[name], name)
    assert p["click_topic"].endswith("_mouse_left")  # what rqt_image_view publishes
    assert p["click_type"] == "point"  # rqt_image_view publishes geometry_msgs/Point


def test_pairing_fits_the_camera_rates(platform):
    p, info = load(platform), PLATFORMS[platform]
    fast, slow = max(info.rgb_hz, info.thermal_hz), min(info.rgb_hz, info.thermal_hz)
    # Never pair across to the slower camera's next frame.
    assert p["slop"] < 0.5 / slow
    if p["use_message_filters"]:
        # message_filters takes the first match within slop: only safe when at most one
        # frame of the faster camera can lie within slop.
        assert p["slop"] < 0.5 / fast
    if info.rgb_hz != info.thermal_hz:
        # Every slower frame must find its nearest faster frame (up to half a period away),
        # and only the closest-match pairer picks that one.
        assert not p["use_message_filters"]
        assert p["slop"] >= 0.5 / fast
    # The faster camera's queue spans at least one period of the slower one.
    assert p["queue_size"] / fast >= 1.0 / slow
    # A camera is STOPPED only after several of its (slower) periods without a frame.
    assert p["camera_timeout"] >= 4.0 / slow


def test_platforms_differ_where_their_cameras_and_targets_do():
    drone, ground = load("drone"), load("ground_robot")
    assert drone["slop"] <= 0.010 < ground["slop"] <= 0.05
    assert ground["camera_timeout"] > 2 / 9 and drone["camera_timeout"] < ground["camera_timeout"]
    assert drone["half"] and drone["device_fallback"] == "fail"
    assert ground["device_fallback"] == "cpu" and not ground["half"]
    assert ground["thermal_mode"] == "fixed" and drone["thermal_mode"] == "minmax"
    assert drone["queue_size"] < ground["queue_size"]
    assert drone["click_box_size"][0] * drone["click_box_size"][1] < (
        ground["click_box_size"][0] * ground["click_box_size"][1])


def test_every_non_obvious_value_has_a_comment(platform):
    """Each key sits under a comment (possibly shared with the keys just above it, with no
    blank line between), except keys whose value needs no reason."""
    obvious = {"device", "diagnostics_period", "autostart", "target_id", "detection_topic"}
    lines = (CONFIG / f"{platform}.yaml").read_text().splitlines()
    missing = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not line.startswith("    ") or stripped.startswith("#") or ":" not in stripped:
            continue
        key = stripped.split(":", 1)[0]
        above = index - 1
        while above >= 0 and lines[above].startswith("    ") and \
                not lines[above].strip().startswith("#"):
            above -= 1  # other keys of the same group
        if key not in obvious and not lines[above].strip().startswith("#"):
            missing.append(key)
    assert not missing, f"{platform}.yaml: no comment explains {missing}"


def test_the_node_accepts_the_configs_without_warnings(platform):
    parameters = pytest.importorskip("rgbt_tracking_ros.ros.parameters")
    values, warnings = parameters.parse_parameters(load(platform))
    assert warnings == []
    assert values.slop == load(platform)["slop"]


def test_rcl_loads_the_configs_for_any_namespace_and_node_name(platform):
    from test_node_command import rcl_probe

    settings = node_settings(platform=platform, namespace="fleet/unit7", node_name="other")
    probe = rcl_probe(settings.ros_arguments())
    assert probe["node"] == "/fleet/unit7/other"
    loaded = probe["params"]
    for name, value in load(platform).items():
        kind = SPECS_BY_NAME[name].kind
        rcl_type = {"string": "STRING", "bool": "BOOL", "int": "INTEGER", "double": "DOUBLE",
                    "double[]": "DOUBLE_ARRAY"}[kind]
        assert loaded[name] == [value, rcl_type], name


# --------------------------------------------------------------------------------------------
# Finding the configs in a checkout and in installs


def _fake_install(prefix: Path, *, index_marker: bool, text: str = "fake: 1\n") -> Path:
    share = prefix / "share" / "rgbt_tracking_ros"
    (share / "config").mkdir(parents=True)
    (share / "config" / "drone.yaml").write_text(text)
    if index_marker:
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages"
        marker.mkdir(parents=True)
        (marker / "rgbt_tracking_ros").write_text("")
    return share / "config" / "drone.yaml"


@pytest.fixture
def no_checkout(monkeypatch, tmp_path):
    """As installed: no source tree beside the module, no prefix but the ones a test sets."""
    monkeypatch.setattr(package_files, "SOURCE_ROOT", tmp_path / "not_a_checkout")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "empty_prefix"))
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)


def test_configs_are_found_in_the_source_tree_first(monkeypatch, tmp_path):
    installed = _fake_install(tmp_path / "install", index_marker=True)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    assert platform_params_file("drone") == ROOT / "config" / "drone.yaml"
    assert platform_params_file("ground_robot") == ROOT / "config" / "ground_robot.yaml"
    assert package_files.share_dirs()[:2] == [ROOT, installed.parents[1]]


@pytest.mark.parametrize("index_marker", [True, False], ids=["ament-index", "prefix-only"])
def test_configs_are_found_under_ament_prefix_path(no_checkout, monkeypatch, tmp_path,
                                                   index_marker):
    empty = tmp_path / "other_prefix"
    empty.mkdir()
    path = _fake_install(tmp_path / "install", index_marker=index_marker)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(empty), str(tmp_path / "install")]))
    assert platform_params_file("drone") == path


def test_configs_are_found_under_sys_prefix(no_checkout, monkeypatch, tmp_path):
    path = _fake_install(tmp_path / "venv", index_marker=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    assert platform_params_file("drone") == path


def test_a_missing_config_names_where_it_looked(no_checkout, monkeypatch, tmp_path):
    _fake_install(tmp_path / "install", index_marker=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    with pytest.raises(FileNotFoundError, match=r"ground_robot\.yaml not found.*install"):
        platform_params_file("ground_robot")


def test_an_unknown_platform_lists_the_known_ones():
    with pytest.raises(ValueError, match="drone, ground_robot"):
        platform_params_file("boat")



# --------------------------------------------------------------------------------------------
# RViz


def test_rviz_config_shows_the_annotated_image():
    config = yaml.safe_load((CONFIG / ls.RVIZ_CONFIG).read_text())
    assert isinstance(config["Panels"], list)
    assert any(panel["Class"] == "rviz_common/Displays" for panel in config["Panels"])
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"]
    images = [d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/Image"]
    assert len(images) == 1 and images[0]["Enabled"] is True
    topic = images[0]["Topic"]
    assert topic["Value"] == ls.RVIZ_ANNOTATED_IMAGE_TOPIC
    # The topic the node publishes with its default name and no namespace.
    assert topic["Value"] == resolve_topic(ls.ANNOTATED_IMAGE_TOPIC, "", DEFAULT_NODE_NAME)
    # Best effort receives from a reliable and from a best-effort publisher alike.
    assert topic["Reliability Policy"] == "Best Effort"
    assert topic["Durability Policy"] == "Volatile"
