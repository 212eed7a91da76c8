"""Monocular depth for the paper's image branch: MiDaS v3 (DPT-Hybrid) from a local folder, a small
network trained on bench images, and the metric alignment of relative inverse depth.

MiDaS's output is affine-invariant inverse depth. It is made metric by a
scale and shift in disparity solved over pixels of known depth, as MiDaS's
evaluation does; a robust variant reweights outliers (the wire, shadows).
The known depths must differ: a top camera sees the platform at one depth
(0.05 % spread on the bench), which fixes the shift but not the scale, so
the image branch adds the wire's known entry point (learned.image_branch).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from guidewire.geometry import PinholeCamera
from guidewire.preprocessing import pad_to_square_and_resize


class DepthModelError(RuntimeError):
    """A depth network cannot be built or loaded; the message says what to put where."""


def midas_v3_config():
    """transformers' DPTConfig of MiDaS v3 = DPT-Hybrid (BiT-R50 + ViT-B/16, 384 input; about 122 M parameters)."""
    from transformers import BitConfig, DPTConfig

    backbone = BitConfig(layer_type="bottleneck", depths=[3, 4, 9], out_features=["stage1", "stage2", "stage3"],
                         global_padding="same", embedding_dynamic_padding=True)
    return DPTConfig(is_hybrid=True, backbone_config=backbone, backbone_featmap_shape=[1, 1024, 24, 24],
                     neck_hidden_sizes=[256, 512, 768, 768], reassemble_factors=[1, 1, 1, 0.5],
                     readout_type="project")


def load_midas_v3(folder: str | Path):
    """MiDaS v3 weights from a local folder (the files of Intel/dpt-hybrid-midas: config.json and
    model.safetensors); nothing is downloaded."""
    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        raise DepthModelError(f"no MiDaS v3 weights in {folder}: put config.json and model.safetensors of "
                              "Intel/dpt-hybrid-midas (Hugging Face) there; nothing is downloaded at run time")
    from transformers import DPTForDepthEstimation

    try:
        return DPTForDepthEstimation.from_pretrained(folder, local_files_only=True).eval()
    except (OSError, ValueError) as error:
        raise DepthModelError(f"cannot load MiDaS v3 from {folder}: {error}") from error


class SmallDepthNet(nn.Module):
    """A small encoder-decoder for relative inverse depth (three scales, skip connections).

    Ours rather than a tiny DPT: a transformers DPT of 0.5 M parameters took 4 s per training batch of
    four 256 px images on these 2 cores, this one a tenth of that at 512 px, the paper's input size."""

    def __init__(self, width: int = 12):
        super().__init__()

        def block(inputs, outputs):
            return nn.Sequential(nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU(),
                                 nn.Conv2d(outputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), nn.ReLU())

        self.down = nn.ModuleList([block(1, width), block(width, 2 * width), block(2 * width, 4 * width)])
        self.up = nn.ModuleList([block(6 * width, 2 * width), block(3 * width, width)])
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        skips, x = [], image
        for index, stage in enumerate(self.down):
            x = stage(x if index == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for stage, skip in zip(self.up, reversed(skips[:-1])):
            x = stage(torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], 1))
        return self.head(x)[:, 0]


def network_input(image: np.ndarray, size: int = 512) -> torch.Tensor:
    """The paper's preprocessing (pad to square, resize) and a per-image standardisation, (1,1,S,S)."""
    frame = pad_to_square_and_resize(np.asarray(image, np.float32), size)
    frame = (frame - frame.mean()) / max(float(frame.std()), 1e-6)
    return torch.from_numpy(frame)[None, None]


