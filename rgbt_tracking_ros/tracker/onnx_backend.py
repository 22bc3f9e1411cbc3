"""ONNX Runtime as the tracker's CPU execution path for models that encode templates apart.

`OnnxBackend` exposes the two calls the tracker makes, `encode_templates` (once per template
change) and `track_search` (per frame), each an ONNX graph exported from the loaded PyTorch
model at batch 1 and run by onnxruntime's CPU provider with as many intra-op threads as torch
uses. Every output the model's `track_search` returns comes back under its own name, in the
model's order: keys added to the model's output dict pass through without a change here.

Exporting takes tens of seconds on two cores, so the files are cached, by a hash of the
weights, the input and output shapes and the library versions, under `RGBT_ONNX_CACHE`
(default `~/.cache/rgbt_tracking_ros/onnx`; an empty value keeps them in memory only). Each
build is checked once against PyTorch on real crops of a synthetic sequence: every output
within tolerance and the same decoded box; a cached file that fails is exported again, and a
fresh export that fails raises `OnnxBackendError`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from rgbt_tracking_ros.models.head import decode_boxes
from rgbt_tracking_ros.models.protocol import model_geometry, tracking_model
from rgbt_tracking_ros.tracker.geometry import hann_window

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnxruntime", "auto")
CACHE_ENV = "RGBT_ONNX_CACHE"
SPIN_ENV = "RGBT_ONNX_SPIN"  # "1" (default): worker threads spin between operators; "0": they sleep
FORMAT = 1  # bump when the exported graphs change meaning
OPSET = 18
ABS_TOLERANCE = 1e-4  # of any output value, plus REL_TOLERANCE x that output's largest |value|
REL_TOLERANCE = 1e-4
BOX_TOLERANCE = 1e-5  # of the decoded normalised box (a different peak cell fails outright)
ENCODE_INPUTS = ("template_rgb", "template_thermal")
SEARCH_INPUTS = ("template_tokens", "search_rgb", "search_thermal")
# The exporter (torch.onnx, dynamo) needs onnx and onnxscript besides onnxruntime.
REQUIRED_MODULES = ("onnxruntime", "onnx", "onnxscript")


class OnnxBackendError(RuntimeError):
    """The ONNX path cannot be built for this model or does not match PyTorch."""


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def unsupported_reason(model: nn.Module, device: torch.device, autocast: torch.dtype | None,
                       execution: str) -> str | None:
    """Why the ONNX path does not apply here, or None when it does."""
    if device.type != "cpu":
        return f"it runs on CPU only (device {device})"
    if autocast is not None:
        return f"it runs fp32 only (precision {autocast})"
    if execution != "eager":
        return f"execution {execution!r} is a torch option"
    if not (hasattr(model, "encode_templates") and hasattr(model, "track_search")):
        return f"{type(model).__name__} has no encode_templates / track_search"
    if model_geometry(model).num_templates != 1:
        return "a template memory changes the graph's input shape from frame to frame"
    missing = missing_modules()
    if missing:
        return f"{', '.join(missing)} not installed"
    return None


def auto_declines(model: nn.Module, device: torch.device, autocast: torch.dtype | None,
                  execution: str) -> str | None:
    """Why backend "auto" keeps torch here, or None when it takes onnxruntime: the path must
    apply, and the model must ask for it (a true `ONNX_ON_CPU`: its export was checked)."""
    reason = unsupported_reason(model, device, autocast, execution)
    if reason is None and not getattr(model, "ONNX_ON_CPU", False):
        reason = f"{type(model).__name__} does not ask for it (ONNX_ON_CPU)"
    return reason



class _SearchGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self, tokens: torch.Tensor, search_rgb: torch.Tensor, search_x: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return tuple(tracking_model(self.model).track_search(tokens, search_rgb, search_x).values())


class _EncodeGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        return tracking_model(self.model).encode_templates(template_rgb, template_x)


def sample_crops(model: nn.Module, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """Template and search crops of a synthetic sequence, as the tracker makes them."""
    from rgbt_tracking_ros.export import sample_inputs  # imports the synthetic data: only here

    return sample_inputs(model, seed)


def cache_dir() -> Path | None:
    """Where exported graphs are kept; None: in memory only."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rgbt_tracking_ros" / "onnx"


