"""Ridge-filter baseline for thin dark wires in fluoroscopy (issue 22).

Frangi's vesselness for dark ridges at scales matched to the wire (1.5-4 px wide), on the frame's grey
levels after a 3x3 median (quantum noise), inside the field of view; then a threshold, and of the
thresholded pixels only the connected components that are long and thin, as a wire is: blobs (snaps,
electrodes, bones' ends) and short fragments of texture go. The threshold and the minimum length are
chosen by the caller on tuning frames (bench/bench_segmentation_cross.py), over a scale that is either one
for the tuning set or each frame's own (frame_scale).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.filters import frangi
from skimage.measure import label, regionprops

# Hessian scales for a bar 1.5-4 px wide (a bar of width w answers best near sigma = w / 2).
WIRE_SIGMAS_PX = (1.0, 1.5, 2.0)
# Mean width (area / length) of a kept component: the wire's 4 px plus the filter's spread at sigma 2.
MAX_MEAN_WIDTH_PX = 7.0
# The wire covers 0.1-0.7 % of a frame's pixels (masks of generators A, B and D): a per-frame scale at the
# 99.5th percentile sits near the wire's response in a frame that shows one.
FRAME_SCALE_PERCENTILE = 99.5


def frangi_dark_ridges(image: np.ndarray, valid: np.ndarray | None = None,
                       sigmas=WIRE_SIGMAS_PX) -> np.ndarray:
    """Frangi vesselness (float32, >= 0) of dark ridges in a mono image (uint8, uint16 or float in 0..1),
    zero outside `valid` and within 2 * max(sigmas) of its edge, where a collimator's step answers."""
    if image.ndim != 2:
        raise ValueError(f"expected a single-channel image, got shape {image.shape}")
    scale = float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0
    grey = image.astype(np.float32) / scale
    grey = cv2.medianBlur(grey, 3)
    response = frangi(grey, sigmas=sigmas, black_ridges=True).astype(np.float32)
    if valid is not None:
        margin = int(np.ceil(2 * max(sigmas)))
        inside = ndimage.binary_erosion(valid, iterations=margin, border_value=1)
        response *= inside
    return response


def elongated_components(mask: np.ndarray, min_length_px: float,
                         max_mean_width_px: float = MAX_MEAN_WIDTH_PX) -> np.ndarray:
    """The 8-connected components of `mask` at least `min_length_px` long (major axis of the component's
    second moments) and on average at most `max_mean_width_px` wide (area / that length)."""
    labels = label(mask, connectivity=2)
    areas = np.bincount(labels.ravel())
    # A component of length L covers at least L pixels: the rest cannot qualify (and are many at low thresholds).
    candidates = np.flatnonzero(areas >= min_length_px)
    candidates = candidates[candidates > 0]
    labels[~np.isin(labels, candidates)] = 0
    keep = [region.label for region in regionprops(labels)
            if region.axis_major_length >= min_length_px
            and region.area / max(region.axis_major_length, 1.0) <= max_mean_width_px]
    return np.isin(labels, keep) if keep else np.zeros(mask.shape, bool)


def frame_scale(response: np.ndarray, percentile: float = FRAME_SCALE_PERCENTILE) -> float:
    """A frame's own response scale, for a threshold that does not depend on a generator's contrast."""
    return max(float(np.percentile(response, percentile)), 1e-12)


def ridge_wire_map(response: np.ndarray, scale: float, threshold: float, min_length_px: float,
                   max_mean_width_px: float = MAX_MEAN_WIDTH_PX) -> np.ndarray:
    """The response divided by `scale` and clipped to 0..1, kept only on the elongated components of
    (that >= threshold): the map is >= threshold exactly on the baseline's wire mask."""
    scaled = np.clip(response / scale, 0.0, 1.0)
    return scaled * elongated_components(scaled >= threshold, min_length_px, max_mean_width_px)
