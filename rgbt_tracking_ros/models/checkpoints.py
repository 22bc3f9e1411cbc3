"""Reading, checking, saving and converting checkpoints without running pickled code.

Official AINet / DMTrack checkpoints pickle objects of classes from their own code base
(``settings``, ``constructor``...). Those classes do not exist here, ``weights_only=True``
refuses such files, and ``weights_only=False`` would run whatever the pickle names. This
module therefore loads through a restricted unpickler: only what tensors and plain
containers need is resolved, every other global becomes an inert stand-in.
"""
from __future__ import annotations

import _compat_pickle
import collections
import errno
import logging
import math
import os
import pickle
import types
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointError",
    "CheckpointMismatchError",
    "ForeignObject",
    "LoadReport",
    "convert_backbone_init",
    "init_from_backbone_file",
    "load_state_dict_checked",
    "read_checkpoint",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

FORMAT = "rgbt_tracking_ros/1"
# Keys under which official training dicts keep the weights, in order of preference.
WEIGHT_KEYS = ("net", "model", "state_dict")
# Longest key list an error message shows before summarising the rest.
_MAX_LISTED = 20


class CheckpointError(ValueError):
    """A checkpoint file cannot be used (unreadable, unknown layout, wrong model)."""


class CheckpointMismatchError(CheckpointError):
    """The weights do not fit the model; ``report`` says how."""

    def __init__(self, message: str, report: LoadReport | None = None) -> None:
        super().__init__(message)
        self.report = report if report is not None else LoadReport()


