"""Image preprocessing from the two papers, for the downstream nodes."""
from __future__ import annotations

import cv2
import numpy as np


def pad_to_square_and_resize(image: np.ndarray, size: int = 512) -> np.ndarray:
    """Magnetic-fusion paper: pad the short side symmetrically (2048x1536 gets 256 rows
    top and bottom), then bilinear resize to size x size."""
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    padded = cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT, 0)
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_LINEAR)


def nonzero_crop_box(image: np.ndarray) -> tuple[slice, slice]:
    """FGA-Net paper: the bounding box of the non-zero (collimated, valid) region."""
    valid = image != 0 if image.ndim == 2 else (image != 0).any(axis=2)
    rows, cols = np.any(valid, axis=1), np.any(valid, axis=0)
    if not rows.any():
        return slice(0, image.shape[0]), slice(0, image.shape[1])
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


def mask_guided_zscore(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """FGA-Net paper: z-score with mean and std taken inside the valid mask only
    (default: the non-zero pixels); pixels outside the mask become 0."""
    image = image.astype(np.float32)
    mask = image != 0 if mask is None else mask.astype(bool)
    if not mask.any():
        return np.zeros_like(image)
    values = image[mask]
    normalised = (image - values.mean()) / max(float(values.std()), 1e-6)
    return np.where(mask, normalised, 0.0).astype(np.float32)


def crop_and_normalise(image: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Crop to the valid region, then mask-guided z-score; returns the box for mapping back."""
    box = nonzero_crop_box(image)
    cropped = image[box]
    return mask_guided_zscore(cropped, cropped != 0), box
