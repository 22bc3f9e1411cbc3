"""parameter_text: node parameter values from launch-argument and `-p` text (kinds from the
parameter schema), and back to the text rcl reads (checked against rcl in test_node_command)."""
from __future__ import annotations

import pytest

from rgbt_tracking_ros import parameter_text as pt
from rgbt_tracking_ros.runtime.parameters import SPECS


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), (" 1 ", True),
                                         ("0", False), ("yes", True), ("off", False)])
def test_parse_bool(text, value):
    assert pt.parse_bool(text, "rviz") is value


def test_parse_bool_refuses_other_words():
    with pytest.raises(ValueError, match=r"rviz: expected true or false, got 'maybe'"):
        pt.parse_bool("maybe", "rviz")


@pytest.mark.parametrize("text, values", [
    ("[1, 2, 3, 4]", [1.0, 2.0, 3.0, 4.0]),
    ("1,2.5,3,4", [1.0, 2.5, 3.0, 4.0]),
    ("10 20 30 40", [10.0, 20.0, 30.0, 40.0]),
    ("", []),
    ("[]", []),
])
def test_parse_float_list(text, values):
    assert pt.parse_float_list(text, "box") == values


@pytest.mark.parametrize("text, message", [
    ("[1, 2, 3", "unbalanced brackets"),
    ("[1, two, 3, 4]", "'two' is not a number"),
    ("[1, nan, 3, 4]", "not a finite number"),
    ("[1, 2, 3]", "expected 0 or 4 numbers, got 3"),
    ("[1, 2, 0, 4]", "positive width and height"),
    ("[1, 2, 3, -4]", "positive width and height"),
])
def test_parse_box_errors_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        pt.parse_box(text)


def test_parameter_values_take_the_declared_type():
    assert pt.parse_parameter_value("slop", "0") == 0.0
    assert isinstance(pt.parse_parameter_value("slop", "0"), float)
    assert pt.parse_parameter_value("queue_size", "12") == 12
    assert pt.parse_parameter_value("half", "true") is True
    assert pt.parse_parameter_value("target_id", "1") == "1"  # a string stays a string
    assert pt.parse_parameter_value("initial_box", "[10,20,30,40]") == [10.0, 20.0, 30.0, 40.0]
    assert pt.parse_parameter_value("use_sim_time", "true") is True
    with pytest.raises(ValueError, match="parameter queue_size: expected an integer"):
        pt.parse_parameter_value("queue_size", "1.5")
    with pytest.raises(ValueError, match="parameter slop: expected a number"):
        pt.parse_parameter_value("slop", "fast")
    with pytest.raises(ValueError, match="did you mean 'lost_threshold'"):
        pt.parse_parameter_value("lost_treshold", "0.3")


@pytest.mark.parametrize("value, text", [
    (True, "true"), (False, "false"), (7, "7"), (0.0, "0.0"), (1e-05, "1e-05"),
    (-0.06, "-0.06"), ([1, 2.5], "[1.0, 2.5]"),
    ("cuda:0", "cuda:0"), ("gimbal/rgb/image_raw", "gimbal/rgb/image_raw"),
    ("~/annotated_image_mouse_left", "~/annotated_image_mouse_left"),
    ("1", "'1'"), ("true", "'true'"), ("", "''"), ("it's", "'it''s'"), ("a: b", "'a: b'"),
    ("/data/AINet ep15.pth", "'/data/AINet ep15.pth'"),
])
def test_format_parameter_value(value, text):
    assert pt.format_parameter_value(value) == text


def test_empty_arrays_and_nan_cannot_be_passed():
    with pytest.raises(ValueError, match="empty array"):
        pt.format_parameter_value([])
    with pytest.raises(ValueError, match="cannot be passed"):
        pt.format_parameter_value(float("nan"))



def test_every_kind_of_the_schema_reads_its_default_from_text():
    """Each parameter's default, written as text, parses back to the default with its type:
    a kind added to the schema without a text parser fails here."""
    for spec in SPECS:
        value = pt.parse_parameter_value(spec.name, str(spec.default))
        assert value == spec.default and type(value) is type(spec.default), spec.name


def test_typed_values_are_checked_too():
    assert pt.parse_parameter_value("queue_size", 4) == 4
    assert pt.parse_parameter_value("initial_box", (1, 2, 3, 4)) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="parameter slop: expected a number, got True"):
        pt.parse_parameter_value("slop", True)
    with pytest.raises(ValueError, match="parameter queue_size: expected an integer, got 4.0"):
        pt.parse_parameter_value("queue_size", 4.0)
    with pytest.raises(ValueError, match="parameter model: expected a string, got 3"):
        pt.parse_parameter_value("model", 3)
    with pytest.raises(ValueError, match="parameter homography: expected a list of numbers"):
        pt.parse_parameter_value("homography", 3.0)
    with pytest.raises(ValueError, match="True is not a number"):
        pt.parse_parameter_value("initial_box", [True, 2, 3, 4])


def test_assignments_are_split_like_a_shell():
    assert pt.parse_parameter_assignments("model:='my model' slop:=0") == [
        ("model", "my model"), ("slop", 0.0)]
    assert pt.split_items(["a b", "c"]) == ["a b", "c"]
    with pytest.raises(ValueError, match="cannot split"):
        pt.split_items("model:='unclosed")
