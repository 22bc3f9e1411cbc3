"""bench/pairing.py on short runs: the package's pairer is optimal in every scenario inside its
guarantee and adds no latency (median) at 30/30 Hz; message_filters reads "not installed"."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pairing", ROOT / "bench" / "pairing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_optimal_and_no_added_latency_in_every_guaranteed_scenario(bench):
    for scenario in bench.SCENARIOS:
        if "early" in scenario.name:
            continue  # outside the guarantee: measured, not asserted
        figures = bench.run_scenario(scenario, seeds=2, seconds=20)["stamp_pairer"]
        assert figures.optimal_percent == 100.0 and figures.wrong == figures.missed == 0, scenario.name
        assert figures.latency_median_ms <= 1.0, scenario.name
    at_30 = bench.run_scenario(bench.SCENARIOS[0], seeds=2, seconds=20)["stamp_pairer"]
    assert at_30.latency_mean_ms < 1.0


def test_message_filters_is_reported_as_not_installed(bench, capsys):
    try:
        import message_filters  # noqa: F401
    except ImportError:
        assert bench.main(["--seeds", "1", "--seconds", "5"]) == 0
        assert "message_filters  not installed" in capsys.readouterr().out
    else:
        pytest.skip("message_filters is installed")
