"""The three inference backends' settings and graphs: eager PyTorch, the network compiled ahead
of time by AOTInductor, and ONNX Runtime. ensure_compiled is the one entry that builds the
compiled model (the node's child process, the pipeline runner, the Segmenter and the export
command all come through it)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import torch
from torch import nn

from guidewire.segmentation.cache import cached_compiled_path, cached_export, cached_onnx_path
from guidewire.segmentation.checkpoint import WeightsError, load_checkpoint
from guidewire.segmentation.fganet import SegmentationNetwork, fold_batch_norms
from guidewire.segmentation.precision import PRECISIONS, resolve_precision

ONNX_OPSET = 18
SIZE_MULTIPLE = 32  # five 2x poolings
BACKENDS = ("torch", "compiled", "onnx")


def check_settings(backend: str, window: int, precision: str, device: str = "cpu") -> torch.device:
    """The torch device to run on, or a ValueError that says which setting cannot work."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown segmentation backend {backend!r}: use one of {BACKENDS}")
    try:
        torch_device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown torch device {device!r}: {error}") from error
    if torch_device.type != "cpu" and backend != "torch":
        raise ValueError(f"device {device!r} needs the torch backend; {backend} runs on the CPU")
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU")
    if precision not in PRECISIONS or (backend == "onnx" and precision == "bfloat16"):
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS} for the {backend} backend "
                         "(ONNX Runtime runs float32)")
    if window % SIZE_MULTIPLE:
        raise ValueError(f"window must be a multiple of {SIZE_MULTIPLE}, got {window}")
    return torch_device


def export_onnx(network: SegmentationNetwork, path: str | Path, size: int = 512) -> Path:
    """ONNX model with dynamic batch, height and width (multiples of 32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, network.config.in_channels, size, size)
    buffer = io.BytesIO()
    # The TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
    torch.onnx.export(network.eval(), (example,), buffer, opset_version=ONNX_OPSET, dynamo=False,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "logits": {0: "batch", 2: "height", 3: "width"}})
    path.write_bytes(buffer.getvalue())
    return path


class _Autocast(nn.Module):
    """Runs the network under bf16 autocast inside forward, so that torch.export records the
    casts (an autocast context around the export call is not kept in the graph)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", torch.bfloat16):
            return self.network(image).float()


def export_compiled(network: SegmentationNetwork, path: str | Path, size: int = 512,
                    precision: str = "float32") -> Path:
    """AOTInductor package for one (1,1,size,size) input: the graph compiled to C++ with frozen,
    prepacked weights, and the elementwise passes eager PyTorch makes one by one (the DCN's
    sampling and modulation, the gates' sigmoids and norms, the BGA products) fused. A static
    shape compiles in half the time of a dynamic one and runs faster; other window sizes get
    their own package."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = _Autocast(network.eval()) if precision == "bfloat16" else network.eval()
    example = torch.zeros(1, network.config.in_channels, size, size).contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            program = torch.export.export(module, (example,))
        temporary = path.with_suffix(".tmp.pt2")
        torch._inductor.aoti_compile_and_package(program, package_path=str(temporary),
                                                 inductor_configs={"freezing": True})
    except Exception as error:  # inductor raises many types; a missing C++ compiler is the usual one
        raise RuntimeError(f"cannot compile the segmentation network with AOTInductor (it needs a C++ "
                           f"compiler such as g++): {type(error).__name__}: {error}") from error
    temporary.replace(path)  # a crash mid-compile never leaves a half package in the cache
    return path


def ensure_compiled(weights: str | Path, window: int = 512, precision: str = "float32", threads: int = 0) -> Path:
    """The cached compiled package for these settings, built first if the cache lacks it
    (a minute or two); not loaded, so a launcher can prepare it for a node."""
    check_settings("compiled", window, precision)
    precision = resolve_precision(precision)
    if threads:
        torch.set_num_threads(threads)  # part of the cache key

    def compile_into(path: Path) -> None:
        network, _ = load_checkpoint(weights)
        export_compiled(fold_batch_norms(network).to(memory_format=torch.channels_last), path, window, precision)

    return cached_export(cached_compiled_path(weights, window, precision), compile_into)


def ensure_compiled_command(weights: str | Path, window: int, precision: str, threads: int) -> list[str]:
    """ensure_compiled in a child process (the export command, which also checks the package
    against PyTorch). A process that keeps serving frames meanwhile needs one: torch.export
    patches nn.Module.__call__ process-wide while it traces, and an eager frame segmented in
    that process meanwhile fails inside the tracer."""
    return [sys.executable, "-m", "guidewire.segmentation.export", str(weights), "--compiled", "--size", str(window),
            "--precision", precision, "--threads", str(threads)]


def load_compiled(weights: str | Path, window: int, precision: str):
    """The compiled model for the window, loaded from the cache or built into it first."""
    path = ensure_compiled(weights, window, precision)
    try:
        return torch._inductor.aoti_load_package(str(path))
    except Exception as error:  # a damaged cache file: say which, so it can be deleted
        raise WeightsError(f"cannot load compiled model {path}: {error}") from error


def onnx_session(network: SegmentationNetwork, weights: str | Path, window: int,
                 onnx_file: str | Path | None = None, threads: int = 0):
    """An ONNX Runtime session of the network: the caller's onnx_file (exported there if
    missing; not the cache's to prune), or the cache's export of the checkpoint."""
    import onnxruntime

    if onnx_file:
        onnx_path = Path(onnx_file)
        if not onnx_path.is_file():
            export_onnx(network, onnx_path, window)
    else:
        onnx_path = cached_export(cached_onnx_path(weights), lambda path: export_onnx(network, path, window))
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for bad files
        raise WeightsError(f"cannot load ONNX model {onnx_path}: {error}") from error
