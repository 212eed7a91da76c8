"""One frame's result: the mask, centreline and confidence, and the overlay a person looks at."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from guidewire.preprocessing import field_of_view
from guidewire.segmentation.centreline import MAX_GAP_FRACTION, Centreline, extract_centreline
from guidewire.segmentation.inference import Segmenter


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
    wire = segmenter.wire_mask(probability)
    centreline = extract_centreline(wire, valid=field_of_view(image, segmenter.preprocessing),
                                    max_gap_px=MAX_GAP_FRACTION * max(wire.shape))
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
