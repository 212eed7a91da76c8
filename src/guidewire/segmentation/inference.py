"""Checkpoints and inference: PyTorch (eager or compiled ahead of time) or ONNX Runtime,
sliding windows with Gaussian weighting (50% overlap), the paper's crop + mask-guided z-score."""
from __future__ import annotations

import hashlib
import io
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from guidewire.preprocessing import crop_and_normalise
from guidewire.segmentation import deformable, fganet
from guidewire.segmentation.centreline import Centreline, extract_centreline
from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork, fold_batch_norms

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "fganet_small.pt"
ONNX_OPSET = 18
SIZE_MULTIPLE = 32  # five 2x poolings
PRECISIONS = ("float32", "bfloat16", "auto")  # auto: bfloat16 where the CPU computes it natively
BACKENDS = ("torch", "compiled", "onnx")
CACHE_UNUSED_DAYS = 30  # cached exports not loaded for this long are deleted when a new one is built


class WeightsError(RuntimeError):
    """Weights that are missing, unreadable or do not fit the network."""


def save_checkpoint(path: str | Path, network: SegmentationNetwork, **meta) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save({"network": network.config.to_dict(), "state_dict": network.state_dict(), "meta": meta}, temporary)
    temporary.replace(path)  # a crash mid-save never leaves a half checkpoint


def load_checkpoint(path: str | Path) -> tuple[SegmentationNetwork, dict]:
    """The network (eval mode) and the checkpoint's metadata, or a WeightsError that says why not."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"segmentation weights not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        network = SegmentationNetwork(NetworkConfig(**checkpoint["network"]))
        network.load_state_dict(checkpoint["state_dict"])
    except WeightsError:
        raise
    except Exception as error:  # torch/pickle raise many types for a damaged file
        raise WeightsError(f"cannot load segmentation weights {path}: {type(error).__name__}: {error}") from error
    return network.eval(), dict(checkpoint.get("meta", {}))


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


def native_bfloat16() -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (AMX or AVX512-BF16). Elsewhere
    oneDNN emulates it: 1654 ms per 512x512 frame compiled, against 125 ms in float32, on an
    AVX2 EPYC (bench/results/segmentation.md). torch.cpu's checks are private; a torch without them
    counts as no."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """"auto" as the precision to run: bfloat16 on a CPU with native bfloat16, float32 elsewhere
    (GPUs included: on a lent H100 it made the paper-width FGA-Net slower, its kernels being
    bound by launches, not arithmetic)."""
    if precision != "auto":
        return precision
    return "bfloat16" if torch.device(device).type == "cpu" and native_bfloat16() else "float32"


def build_compiled(weights: str | Path, window: int = 512, precision: str = "float32", threads: int = 0) -> Path:
    """The cached compiled package for these settings, built first if the cache lacks it
    (a minute or two); not loaded, so a launcher can prepare it for a node."""
    check_settings("compiled", window, precision)
    precision = resolve_precision(precision)
    if threads:
        torch.set_num_threads(threads)  # part of the cache key

    def compile_into(path: Path) -> None:
        network, _ = load_checkpoint(weights)
        export_compiled(fold_batch_norms(network).to(memory_format=torch.channels_last), path, window, precision)

    return _cached_export(cached_compiled_path(weights, window, precision), compile_into)


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


def _cache_folder(kind: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "guidewire_perception" / kind


def _cached_export(path: Path, export) -> Path:
    """A cache entry: marked used (its modification time set to now) if it exists, else written
    by export(path), after which the entries unused for CACHE_UNUSED_DAYS are pruned."""
    if path.is_file():
        try:
            os.utime(path)
        except OSError:  # a read-only shared cache is still usable
            pass
    else:
        export(path)
        prune_cache(path.parent)
    return path


def prune_cache(folder: Path, unused_days: float = CACHE_UNUSED_DAYS) -> list[Path]:
    """Delete the exports in a cache folder not used for unused_days, and return them. Each new
    checkpoint, code version, torch or CPU keys a new export (5 MB compiled for the shipped
    network, 140 MB at paper width), so without this the cache only grows."""
    oldest = time.time() - unused_days * 86400
    pruned = []
    for export in folder.iterdir():
        try:
            if export.is_file() and export.stat().st_mtime < oldest:
                export.unlink()
                pruned.append(export)
        except OSError:  # another process pruned it first, or the cache is read-only
            pass
    return pruned


def _export_key(weights: str | Path) -> "hashlib._Hash":
    """What every exported graph depends on: the checkpoint's content and the network's source
    (a change to how a module computes, such as the deformable sampling's form, is a new graph)."""
    key = hashlib.sha256(Path(weights).read_bytes())
    for module in (fganet, deformable):
        key.update(Path(module.__file__).read_bytes())
    return key


def cached_onnx_path(weights: str | Path) -> Path:
    """Where the ONNX export of a checkpoint is kept: a user cache keyed by the checkpoint and
    the network's code, so the installed package stays read-only and new weights get a new export."""
    return _cache_folder("onnx") / f"{Path(weights).stem}-{_export_key(weights).hexdigest()[:16]}.onnx"


def cached_compiled_path(weights: str | Path, size: int, precision: str) -> Path:
    """Where a compiled package is kept. Machine code is specific to the torch version, the
    CPU's vector instructions and the thread count (inductor writes it into its OpenMP
    pragmas), so all of them key the cache along with the checkpoint and the network's code."""
    key = _export_key(weights)
    key.update(f"{torch.__version__}|{platform.machine()}|{cpu_model()}|{torch.get_num_threads()}".encode())
    name = f"{Path(weights).stem}-{size}-{resolve_precision(precision)}-{key.hexdigest()[:16]}.pt2"
    return _cache_folder("compiled") / name


def cpu_model() -> str:
    """/proc/cpuinfo's "model name" line as it stands (a compiled-cache key: keep it unchanged)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line
    except OSError:
        pass
    return platform.processor()


def fitting_window(height: int, width: int) -> int:
    """The smallest window, a multiple of SIZE_MULTIPLE, that holds a height x width frame."""
    return -(-max(height, width) // SIZE_MULTIPLE) * SIZE_MULTIPLE


def gaussian_window(size: int, sigma_scale: float = 0.125) -> np.ndarray:
    """nnU-Net's importance map: centre pixels of a window count more than its edges."""
    axis = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / (sigma_scale * size)) ** 2)
    window = np.outer(axis, axis)
    return (window / window.max()).clip(1e-3, None).astype(np.float32)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits))


