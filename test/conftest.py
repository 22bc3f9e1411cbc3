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
def tiny_tracker_checkpoint(tmp_path_factory):
    """A tiny AINet trained on synthetic RGB-T sequences, saved in the package's own format.

    Trained once per test session (a few minutes on 2 CPU cores) and shared by every test
    that needs a model that really tracks.
    """
    import torch

    from rgbt_tracking_ros.demo import train_tiny_tracker
    from rgbt_tracking_ros.models.checkpoints import save_checkpoint

    torch.manual_seed(0)
    model = train_tiny_tracker("ainet_tiny", steps=300, seed=0, progress=False)
    path = tmp_path_factory.mktemp("tiny_tracker") / "ainet_tiny.pt"
    save_checkpoint(path, model, model.config)
    return path