@dataclass
class Checkpoint:
    """What a checkpoint file holds, reduced to what this project can use."""

    state_dict: dict[str, Tensor]
    kind: str  # "project", "official" or "bare"
    model_config: dict[str, Any] | None = None
    foreign_objects: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadReport:
    """How a state dict compared with a model; ``loaded`` are the keys copied in."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------


class ForeignObject:
    """Inert placeholder for an object whose class/callable is not on the allowlist.

    It records what the pickle tried to build (constructor args, state, items) and runs
    nothing: calling, ``__setstate__``, item assignment and ``append``/``extend`` only store
    their arguments. Subclasses are created per dotted name, see ``foreign_name``.
    """

    foreign_name: str = "?"
    # Set by __new__ on each instance.
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any
    dict_items: dict[Any, Any]
    list_items: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> ForeignObject:
        # NEWOBJ calls __new__ without __init__, so everything is set up here.
        self = object.__new__(cls)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", kwargs)
        object.__setattr__(self, "state", None)
        object.__setattr__(self, "dict_items", {})
        object.__setattr__(self, "list_items", [])
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "state", state)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dict_items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        self.list_items.extend(values)

    def add(self, value: Any) -> None:
        self.list_items.append(value)

    def __call__(self, *args: Any, **kwargs: Any) -> ForeignObject:
        # A pickle may call the result of a call; answer with another placeholder.
        return type(self)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<foreign {self.foreign_name}>"


def _tensor_globals() -> dict[str, Any]:
    """Every global a torch tensor / state-dict pickle needs, by dotted name."""
    allowed: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.Counter": collections.Counter,
        "torch.nn.parameter.Parameter": nn.Parameter,
        "torch.Size": torch.Size,
        "torch.Tensor": torch.Tensor,
        "torch._tensor.Tensor": torch.Tensor,
        "torch.device": torch.device,
        "_codecs.encode": __import__("_codecs").encode,  # bytes under protocol 2
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.bytearray": bytearray,
        "builtins.complex": complex,
    }
    get_layout = getattr(torch.serialization, "_get_layout", None)
    if get_layout is not None:
        allowed["torch.serialization._get_layout"] = get_layout
    # dtypes, layouts, memory formats and qschemes pickle as `torch.<name>`.
    constant_types = tuple(
        t
        for t in (torch.dtype, torch.layout, torch.memory_format, getattr(torch, "qscheme", None))
        if isinstance(t, type)
    )
    for name, value in vars(torch).items():
        if isinstance(value, constant_types):
            allowed[f"torch.{name}"] = value
    for cls in getattr(torch, "_tensor_classes", ()):
        allowed[f"{cls.__module__}.{cls.__name__}"] = cls
    for cls in getattr(torch, "_storage_classes", ()):
        if cls in (torch.storage.TypedStorage, torch.storage.UntypedStorage):
            allowed[f"{cls.__module__}.{cls.__name__}"] = cls
        else:
            # StorageType.__init__ is unannotated.
            storage_type = torch.serialization.StorageType(cls.__name__)  # type: ignore[no-untyped-call]
            allowed[f"{cls.__module__}.{cls.__name__}"] = storage_type
    for name in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_qtensor",
        "_rebuild_sparse_tensor",
        "_rebuild_nested_tensor",
        "_rebuild_meta_tensor_no_storage",
        "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_device_tensor_from_cpu_tensor",
    ):
        func = getattr(torch._utils, name, None)
        if func is not None:
            allowed[f"torch._utils.{name}"] = func
    rebuild_from_type = getattr(torch._tensor, "_rebuild_from_type_v2", None)
    if rebuild_from_type is not None:
        allowed["torch._tensor._rebuild_from_type_v2"] = rebuild_from_type
    try:
        import numpy as np
    except ImportError:  # numpy is optional for torch
        return allowed
    # Found through the objects themselves: numpy 1 calls the module numpy.core, 2 numpy._core.
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[f"{module}._reconstruct"] = reconstruct
        allowed[f"{module}.scalar"] = scalar
    allowed["numpy.ndarray"] = np.ndarray
    allowed["numpy.dtype"] = np.dtype
    return allowed


_ALLOWED: dict[str, Any] | None = None


def _allowed_globals() -> dict[str, Any]:
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = _tensor_globals()
    return _ALLOWED


def _may_restore_state(inst: Any) -> bool:
    """Objects whose BUILD opcode may run their own __setstate__ (all library code)."""
    if isinstance(inst, torch.Tensor):
        return True
    try:
        import numpy as np
    except ImportError:
        return False
    return isinstance(inst, (np.ndarray, np.dtype, np.generic))


def _restricted_pickle_module(foreign: list[str]) -> types.SimpleNamespace:
    """A module-like object for ``torch.load(pickle_module=...)``; names go into ``foreign``.

    Based on the pure-Python unpickler so that, beyond find_class, the opcodes that mutate
    objects (BUILD, SETITEM(S), APPEND(S), ADDITEMS) can be limited to containers, tensors
    and stand-ins: otherwise a pickle could set attributes on allowlisted classes/functions.
    """
    allowed = _allowed_globals()
    stand_ins: dict[str, type[ForeignObject]] = {}

    def stand_in(dotted: str) -> type[ForeignObject]:
        cls = stand_ins.get(dotted)
        if cls is None:
            short = dotted.rsplit(".", 1)[-1] or "Foreign"
            cls = type(short, (ForeignObject,), {"foreign_name": dotted, "__module__": __name__})
            stand_ins[dotted] = cls
            foreign.append(dotted)
        return cls

    dispatch = dict(pickle._Unpickler.dispatch)

    def refuse(what: str, target: Any) -> None:
        raise pickle.UnpicklingError(
            f"refusing to {what} an object of type {type(target).__qualname__}"
        )

    def load_build(self: Any) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, ForeignObject):
            inst.__setstate__(state)
        elif type(inst) in (collections.OrderedDict, collections.Counter):
            # state_dict() OrderedDicts carry `_metadata` as an instance attribute.
            if isinstance(state, tuple) and len(state) == 2 and not state[1]:
                state = state[0]
            if state is not None and not isinstance(state, dict):
                refuse("restore this state on", inst)
            for key, value in (state or {}).items():
                if type(key) is not str:
                    refuse("restore a non-string attribute on", inst)
                inst.__dict__[key] = value
        elif _may_restore_state(inst) and not isinstance(inst, type):
            inst.__setstate__(state)
        else:
            refuse("restore state on", inst)

    def load_setitem(self: Any) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        target = self.stack[-1]
        if not isinstance(target, (dict, ForeignObject)):
            refuse("set items on", target)
        target[key] = value

    def load_setitems(self: Any) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, (dict, ForeignObject)):
            refuse("set items on", target)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_append(self: Any) -> None:
        value = self.stack.pop()
        target = self.stack[-1]
        if not isinstance(target, (list, ForeignObject)):
            refuse("append to", target)
        target.append(value)

    def load_appends(self: Any) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, (list, ForeignObject)):
            refuse("append to", target)
        target.extend(items)

    def load_additems(self: Any) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if isinstance(target, set):
            target.update(items)
        elif isinstance(target, ForeignObject):
            target.extend(items)
        else:
            refuse("add items to", target)

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.APPEND[0]] = load_append
    dispatch[pickle.APPENDS[0]] = load_appends
    dispatch[pickle.ADDITEMS[0]] = load_additems

    class RestrictedUnpickler(pickle._Unpickler):
        """Resolves only allowlisted globals; everything else becomes a ForeignObject."""

        # Set by the pure-Python unpickler (typeshed leaves them out).
        proto: int
        fix_imports: bool

        def find_class(self, module: str, name: str) -> Any:
            if self.proto < 3 and self.fix_imports:  # Python 2 era names
                if (module, name) in _compat_pickle.NAME_MAPPING:
                    module, name = _compat_pickle.NAME_MAPPING[(module, name)]
                elif module in _compat_pickle.IMPORT_MAPPING:
                    module = _compat_pickle.IMPORT_MAPPING[module]
            dotted = f"{module}.{name}"
            found = allowed.get(dotted)
            if found is not None:
                return found
            return stand_in(dotted)

    RestrictedUnpickler.dispatch = dispatch

    def load(file: Any, **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()

    return types.SimpleNamespace(
        __name__=f"{__name__}.restricted_pickle",
        Unpickler=RestrictedUnpickler,
        load=load,
        UnpicklingError=pickle.UnpicklingError,
    )


def _is_torchscript_archive(path: Path) -> bool:
    """TorchScript zips are dispatched by torch.load to torch.jit.load; we never want that."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(n.split("/", 1)[-1] == "constants.pkl" for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _short(error: BaseException, limit: int = 160) -> str:
    text = " ".join(str(error).split()) or "unexpected end of file"
    # torch's weights_only message is mostly advice; its reason follows this marker.
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}"


