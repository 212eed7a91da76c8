"""Classical segmentation of the wire in optical camera images.

On the lit platform the wire is a thin dark line (the magnetic-fusion paper
finds it with an intensity threshold). A morphological black-hat (closing
minus image) with a structuring element wider than the wire removes the
uneven illumination and keeps thin dark structures; the threshold sits at a
multiple of the background's robust noise level, so it follows the camera's
gain instead of a fixed grey level.
"""
from __future__ import annotations

import cv2
import numpy as np


def segment_dark_wire(image: np.ndarray, max_wire_width_px: int = 9, noise_factor: float = 6.0,
                      min_contrast: float = 12.0) -> np.ndarray:
    """Boolean mask of thin dark structures in a mono image (uint8 or float)."""
    if image.ndim != 2:
        raise ValueError(f"expected a single-channel image, got shape {image.shape}")
    frame = np.asarray(image, np.float32)
    size = 2 * int(max_wire_width_px) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    response = cv2.morphologyEx(frame, cv2.MORPH_BLACKHAT, kernel)
    response = cv2.GaussianBlur(response, (0, 0), 1.0)
    median = float(np.median(response))
    spread = 1.4826 * float(np.median(np.abs(response - median)))
    threshold = max(min_contrast, median + noise_factor * spread)
    mask = response > threshold
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
