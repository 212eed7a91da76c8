"""Checkpoints and inference: PyTorch or ONNX Runtime, sliding windows with
Gaussian weighting (50% overlap), the paper's crop + mask-guided z-score."""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from guidewire.preprocessing import crop_and_normalise
from guidewire.segmentation.centreline import Centreline, extract_centreline
from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork, fold_batch_norms

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "fganet_small.pt"
ONNX_OPSET = 18
SIZE_MULTIPLE = 32  # five 2x poolings
PRECISIONS = ("float32", "bfloat16")


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


def cached_onnx_path(weights: str | Path) -> Path:
    """Where the ONNX export of a checkpoint is kept: a user cache keyed by the checkpoint's
    content, so the installed package stays read-only and new weights get a new export."""
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "guidewire_perception" / "onnx"
    return cache / f"{Path(weights).stem}-{digest}.onnx"


def gaussian_window(size: int, sigma_scale: float = 0.125) -> np.ndarray:
    """nnU-Net's importance map: centre pixels of a window count more than its edges."""
    axis = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / (sigma_scale * size)) ** 2)
    window = np.outer(axis, axis)
    return (window / window.max()).clip(1e-3, None).astype(np.float32)


def _starts(length: int, window: int, step: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window, step))
    return starts + [length - window]


class Segmenter:
    """Probability map of the wire for a mono image, with either backend.

    precision "bfloat16" runs the PyTorch backend under bf16 autocast, which can be faster
    on CPUs with AMX or AVX512-BF16 (only the convolutions gain, not the deformable
    sampling; on this machine between 1.05x and 1.3x for the shipped FGA-Net, run to run,
    see bench/results/segmentation.md) and is slower on others. Probabilities differ
    from float32 by about 1e-2; held-out metrics are about unchanged."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, backend: str = "torch", window: int = 512,
                 overlap: float = 0.5, onnx_file: str | Path | None = None, threads: int = 0,
                 precision: str = "float32"):
        if backend not in ("torch", "onnx"):
            raise ValueError(f"unknown segmentation backend {backend!r}: use 'torch' or 'onnx'")
        if precision not in PRECISIONS or (backend == "onnx" and precision != "float32"):
            raise ValueError(f"precision {precision!r} is not one of {PRECISIONS} for the {backend} backend "
                             "(ONNX Runtime runs float32)")
        if window % SIZE_MULTIPLE:
            raise ValueError(f"window must be a multiple of {SIZE_MULTIPLE}, got {window}")
        self.network, self.meta = load_checkpoint(weights)
        # oneDNN's fast layout for narrow convolutions, with BN folded away.
        fold_batch_norms(self.network).to(memory_format=torch.channels_last)
        self.precision = precision
        self.backend, self.window, self.overlap = backend, window, overlap
        self.threshold = float(self.meta.get("threshold", 0.5))
        if threads:
            torch.set_num_threads(threads)
        self._session = None
        if backend == "onnx":
            import onnxruntime

            onnx_path = Path(onnx_file) if onnx_file else cached_onnx_path(weights)
            if not onnx_path.is_file():
                export_onnx(self.network, onnx_path, window)
            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            try:
                self._session = onnxruntime.InferenceSession(str(onnx_path), options,
                                                             providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime raises its own untyped errors for bad files
                raise WeightsError(f"cannot load ONNX model {onnx_path}: {error}") from error

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, {"image": batch})[0]
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=self.precision == "bfloat16"):
            logits = self.network(torch.from_numpy(batch).contiguous(memory_format=torch.channels_last))
        return logits.float().numpy()

    def probability_normalised(self, image: np.ndarray) -> np.ndarray:
        """Sliding-window probabilities for an already normalised float image."""
        height, width = image.shape
        window = min(self.window, -(-max(height, width) // SIZE_MULTIPLE) * SIZE_MULTIPLE)
        padded_h, padded_w = max(height, window), max(width, window)
        padded = np.zeros((padded_h, padded_w), np.float32)
        padded[:height, :width] = image
        weight = gaussian_window(window)
        total = np.zeros_like(padded)
        norm = np.zeros_like(padded)
        step = max(int(window * (1 - self.overlap)), 1)
        for top in _starts(padded_h, window, step):
            for left in _starts(padded_w, window, step):
                tile = padded[None, None, top:top + window, left:left + window]
                logits = self._logits(np.ascontiguousarray(tile))[0, 0]
                total[top:top + window, left:left + window] += weight / (1 + np.exp(-logits))
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


def segment_frame(segmenter: Segmenter, image: np.ndarray) -> FrameSegmentation:
    probability = segmenter.probability(image)
    wire = probability >= segmenter.threshold
    centreline = extract_centreline(wire, valid=image != 0)
    confidence = float(probability[wire].mean()) if wire.any() else 0.0
    return FrameSegmentation(probability, wire.astype(np.uint8) * 255, centreline, confidence)


def overlay(image: np.ndarray, result: FrameSegmentation) -> np.ndarray:
    """rgb8 view for a person: the mask in green, the centreline in yellow, the tip in red."""
    grey = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8) if image.dtype != np.uint8 else image
    rgb = np.repeat(grey[..., None], 3, axis=2)
    wire = result.mask > 0
    rgb[wire] = (0.5 * rgb[wire] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
    if result.centreline is not None:
        cv2.polylines(rgb, [np.rint(result.centreline.points).astype(np.int32)], False, (255, 255, 0), 1)
        cv2.circle(rgb, tuple(int(v) for v in np.rint(result.centreline.tip)), 4, (255, 0, 0), 1)
    return rgb