def _load_object(path: Path) -> tuple[Any, list[str]]:
    """The unpickled top-level object and the foreign names replaced by stand-ins."""
    if _is_torchscript_archive(path):
        raise CheckpointError(
            f"{path}: is a TorchScript archive, not a checkpoint (use torch.jit.load)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True), []
    except Exception as error:  # noqa: BLE001 - any failure gets the restricted retry
        first_error = error
    # weights_only=True refused (non-allowlisted globals, or not a checkpoint at all). The
    # restricted unpickler cannot run code either, so retrying is safe in both cases.
    foreign: list[str] = []
    try:
        obj = torch.load(
            path,
            map_location="cpu",
            weights_only=False,
            pickle_module=_restricted_pickle_module(foreign),
        )
    except Exception as error:  # noqa: BLE001
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({_short(error)}; "
            f"with weights_only=True: {_short(first_error)})"
        ) from error
    return obj, foreign


# --------------------------------------------------------------------------------------
# read_checkpoint
# --------------------------------------------------------------------------------------


def _is_tensor_mapping(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(v, Tensor) for v in obj.values())
    )


def _describe(obj: Any) -> str:
    if isinstance(obj, ForeignObject):
        return f"a foreign object {obj.foreign_name}"
    if isinstance(obj, Mapping):
        keys = [repr(k) for k in list(obj.keys())[:_MAX_LISTED]]
        more = f" (+{len(obj) - _MAX_LISTED} more)" if len(obj) > _MAX_LISTED else ""
        return f"a {type(obj).__name__} with keys [{', '.join(keys)}]{more}"
    return f"a {type(obj).__name__}"


def _clean_state_dict(obj: Any, path: Path, where: str) -> dict[str, Tensor]:
    """Plain str->Tensor dict with a DataParallel ``module.`` prefix removed."""
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: {where} is not a state dict, found {_describe(obj)}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: {where} has non-tensor entries: {_cap(bad)}"
        )
    cleaned: dict[str, Tensor] = {}
    for key, value in obj.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name in cleaned:
            raise CheckpointError(f"{path}: {where} has both {key!r} and {name!r}")
        if isinstance(value, nn.Parameter):
            value = value.detach()
        cleaned[name] = value
    return cleaned