def _fingerprint(model: nn.Module, reference: dict[str, torch.Tensor], tokens: torch.Tensor) -> str:
    import onnxscript

    digest = hashlib.sha256()
    header = (FORMAT, OPSET, torch.__version__, onnxscript.__version__, type(model).__qualname__,
              model_geometry(model), tuple(tokens.shape),
              tuple((name, tuple(value.shape), str(value.dtype)) for name, value in reference.items()))
    digest.update(repr(header).encode())
    # The model code, so that a change to how it computes (not only to what) is exported anew.
    for source in sorted(Path(__file__).resolve().parents[1].joinpath("models").glob("*.py")):
        digest.update(source.read_bytes())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def _export(module: nn.Module, inputs: tuple[torch.Tensor, ...], input_names: tuple[str, ...],
            output_names: list[str]) -> bytes:
    # The optimiser warns once per unrolled scan step that it leaves Split nodes alone.
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx", "torch._dynamo", "torch.export")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            # No file: the exporter returns the program (writing to a BytesIO is deprecated).
            program = torch.onnx.export(module, inputs, input_names=list(input_names),
                                        output_names=output_names, opset_version=OPSET, dynamo=True,
                                        external_data=False, verbose=False)
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
    if program is None:
        raise OnnxBackendError(f"torch.onnx.export returned no program for {type(module).__name__}")
    graph: bytes = program.model_proto.SerializeToString()
    return graph