def to_source_pixels(map_square: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Undo pad_to_square_and_resize for a map predicted on the square input."""
    height, width = shape
    side = max(height, width)
    full = cv2.resize(map_square.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    top, left = (side - height) // 2, (side - width) // 2
    return full[top:top + height, left:left + width]


def align_disparity(prediction: np.ndarray, depth: np.ndarray, mask: np.ndarray, robust: bool = True,
                    iterations: int = 5) -> tuple[float, float]:
    """Scale s and shift t with s * prediction + t ~= 1 / depth over `mask` (2x2 least squares, as MiDaS's
    evaluation); `robust` starts from Theil-Sen and reweights by Tukey's biweight. Needs anchors whose disparities
    spread by MIN_SPREAD or more: a ValueError otherwise."""
    p = prediction[mask].astype(np.float64)
    d = 1.0 / depth[mask].astype(np.float64)
    if p.size < 2 or np.ptp(p) == 0:
        raise ValueError("disparity alignment needs at least two pixels of different predicted depth")
    if not robust:
        return weighted_line(p, d, np.ones_like(p))
    # Robust: start from Theil-Sen (median of pairwise slopes over a fixed subsample), which a tenth
    # of wrong anchors cannot drag, then Tukey-biweight least squares from there (Huber's weights let
    # far outliers in the prediction, leverage points, pull the line back step by step).
    pick = np.random.default_rng(0).integers(0, p.size, (4096, 2))
    dp, dd = p[pick[:, 1]] - p[pick[:, 0]], d[pick[:, 1]] - d[pick[:, 0]]
    usable = np.abs(dp) > 1e-12
    if not usable.any():
        raise ValueError("disparity alignment needs at least two pixels of different predicted depth")
    scale = float(np.median(dd[usable] / dp[usable]))
    shift = float(np.median(d - scale * p))
    for _ in range(iterations):
        residual = np.abs(scale * p + shift - d)
        cut = 4.685 * 1.4826 * max(np.median(residual), 1e-6 * float(np.abs(d).mean()))
        scale, shift = weighted_line(p, d, np.clip(1.0 - (residual / cut) ** 2, 0.0, None) ** 2)
    return float(scale), float(shift)


MIN_SPREAD = 0.005  # weighted std / mean of the anchors' disparity (about 2 mm of depth at 0.45 m)


def weighted_line(p: np.ndarray, d: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted 2x2 normal equations of d ~= s p + t (MiDaS's alignment)."""
    # Anchors of (nearly) one depth leave the scale to the prediction's noise: on the bench's platform
    # alone it came out near 0, which put every wire point on the platform, 20-45 mm below the wire.
    mean = np.average(d, weights=weights)
    spread = np.sqrt(np.average((d - mean) ** 2, weights=weights)) / abs(mean)
    if not spread >= MIN_SPREAD:
        raise ValueError(f"disparity alignment needs anchors at different depths: theirs spread {100 * spread:.2f} % "
                         f"(< {100 * MIN_SPREAD:.1f} %), which leaves the scale undetermined; add anchors at other "
                         "depths (a known point of the wire)")
    a00, a01, a11 = (weights * p * p).sum(), (weights * p).sum(), weights.sum()
    b0, b1 = (weights * p * d).sum(), (weights * d).sum()
    determinant = a00 * a11 - a01 * a01
    if determinant <= 1e-12 * a00 * a11:
        raise ValueError("disparity alignment is singular: the anchors carry one depth only")
    return float((a11 * b0 - a01 * b1) / determinant), float((a00 * b1 - a01 * b0) / determinant)


def plane_disparity(camera: PinholeCamera, shape: tuple[int, int], size: int, height: float = 0.0) -> np.ndarray:
    """Inverse optical depth (1/m) of the horizontal plane z = height on the network's square input
    (the image padded to a square and resized to `size`): 0 on the padding and where rays miss the plane.
    Computed on the size x size grid itself, not at the source resolution and then resized (12x fewer rays)."""
    rows, cols = shape
    side = max(rows, cols)
    scale = side / size
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    u = (u + 0.5) * scale - 0.5 - (side - cols) // 2
    v = (v + 0.5) * scale - 0.5 - (side - rows) // 2
    inside = (u >= 0) & (u <= cols - 1) & (v >= 0) & (v <= rows - 1)
    normalised = cv2.undistortPoints(np.column_stack([u[inside], v[inside]]).reshape(-1, 1, 2), camera.intrinsics,
                                     camera.distortion).reshape(-1, 2)
    rays = np.column_stack([normalised, np.ones(len(normalised))]) @ camera.rotation.T
    with np.errstate(divide="ignore", invalid="ignore"):
        disparity = rays[:, 2] / (height - camera.position[2])
    out = np.zeros((size, size), np.float32)
    out[inside] = np.where(disparity > 0, disparity, 0.0)
    return out