def _plain_metadata(obj: Mapping[Any, Any], skip: set[str]) -> dict[str, Any]:
    """Top-level scalars (epoch, net_type...) of an official dict."""
    return {
        k: v
        for k, v in obj.items()
        if isinstance(k, str)
        and k not in skip
        and (v is None or type(v) in (str, int, float, bool))
    }


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load our own, an official, or a bare checkpoint without executing pickled code."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "checkpoint path is a directory", str(path))
    obj, foreign = _load_object(path)
    if foreign:
        logger.warning(
            "%s: replaced %d foreign pickled object(s) by inert stand-ins: %s",
            path,
            len(foreign),
            ", ".join(foreign),
        )

    if isinstance(obj, Mapping) and "format" in obj:
        if obj.get("format") != FORMAT:
            raise CheckpointError(
                f"{path}: unsupported checkpoint format {obj.get('format')!r} (expected {FORMAT!r})"
            )
        config = obj.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"{path}: 'config' is {_describe(config)}, expected a dict")
        if "net" not in obj:
            raise CheckpointError(f"{path}: {FORMAT} checkpoint without 'net'")
        metadata = obj.get("metadata") or {}
        return Checkpoint(
            state_dict=_clean_state_dict(obj["net"], path, "'net'"),
            kind="project",
            model_config=config,
            foreign_objects=foreign,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        )
    if _is_tensor_mapping(obj):
        return Checkpoint(
            state_dict=_clean_state_dict(obj, path, "the state dict"),
            kind="bare",
            foreign_objects=foreign,
        )
    if isinstance(obj, Mapping):
        for key in WEIGHT_KEYS:
            if key in obj:
                return Checkpoint(
                    state_dict=_clean_state_dict(obj[key], path, f"{key!r}"),
                    kind="official",
                    foreign_objects=foreign,
                    metadata=_plain_metadata(obj, set(WEIGHT_KEYS)),
                )
    raise CheckpointError(
        f"{path}: no weights found (expected a state dict or a dict with one of "
        f"{', '.join(repr(k) for k in WEIGHT_KEYS)}); found {_describe(obj)}"
    )


# --------------------------------------------------------------------------------------
# Checked loading
# --------------------------------------------------------------------------------------


def _cap(items: list[str], limit: int = _MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" ... and {len(items) - limit} more" if len(items) > limit else "")


def load_state_dict_checked(
    model: nn.Module,
    state_dict: Mapping[str, Tensor] | Checkpoint,
    strict: bool = True,
    allow_missing: Callable[[str], bool] | None = None,
) -> LoadReport:
    """Compare first, then copy: a refused load leaves the model untouched.

    ``nn.Module.load_state_dict`` copies tensors before raising; this checks keys and shapes
    against ``model.state_dict()`` first. Shape mismatches are fatal even when not strict.
    """
    if isinstance(state_dict, Checkpoint):
        state_dict = state_dict.state_dict
    own = model.state_dict()
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(f"state dict has non-tensor entries: {_cap(not_tensors)}")
    report = LoadReport(
        missing=[k for k in own if k not in state_dict],
        unexpected=[k for k in state_dict if k not in own],
        mismatched=[
            (k, tuple(own[k].shape), tuple(v.shape))
            for k, v in state_dict.items()
            if k in own and tuple(own[k].shape) != tuple(v.shape)
        ],
    )
    fatal_missing = [k for k in report.missing if allow_missing is None or not allow_missing(k)]
    if report.mismatched or (strict and (fatal_missing or report.unexpected)):
        lines = [f"checkpoint does not match {type(model).__name__}:"]
        if strict and fatal_missing:
            lines.append(f"  missing keys ({len(fatal_missing)}): {_cap(fatal_missing)}")
        if strict and report.unexpected:
            lines.append(f"  unexpected keys ({len(report.unexpected)}): {_cap(report.unexpected)}")
        if report.mismatched:
            shown = [
                f"{k}: model {tuple(e)} vs checkpoint {tuple(g)}" for k, e, g in report.mismatched
            ]
            lines.append(f"  shape mismatches ({len(shown)}): {_cap(shown)}")
        raise CheckpointMismatchError("\n".join(lines), report)
    matching = {k: v for k, v in state_dict.items() if k in own}
    model.load_state_dict(matching, strict=False)
    report.loaded = list(matching)
    return report


# --------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------


