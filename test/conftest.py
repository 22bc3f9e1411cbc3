from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: these checks need the project's shared/ folder beside it")
    return path


@pytest.fixture
def official_keys():
    """Loads the official state-dict listing of a model: {key: shape}, total params."""

    def load(model_name: str) -> tuple[dict[str, list[int]], int]:
        spec = json.loads(shared_path("spec", f"official_keys_{model_name}.json").read_text())
        return {entry[0]: entry[1] for entry in spec["state_dict"]}, spec["total_params"]

    return load


@pytest.fixture(scope="session")
def trained_checkpoint():
    """The default model's shipped weights: a model that really tracks, for every test that
    needs one, without training anything in the test session."""
    from rgbt_tracking_ros.defaults import DEFAULT_MODEL
    from rgbt_tracking_ros.models import load_model_config
    from rgbt_tracking_ros.models.loading import shipped_weights

    weights = shipped_weights(load_model_config(DEFAULT_MODEL))
    _warm_onnx_cache()
    return weights


def _warm_onnx_cache() -> None:
    """Export the default model for onnxruntime once, into the cache every tracker and node
    of the session reads (a minute on two cores): a node started by a test then configures in
    seconds, not within its start-up timeout."""
    from rgbt_tracking_ros.defaults import DEFAULT_MODEL
    from rgbt_tracking_ros.models.loading import load_model
    from rgbt_tracking_ros.tracker.onnx_backend import OnnxBackend, missing_modules

    if not missing_modules():
        OnnxBackend(load_model(DEFAULT_MODEL))