def _starts(length: int, window: int, step: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, step))
    return starts + [length - window]


class Segmenter:
    """Probability map of the wire for a mono image, with one of three backends:
    "torch" (eager PyTorch), "compiled" (AOTInductor, compiled once per checkpoint, window
    size and machine into a user cache: a minute or two the first time, instant after) and
    "onnx" (ONNX Runtime).

    precision "bfloat16" runs PyTorch under bf16 autocast, which is faster on CPUs with AMX
    or AVX512-BF16 (eager: only the convolutions gain; compiled: the fused kernels too, see
    bench/results/segmentation.md) and much slower on others; "auto" picks bfloat16 only where
    it is native (resolve_precision). Probabilities differ from float32 by about 1e-2;
    held-out metrics are about unchanged.

    device (torch backend) runs the network on a GPU, e.g. "cuda"; windows and
    probabilities stay NumPy arrays on the host."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, backend: str = "torch", window: int = 512,
                 overlap: float = 0.5, onnx_file: str | Path | None = None, threads: int = 0,
                 precision: str = "float32", device: str = "cpu"):
        self.device = check_settings(backend, window, precision, device)
        self.weights = Path(weights)
        self.network, self.meta = load_checkpoint(weights)
        # oneDNN's (and cuDNN's) fast layout for narrow convolutions, with BN folded away.
        fold_batch_norms(self.network).to(self.device, memory_format=torch.channels_last)
        self.precision = "float32" if backend == "onnx" else resolve_precision(precision, self.device)
        self.backend, self.window, self.overlap = backend, window, overlap
        self.threshold = float(self.meta.get("threshold", 0.5))
        # Frames whose confidence falls below it are flagged; 0 (flag none) without a chosen cut.
        self.confidence_cut = float(self.meta.get("confidence_cut", 0.0))
        if threads:
            torch.set_num_threads(threads)
        self._session = None
        self._compiled = self._load_compiled() if backend == "compiled" else None
        if backend == "onnx":
            import onnxruntime

            if onnx_file:  # the caller's file, exported there if missing; not the cache's to prune
                onnx_path = Path(onnx_file)
                if not onnx_path.is_file():
                    export_onnx(self.network, onnx_path, window)
            else:
                onnx_path = _cached_export(cached_onnx_path(weights),
                                           lambda path: export_onnx(self.network, path, window))
            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            try:
                self._session = onnxruntime.InferenceSession(str(onnx_path), options,
                                                             providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime raises its own untyped errors for bad files
                raise WeightsError(f"cannot load ONNX model {onnx_path}: {error}") from error

    def _load_compiled(self):
        """The compiled model for the window, loaded from the cache or built into it."""
        path = build_compiled(self.weights, self.window, self.precision)
        try:
            return torch._inductor.aoti_load_package(str(path))
        except Exception as error:  # a damaged cache file: say which, so it can be deleted
            raise WeightsError(f"cannot load compiled model {path}: {error}") from error

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a (B,1,H,W) float32 batch of normalised square windows."""
        if self._session is not None:
            return self._session.run(None, {"image": batch})[0]
        tensor = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self._compiled is not None:
                return self._compiled(tensor).numpy()
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bfloat16"):
                logits = self.network(tensor.to(self.device))
        return logits.float().cpu().numpy()

    def probability_normalised(self, image: np.ndarray) -> np.ndarray:
        """Sliding-window probabilities for an already normalised float image."""
        height, width = image.shape
        window = min(self.window, fitting_window(height, width))
        if self.backend == "compiled":  # one static input size: a smaller crop is padded, not compiled anew
            window = self.window
        padded_h, padded_w = max(height, window), max(width, window)
        padded = np.zeros((padded_h, padded_w), np.float32)
        padded[:height, :width] = image
        step = max(int(window * (1 - self.overlap)), 1)
        corners = [(top, left) for top in _starts(padded_h, window, step) for left in _starts(padded_w, window, step)]
        if len(corners) == 1:  # one window: the Gaussian weights cancel
            return _sigmoid(self.logits(padded[None, None])[0, 0])[:height, :width]
        weight = gaussian_window(window)
        total = np.zeros_like(padded)
        norm = np.zeros_like(padded)
        for top, left in corners:
            tile = padded[None, None, top:top + window, left:left + window]
            logits = self.logits(np.ascontiguousarray(tile))[0, 0]
            total[top:top + window, left:left + window] += weight * _sigmoid(logits)
            norm[top:top + window, left:left + window] += weight
        return (total / norm)[:height, :width]

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Wire probability (H,W float32) for a mono image (uint8/uint16/float); 0 outside the
        non-zero (collimated) region, which is cropped away first as in the paper."""
        if image.ndim != 2:
            raise ValueError(f"segmentation needs a single-channel image, got shape {image.shape}")
        normalised, box = crop_and_normalise(image)
        probability = np.zeros(image.shape, np.float32)
        probability[box] = self.probability_normalised(normalised) * (image[box] != 0)
        return probability


@dataclass
class FrameSegmentation:
    probability: np.ndarray  # (H,W) float32
    mask: np.ndarray  # (H,W) uint8, 255 = wire
    centreline: Centreline | None  # insertion end to tip; None when no wire was found
    confidence: float  # mean probability over the mask, 0 without a mask
    low_confidence: bool  # confidence below the segmenter's cut: likely a lost wire, not to be trusted


def mask_confidence(probability: np.ndarray, wire: np.ndarray) -> float:
    """Mean probability over the segmented wire pixels, 0 without any: a frame whose wire the
    network is unsure of (a faint wire, or an ECG lead taken for one) scores lower."""
    return float(probability[wire].mean()) if wire.any() else 0.0


def segment_frame(segmenter: Segmenter, image: np.ndarray, confidence_cut: float | None = None
                  ) -> FrameSegmentation:
    """Mask, centreline and confidence of one frame; confidence_cut overrides the segmenter's."""
    probability = segmenter.probability(image)
    wire = probability >= segmenter.threshold
    centreline = extract_centreline(wire, valid=image != 0)
    confidence = mask_confidence(probability, wire)
    cut = segmenter.confidence_cut if confidence_cut is None else confidence_cut
    return FrameSegmentation(probability, wire.astype(np.uint8) * 255, centreline, confidence, confidence < cut)


LOW_CONFIDENCE_BORDER_PX = 3


def overlay(image: np.ndarray, result: FrameSegmentation) -> np.ndarray:
    """rgb8 view for a person: the mask in green, the centreline in yellow, the tip in red, and a
    red border round a frame flagged low_confidence, so that an RViz user sees which not to trust."""
    grey = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8) if image.dtype != np.uint8 else image
    rgb = np.repeat(grey[..., None], 3, axis=2)
    wire = result.mask > 0
    rgb[wire] = (0.5 * rgb[wire] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
    if result.centreline is not None:
        cv2.polylines(rgb, [np.rint(result.centreline.points).astype(np.int32)], False, (255, 255, 0), 1)
        cv2.circle(rgb, tuple(int(v) for v in np.rint(result.centreline.tip)), 4, (255, 0, 0), 1)
    if result.low_confidence:
        height, width = grey.shape
        cv2.rectangle(rgb, (0, 0), (width - 1, height - 1), (255, 0, 0), LOW_CONFIDENCE_BORDER_PX)
    return rgb
