"""Sliding-window inference: Gaussian-weighted windows (50% overlap) over the paper's crop and
mask-guided z-score, on any of the backends (guidewire.segmentation.backends)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from guidewire.preprocessing import PREPROCESSING
from guidewire.segmentation.backends import SIZE_MULTIPLE, check_settings, load_compiled, onnx_session
from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS, load_checkpoint
from guidewire.segmentation.fganet import fold_batch_norms
from guidewire.segmentation.precision import resolve_precision
from guidewire.segmentation.ridge import elongated_components


# The wire width in px of the frames the shipped network was trained on (2-4 px at 256x256, stages 2-6),
# for checkpoints that do not record theirs.
EXPECTED_WIRE_WIDTH_PX = 3.0


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
    probabilities stay NumPy arrays on the host.

    min_component_length (fraction of the frame's larger side) and max_component_width_px (mean width,
    area / major axis) keep of the thresholded mask only the long thin 8-connected components, as the ridge
    baseline does (guidewire.segmentation.ridge.elongated_components); 0: no bound (both 0: no filter)."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, backend: str = "torch", window: int = 512,
                 overlap: float = 0.5, onnx_file: str | Path | None = None, threads: int = 0,
                 precision: str = "float32", device: str = "cpu", preprocessing: str | None = None,
                 wire_width_px: float | None = None, min_component_length: float = 0.0,
                 max_component_width_px: float = 0.0, test_time_scales: tuple[float, ...] = (1.0,),
                 test_time_flips: bool = False):
        if not 0 <= min_component_length <= 1:
            raise ValueError(f"min_component_length is a fraction of the frame's side, 0..1, got "
                             f"{min_component_length}")
        if max_component_width_px < 0:
            raise ValueError(f"max_component_width_px must be >= 0 (0: no bound), got {max_component_width_px}")
        self.min_component_length, self.max_component_width_px = min_component_length, max_component_width_px
        if not test_time_scales or not all(0.25 <= scale <= 4 for scale in test_time_scales):
            raise ValueError(f"test_time_scales must be one or more factors in 0.25..4, got {test_time_scales}")
        self.test_time_scales, self.test_time_flips = tuple(float(s) for s in test_time_scales), test_time_flips
        self.device = check_settings(backend, window, precision, device)
        self.weights = Path(weights)
        self.network, self.meta = load_checkpoint(weights)
        # oneDNN's (and cuDNN's) fast layout for narrow convolutions, with BN folded away.
        fold_batch_norms(self.network).to(self.device, memory_format=torch.channels_last)
        self.precision = "float32" if backend == "onnx" else resolve_precision(precision, self.device)
        self.backend, self.window, self.overlap = backend, window, overlap
        self.threshold = float(self.meta.get("threshold", 0.5))
        # How the frame is cropped and normalised (guidewire.preprocessing.PREPROCESSING): the checkpoint's
        # own unless asked for; "paper" for checkpoints that do not say.
        self.preprocessing = preprocessing or str(self.meta.get("preprocessing", "paper"))
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing '{self.preprocessing}' is not one of {', '.join(PREPROCESSING)}")
        # The wire width in px the network was trained to see, and the width in the frames it is given:
        # frames are resampled by their ratio (None or 0: as they come).
        self.expected_wire_width_px = float(self.meta.get("wire_width_px", EXPECTED_WIRE_WIDTH_PX))
        if wire_width_px is not None and wire_width_px < 0:
            raise ValueError(f"wire_width_px must be positive (or 0: do not resample), got {wire_width_px}")
        self.wire_width_px = wire_width_px or None
        # Frames whose confidence falls below it are flagged; 0 (flag none) without a chosen cut.
        self.confidence_cut = float(self.meta.get("confidence_cut", 0.0))
        if threads:
            torch.set_num_threads(threads)
        self._compiled = load_compiled(weights, window, self.precision) if backend == "compiled" else None
        self._session = onnx_session(self.network, weights, window, onnx_file, threads) if backend == "onnx" else None

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

    @property
    def scale(self) -> float:
        """Resampling factor from the frame to the network's input (1: none)."""
        return self.expected_wire_width_px / self.wire_width_px if self.wire_width_px else 1.0

    def probability(self, image: np.ndarray) -> np.ndarray:
        """Wire probability (H,W float32) for a mono image (uint8/uint16/float); 0 outside the
        collimated field, which is cropped away first as in the paper (preprocessing "paper": the
        non-zero region; "robust": guidewire.preprocessing.robust_field_of_view). With a wire width
        set, the frame is resampled so that its wire is as wide as the network expects, and the
        probabilities are resampled back to the frame's size. test_time_scales / test_time_flips
        average the probabilities of copies resampled by those factors and mirrored (4 mirrors)."""
        if image.ndim != 2:
            raise ValueError(f"segmentation needs a single-channel image, got shape {image.shape}")
        # Here, before any backend: a NaN reaching the compiled model's deformable sampling indexed out of
        # bounds and ended the process, while eager PyTorch returned confidence 0 without a word.
        if image.dtype.kind == "f" and not np.isfinite(image).all():
            raise ValueError("image holds NaN or infinite values")
        if image.dtype.kind == "f":  # finite values near float32's limit (3e38) must not overflow on the way
            image = image.astype(np.float64)
        # Test-time augmentation: the mean probability over resampled and mirrored copies of the frame.
        flips = ((), (1,), (0,), (0, 1)) if self.test_time_flips else ((),)
        total = np.zeros(image.shape, np.float32)
        for factor in self.test_time_scales:
            for axes in flips:
                flipped = np.flip(image, axes) if axes else image
                probability = self._probability_at_scale(np.ascontiguousarray(flipped), self.scale * factor)
                total += np.flip(probability, axes) if axes else probability
        return total / (len(self.test_time_scales) * len(flips))

    def _probability_at_scale(self, image: np.ndarray, scale: float) -> np.ndarray:
        if abs(scale - 1) > 0.02:
            height, width = image.shape
            size = (max(int(round(width * scale)), SIZE_MULTIPLE), max(int(round(height * scale)), SIZE_MULTIPLE))
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(image, size, interpolation=interpolation)
            if self.preprocessing == "paper":  # the zero border stays exactly zero, not blended into the field
                resized[cv2.resize((image == 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0] = 0
            probability = self._probability(resized)
            return cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
        return self._probability(image)

    def wire_mask(self, probability: np.ndarray) -> np.ndarray:
        """The wire (H,W bool): the probability at or above the threshold, and of it only the long thin
        components when a component bound is set."""
        wire = probability >= self.threshold
        if not (self.min_component_length or self.max_component_width_px):
            return wire
        return elongated_components(wire, self.min_component_length * max(wire.shape),
                                    self.max_component_width_px or np.inf)

    def _probability(self, image: np.ndarray) -> np.ndarray:
        normalised, box, valid = PREPROCESSING[self.preprocessing](image)
        probability = np.zeros(image.shape, np.float32)
        probability[box] = self.probability_normalised(normalised) * valid
        return probability
