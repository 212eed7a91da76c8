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
    return box_of(image != 0 if image.ndim == 2 else (image != 0).any(axis=2))


def mask_guided_zscore(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """FGA-Net paper: z-score with mean and std taken inside the valid mask only
    (default: the non-zero pixels); pixels outside the mask become 0."""
    image = image.astype(np.float64)  # float32 statistics of values near its limit (3e38) overflow to NaN
    mask = image != 0 if mask is None else mask.astype(bool)
    if not mask.any():
        return np.zeros(image.shape, np.float32)
    values = image[mask]
    normalised = (image - values.mean()) / max(float(values.std()), 1e-6)
    return np.where(mask, normalised, 0.0).astype(np.float32)


def crop_and_normalise(image: np.ndarray) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Crop to the valid region, then mask-guided z-score; returns the box for mapping back."""
    box = nonzero_crop_box(image)
    cropped = image[box]
    return mask_guided_zscore(cropped, cropped != 0), box


# Border pixels that hold exactly one value form a blank collimator border (no tolerance: a dark wire
# a grey level above a zero border, where it enters the field, must not join the border).
BLANK_TOLERANCE = 0.0
# Robust normalisation: the field's median and its 16th..84th percentile half-spread (the standard deviation of
# a normal distribution), values clipped to this many spreads so that burned-in text or a saturated
# lung does not dominate the frame's scale.
ROBUST_CLIP = 6.0


def blank_border(image: np.ndarray) -> np.ndarray:
    """Pixels of a blank collimator border: connected to the frame's edge and equal to the value
    most common along the edge, whether that is 0, a grey fill or white. A frame without such a
    border (a noisy shutter region, or no collimator) has none; the wire and anatomy never hold one
    exact value over a region connected to the edge."""
    frame = image.astype(np.float32)
    edge = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    values, counts = np.unique(np.rint(edge), return_counts=True)
    fill = values[counts.argmax()]
    if counts.max() < 0.1 * edge.size:  # the edge is not blank anywhere to speak of
        return np.zeros(image.shape, bool)
    flat = (np.abs(frame - fill) <= BLANK_TOLERANCE).astype(np.uint8)
    flat = cv2.morphologyEx(flat, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))  # noise pixels at the fill value
    count, labels = cv2.connectedComponents(flat, connectivity=4)
    touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = np.isin(labels, touching[touching > 0])
    return border & (border.mean() < 0.95)  # nothing left to segment: treat the frame as all field


def robust_field_of_view(image: np.ndarray) -> np.ndarray:
    """The collimated field: every pixel that is not part of a blank border (blank_border). A soft,
    noisy shutter region stays in the field: the network sees it as it sees any dim anatomy."""
    if image.ndim != 2:
        raise ValueError(f"expected a single-channel image, got shape {image.shape}")
    return ~blank_border(image)


def robust_normalise(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(image - median) / half the 16th..84th percentile spread, both over the valid pixels;
    clipped to +-ROBUST_CLIP; 0 outside valid."""
    image = image.astype(np.float64)  # as in mask_guided_zscore: no overflow of a float32 spread
    if not valid.any():
        return np.zeros(image.shape, np.float32)
    low, centre, high = np.percentile(image[valid], [16, 50, 84])
    spread = max(float(high - low) / 2, 1e-6)
    normalised = np.clip((image - centre) / spread, -ROBUST_CLIP, ROBUST_CLIP)
    return np.where(valid, normalised, 0.0).astype(np.float32)


def box_of(valid: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of the True pixels of a (H,W) mask; the whole image when there are none."""
    rows, cols = np.any(valid, axis=1), np.any(valid, axis=0)
    if not rows.any():
        return slice(0, valid.shape[0]), slice(0, valid.shape[1])
    r0, r1 = np.flatnonzero(rows)[[0, -1]]
    c0, c1 = np.flatnonzero(cols)[[0, -1]]
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


def paper_preprocessing(image: np.ndarray):
    """The FGA-Net paper's: crop to the non-zero region, z-score over its non-zero pixels."""
    box = nonzero_crop_box(image)
    cropped = image[box]
    valid = cropped != 0
    return mask_guided_zscore(cropped, valid), box, valid


def robust_preprocessing(image: np.ndarray):
    """Crop to robust_field_of_view's box, robust_normalise inside it."""
    valid = robust_field_of_view(image)
    box = box_of(valid)
    return robust_normalise(image[box], valid[box]), box, valid[box]


# name -> function(image) returning (normalised crop, its box in the frame, the field inside the crop)
PREPROCESSING = {"paper": paper_preprocessing, "robust": robust_preprocessing}


def field_of_view(image: np.ndarray, preprocessing: str = "paper") -> np.ndarray:
    """The whole frame's field of view under a preprocessing (its valid pixels)."""
    if preprocessing == "paper":
        return image != 0
    return robust_field_of_view(image)