def spin_wait() -> bool:
    """Whether onnxruntime's worker threads spin-wait between operators (`RGBT_ONNX_SPIN`).

    Spinning saves a thread wake-up at each of the search graph's several hundred small
    operators; the workers stop spinning when a run ends, so the host work between runs keeps
    the cores (the 640x512 step on the 2-core machine: docs/benchmarks.md). Within a run a
    waiting worker still holds its core, so a host whose cores other work needs may set
    `RGBT_ONNX_SPIN=0`."""
    value = os.environ.get(SPIN_ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{SPIN_ENV} must be 0 or 1, got {value!r}")
    return value == "1"


def session_options(threads: int | None, spin: bool) -> onnxruntime.SessionOptions:
    """onnxruntime's options for batch-1 tracking on a small CPU: intra-op threads as torch
    uses (2 on the 2-core machine), one graph at a time, all graph optimisations, and worker
    threads that spin between operators within a run when `spin` (`spin_wait()`) is true."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    # Spinning only inside a run: between runs the tracker's host work needs the cores.
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3
    return options


class OnnxBackend:
    """`encode_templates` / `track_search` of a model, run by onnxruntime on CPU.

    Takes and returns torch tensors like the model (CPU, float32); the template tokens are a
    tensor over the numpy array the search graph reads (no copy either way)."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, threads: int | None = None, cache: Path | None | str = "default",
                 spin: bool | None = None):
        missing = missing_modules()
        if missing:
            raise OnnxBackendError(f"the ONNX backend needs {', '.join(missing)}")
        self.threads = int(threads or torch.get_num_threads())
        self.spin = spin_wait() if spin is None else spin
        self.cache = cache_dir() if cache == "default" else (Path(cache) if cache else None)
        model = model.eval()
        crops = sample_crops(model)
        with torch.inference_mode():
            # Typed as the protocol promises, checked as a model may break the promise.
            tokens: object = tracking_model(model).encode_templates(*crops[:2])
            reference: object = None
            if isinstance(tokens, torch.Tensor):
                reference = tracking_model(model).track_search(tokens, *crops[2:])
        if not isinstance(tokens, torch.Tensor) or not isinstance(reference, dict):
            raise OnnxBackendError("encode_templates must return a tensor and track_search a dict")
        self.output_names = list(reference)
        key = _fingerprint(model, reference, tokens)
        self.source = "memory"
        graphs = self._cached(key)
        if graphs is not None:
            problem: str | None
            try:
                self._load(*graphs)
            except Exception as error:  # noqa: BLE001 - a broken cached file is exported again
                problem = f"{type(error).__name__}: {error}"
            else:
                problem = self._compare(model, crops, tokens, reference)
            if problem is None:
                self.source = f"cache {self.cache}"
                return
            logger.warning("cached ONNX graphs %s do not match PyTorch (%s): exporting again", key, problem)
        graphs = self._export_graphs(model, crops, tokens)
        self._load(*graphs)
        problem = self._compare(model, crops, tokens, reference)
        if problem is not None:
            raise OnnxBackendError(f"the exported graphs do not match PyTorch: {problem}")
        self._store(key, graphs)

    # -- the tracker's interface ------------------------------------------------------------
    def encode_templates(self, template_rgb: torch.Tensor, template_x: torch.Tensor) -> torch.Tensor:
        feeds = {ENCODE_INPUTS[0]: _array(template_rgb), ENCODE_INPUTS[1]: _array(template_x)}
        tokens: npt.NDArray[np.float32] = self._encode.run(None, feeds)[0]
        return torch.from_numpy(tokens)

    def track_search(self, template_tokens: torch.Tensor, search_rgb: torch.Tensor,
                     search_x: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {SEARCH_INPUTS[0]: _array(template_tokens), SEARCH_INPUTS[1]: _array(search_rgb),
                 SEARCH_INPUTS[2]: _array(search_x)}
        outputs = self._search.run(self.output_names, feeds)
        return {name: torch.from_numpy(value) for name, value in zip(self.output_names, outputs)}

    # -- building -----------------------------------------------------------------------------
    def _export_graphs(self, model: nn.Module, crops: tuple[torch.Tensor, ...],
                       tokens: torch.Tensor) -> tuple[bytes, bytes]:
        logger.info("exporting %s to ONNX for onnxruntime (once per weights; cached in %s)",
                    type(model).__name__, self.cache or "memory")
        encode = _export(_EncodeGraph(model).eval(), crops[:2], ENCODE_INPUTS, ["template_tokens"])
        search = _export(_SearchGraph(model).eval(), (tokens.clone(), *crops[2:]), SEARCH_INPUTS, self.output_names)
        return encode, search

    def _load(self, encode: bytes, search: bytes) -> None:
        import onnxruntime

        options = session_options(self.threads, self.spin)
        providers = ["CPUExecutionProvider"]
        self._encode = onnxruntime.InferenceSession(encode, options, providers=providers)
        self._search = onnxruntime.InferenceSession(search, options, providers=providers)
        names = [output.name for output in self._search.get_outputs()]
        if names != self.output_names:
            raise OnnxBackendError(f"the search graph's outputs {names} are not the model's {self.output_names}")

    def _compare(self, model: nn.Module, crops: tuple[torch.Tensor, ...], tokens: torch.Tensor,
                 reference: dict[str, torch.Tensor]) -> str | None:
        """None when ONNX Runtime gives PyTorch's tokens, outputs and decoded box, else why not."""
        try:
            got_tokens = self.encode_templates(*crops[:2])
            got = self.track_search(got_tokens, *crops[2:])
        except Exception as error:  # noqa: BLE001 - a broken cached file is re-exported
            return f"{type(error).__name__}: {error}"
        pairs = [("template_tokens", got_tokens, tokens)]
        pairs += [(name, got[name], reference[name]) for name in self.output_names]
        for name, actual, expected in pairs:
            if actual.shape != expected.shape:
                return f"{name} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
            scale = float(expected.abs().max()) if expected.numel() else 0.0
            difference = float((actual.float() - expected.float()).abs().max()) if expected.numel() else 0.0
            if not difference <= ABS_TOLERANCE + REL_TOLERANCE * scale:
                return f"{name} differs by {difference:.2e}"
        if "score_map" in reference:
            window = torch.from_numpy(hann_window(model_geometry(model).feat_size)).float()[None, None]
            boxes = [decode_boxes(window * maps["score_map"].float(), maps["size_map"].float(),
                                  maps["offset_map"].float()) for maps in (got, reference)]
            peaks = [int((window * maps["score_map"]).flatten().argmax()) for maps in (got, reference)]
            box_difference = float((boxes[0][0] - boxes[1][0]).abs().max())
            if peaks[0] != peaks[1] or not box_difference <= BOX_TOLERANCE:
                return f"decoded box differs (peak cells {peaks}, box by {box_difference:.2e})"
        return None

    def _cached(self, key: str) -> tuple[bytes, bytes] | None:
        if self.cache is None:
            return None
        paths = [self.cache / f"{key}.{part}.onnx" for part in ("encode", "search")]
        try:
            return paths[0].read_bytes(), paths[1].read_bytes()
        except OSError:
            return None

    def _store(self, key: str, graphs: tuple[bytes, bytes]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            for part, data in zip(("encode", "search"), graphs):
                # Written aside, then renamed: trackers starting together never read half a file.
                with tempfile.NamedTemporaryFile(dir=self.cache, suffix=".tmp", delete=False) as handle:
                    handle.write(data)
                os.replace(handle.name, self.cache / f"{key}.{part}.onnx")
            self.source = f"exported, cached in {self.cache}"
        except OSError as error:
            logger.warning("could not cache the ONNX graphs in %s (%s): kept in memory", self.cache, error)
            self.source = "exported, memory"


def _array(value: torch.Tensor) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(value.detach().cpu().numpy(), dtype=np.float32)


def select_backend(model: nn.Module, backend: str, device: torch.device, autocast: torch.dtype | None,
                   execution: str) -> OnnxBackend | None:
    """The ONNX backend, or None for the torch path. "auto": onnxruntime where it applies
    (CPU, fp32, eager, one template), the model asks for it (a true `ONNX_ON_CPU` class
    attribute: its export was checked against PyTorch) and it builds; torch otherwise. "onnxruntime": that or an error saying why not."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return None
    if backend == "auto":
        reason = auto_declines(model, device, autocast, execution)
    else:
        reason = unsupported_reason(model, device, autocast, execution)
    if reason is not None:
        if backend == "onnxruntime":
            raise OnnxBackendError(f"backend 'onnxruntime' is not available: {reason}")
        logger.info("backend auto: torch, not onnxruntime (%s)", reason)
        return None
    spin = spin_wait()  # a bad setting is refused, not hidden behind the torch fallback
    try:
        built = OnnxBackend(model, spin=spin)
    except Exception as error:
        if backend == "onnxruntime":
            raise
        logger.warning("backend auto: the ONNX path failed (%s: %s); using torch", type(error).__name__, error)
        return None
    logger.info("backend %s: onnxruntime (%s)", backend, built.source)
    return built
