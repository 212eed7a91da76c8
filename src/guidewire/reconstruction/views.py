"""Calibrated views and wire centrelines in them: rays, ordering, resampling."""
from __future__ import annotations

import cv2
import numpy as np

from guidewire.geometry import PinholeCamera


def pixel_rays(camera: PinholeCamera, pixels: np.ndarray) -> np.ndarray:
    """World-frame ray directions (n,3) through distorted pixels, scaled so that
    the optical depth (z in the camera frame) is the ray parameter."""
    normalised = cv2.undistortPoints(np.asarray(pixels, float).reshape(-1, 1, 2), camera.intrinsics,
                                     camera.distortion).reshape(-1, 2)
    return np.column_stack([normalised, np.ones(len(normalised))]) @ camera.rotation.T


def optical_depth(camera: PinholeCamera, point) -> float:
    return float(camera.to_camera(np.asarray(point, float).reshape(1, 3))[0, 2])


def orient_from_entry(pixels: np.ndarray, entry_pixel: np.ndarray) -> np.ndarray:
    """The centreline ordered so that it starts at the end nearer the projected entry point."""
    if np.linalg.norm(pixels[-1] - entry_pixel) < np.linalg.norm(pixels[0] - entry_pixel):
        return pixels[::-1]
    return pixels


def arc_lengths(points: np.ndarray) -> np.ndarray:
    """Arc length of each point of a polyline from its first, in the points' own unit."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def points_at(points: np.ndarray, along: np.ndarray, at) -> np.ndarray:
    """The polyline's points at arc lengths `at` (`along`: its points' arc lengths), clamped to its ends."""
    return np.column_stack([np.interp(at, along, points[:, i]) for i in range(points.shape[1])])


def resample_polyline(points: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` points at equal arc length along a polyline, and their arc-length fraction 0..1."""
    along = arc_lengths(points)
    fraction = np.linspace(0.0, 1.0, count)
    return points_at(points, along, fraction * along[-1]), fraction


def polyline_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def resample_by_spacing(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` of arc length, in the points' own unit (the last point kept)."""
    length = polyline_length(points)
    count = max(2, int(np.ceil(length / spacing)) + 1)
    return resample_polyline(points, count)[0]


def camera_centreline(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """The wire's ordered centreline (n,2) px in a camera image (camera_trace's points)."""
    trace = camera_trace(image, mask)
    return None if trace is None else trace.points


def camera_trace(image: np.ndarray, mask: np.ndarray | None = None):
    """The wire's Centreline (guidewire.segmentation.centreline) in a camera image, in the image's pixels:
    from `mask`, else the classical dark-wire segmenter; None when there is no wire. Only the mask's
    bounding box is skeletonised."""
    from dataclasses import replace

    from guidewire.segmentation.centreline import extract_centreline
    from guidewire.segmentation.classical import segment_dark_wire

    if mask is None:
        mask = segment_dark_wire(image)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    top, left = max(rows.min() - 2, 0), max(cols.min() - 2, 0)
    line = extract_centreline(mask[top:rows.max() + 3, left:cols.max() + 3])
    if line is None:
        return None
    corner = np.array([left, top], float)
    return replace(line, points=line.points + corner, tip=line.tip + corner, off_path=line.off_path + corner)