def _check_plain(value: Any, where: str, tensors: bool = False) -> None:
    """Only what weights_only=True can read back: plain Python values (and tensors if allowed)."""
    # Exact types: subclasses (IntEnum, numpy.float64) pickle as globals weights_only refuses.
    if value is None or type(value) in (bool, int, float, str) or (tensors and isinstance(value, Tensor)):
        return
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", tensors)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            _check_plain(item, f"{where}[{key!r}]", tensors)
        return
    raise TypeError(
        f"{where} is a {type(value).__qualname__}; only plain dict/list/tuple/str/int/float/"
        "bool/None can go into a checkpoint that loads with weights_only=True"
    )


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    config: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    state_dict: Mapping[str, Tensor] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write our format atomically, so a crash never leaves a half-written checkpoint.

    `state_dict` replaces the model's whole state (e.g. only what trained); `extra` adds
    top-level entries of tensors and plain values (e.g. a training run's optimizer state).
    """
    metadata = {} if metadata is None else metadata
    extra = {} if extra is None else extra
    _check_plain(config, "config")
    _check_plain(metadata, "metadata")
    _check_plain(extra, "extra", tensors=True)
    state = model.state_dict() if state_dict is None else state_dict
    payload = {
        "format": FORMAT,
        "config": config,
        "net": {k: v.detach().cpu() for k, v in state.items()},
        "metadata": metadata,
        **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 lets the umask decide the final permissions, as for open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------
# Backbone initialisation (OSTrack / DropTrack)
# --------------------------------------------------------------------------------------


def _resize_pos_embed(pos: Tensor, grid: int, key: str) -> Tensor:
    """(1, g*g, C) -> (1, grid*grid, C) by bilinear interpolation on the g x g grid."""
    if pos.dim() != 3 or pos.shape[0] != 1:
        raise CheckpointError(f"{key}: expected shape (1, tokens, C), got {tuple(pos.shape)}")
    tokens, channels = pos.shape[1], pos.shape[2]
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise CheckpointError(f"{key}: {tokens} tokens are not a square grid")
    if side == grid:
        return pos
    image = pos.float().reshape(1, side, side, channels).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=(grid, grid), mode="bilinear", align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(1, grid * grid, channels).to(pos.dtype)


def convert_backbone_init(
    state_dict: Mapping[str, Tensor], x_grid: int = 16, z_grid: int = 8
) -> dict[str, Tensor]:
    """OSTrack / DropTrack initialisation weights in our key layout.

    DropTrack (recognised by ``backbone.temporal_pos_embed_*``) was trained at other input
    sizes and keeps a separate temporal embedding: its search/template position grids are
    resized to ``x_grid``/``z_grid`` and the temporal embedding is folded in. OSTrack already
    matches and passes through unchanged.
    """
    if not any(k.startswith("backbone.") for k in state_dict):
        raise CheckpointError(
            f"no 'backbone.*' keys: not a backbone initialisation state dict "
            f"(keys: {_cap(list(state_dict))})"
        )
    out = dict(state_dict)
    for suffix, grid in (("x", x_grid), ("z", z_grid)):
        temporal_key = f"backbone.temporal_pos_embed_{suffix}"
        if temporal_key not in out:
            continue
        pos_key = f"backbone.pos_embed_{suffix}"
        if pos_key not in out:
            raise CheckpointError(f"{temporal_key} present but {pos_key} missing")
        pos = _resize_pos_embed(out[pos_key], grid, pos_key)
        temporal = out.pop(temporal_key)
        if temporal.numel() != pos.shape[-1]:
            raise CheckpointError(
                f"{temporal_key}: shape {tuple(temporal.shape)} is not one embedding of "
                f"size {pos.shape[-1]}"
            )
        out[pos_key] = pos + temporal.reshape(1, 1, -1).to(pos.dtype)
    return out


def _grid_of(own: Mapping[str, Tensor], key: str, default: int) -> int:
    """Target grid side from the model's own position embedding, if it has one."""
    tensor = own.get(key)
    if tensor is None or tensor.dim() != 3:
        return default
    side = math.isqrt(tensor.shape[1])
    return side if side * side == tensor.shape[1] else default


def init_from_backbone_file(model: nn.Module, path: str | os.PathLike[str]) -> LoadReport:
    """Initialise the backbone (and box head, if present) from OSTrack/DropTrack weights.

    Keys the file does not cover (RGB-T adapters, fusion modules) keep their initial
    values; they are listed in ``report.missing`` so callers can log them.
    """
    checkpoint = read_checkpoint(path)
    own = model.state_dict()
    converted = convert_backbone_init(
        checkpoint.state_dict,
        x_grid=_grid_of(own, "backbone.pos_embed_x", 16),
        z_grid=_grid_of(own, "backbone.pos_embed_z", 8),
    )
    if not any(k in own for k in converted):
        raise CheckpointError(
            f"{path}: not a backbone initialisation file for this model "
            f"(none of its {len(converted)} keys match {type(model).__name__})"
        )
    report = load_state_dict_checked(model, converted, strict=False)
    logger.info(
        "%s: initialised %d tensors; %d model tensors keep their initial values (%s); "
        "%d file tensors unused",
        path,
        len(report.loaded),
        len(report.missing),
        _cap(report.missing, 5),
        len(report.unexpected),
    )
    return report
