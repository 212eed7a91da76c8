"""Stereo label maker: the wire triangulated from two calibrated views.

Each view's centreline is ordered entry -> tip. A point of the first view
constrains its partner to an epipolar line in the second; along two ordered
centrelines the partners must also keep their order. Dynamic time warping
over the (first, second) station grid, with the point-to-epipolar-line
distance as the cost, finds that monotone pairing; each pair's partner is
then refined to where the epipolar line crosses the second centreline, and
OpenCV triangulates the pairs. Stations whose epipolar line runs along the
second centreline (the cost valley is flat) are dropped instead of guessed.
"""
from __future__ import annotations

import cv2
import numpy as np

from guidewire.geometry import PinholeCamera, triangulate
from guidewire.reconstruction.physics import ReconstructionError
from guidewire.reconstruction.views import orient_from_entry, resample_by_spacing, resample_polyline


def _undistort(camera: PinholeCamera, pixels: np.ndarray) -> np.ndarray:
    return cv2.undistortPoints(np.asarray(pixels, float).reshape(-1, 1, 2), camera.intrinsics, camera.distortion,
                               P=camera.intrinsics).reshape(-1, 2)


def fundamental_matrix(first: PinholeCamera, second: PinholeCamera) -> np.ndarray:
    """F with x2^T F x1 = 0 for undistorted pixels."""
    relative = second.rotation.T @ first.rotation  # first optical frame -> second optical frame
    translation = second.rotation.T @ (first.position - second.position)
    skew = np.array([[0, -translation[2], translation[1]], [translation[2], 0, -translation[0]],
                     [-translation[1], translation[0], 0]])
    essential = skew @ relative
    return np.linalg.inv(second.intrinsics).T @ essential @ np.linalg.inv(first.intrinsics)


def monotone_pairing(cost: np.ndarray) -> np.ndarray:
    """For each row, the column of the cheapest monotone (DTW) path through `cost`."""
    rows, cols = cost.shape
    total = np.full((rows, cols), np.inf)
    total[0] = np.cumsum(cost[0])
    for i in range(1, rows):
        # Each row may advance the column by any amount: the running minimum of the previous row.
        best_before = np.minimum.accumulate(total[i - 1])
        total[i] = cost[i] + best_before
    pairing = np.empty(rows, int)
    pairing[-1] = int(np.argmin(total[-1]))
    for i in range(rows - 2, -1, -1):
        pairing[i] = int(np.argmin(total[i, :pairing[i + 1] + 1]))
    return pairing


def triangulate_wire(first: PinholeCamera, first_px: np.ndarray, second: PinholeCamera, second_px: np.ndarray,
                     entry_point, stations: int = 200, max_line_distance_px: float = 3.0,
                     min_crossing_angle: float = 0.25) -> np.ndarray:
    """The wire (k,3) m, entry -> tip, about 1 mm apart, from two views' centrelines (distorted pixels)."""
    for name, pixels in (("first", first_px), ("second", second_px)):
        if len(pixels) < 4 or not np.isfinite(pixels).all():
            raise ReconstructionError(f"the {name} view's centreline needs at least 4 finite pixels")
    entry = np.asarray(entry_point, float).reshape(1, 3)
    first_px = orient_from_entry(np.asarray(first_px, float), first.project(entry)[0])
    second_px = orient_from_entry(np.asarray(second_px, float), second.project(entry)[0])
    a = _undistort(first, resample_polyline(first_px, stations)[0])
    b_dense = _undistort(second, resample_polyline(second_px, 4 * stations)[0])
    lines = np.column_stack([a, np.ones(len(a))]) @ fundamental_matrix(first, second).T  # (n,3) in the second
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    distance = np.abs(lines[:, :2] @ b_dense.T + lines[:, 2:3])  # (n, m)
    pairing = monotone_pairing(distance)
    keep, partners = [], []
    tangent = np.gradient(b_dense, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    for i, j in enumerate(pairing):
        if distance[i, j] > max_line_distance_px:
            continue
        # Crossing angle between the epipolar line and the second centreline.
        direction = np.array([lines[i, 1], -lines[i, 0]])
        if abs(direction[0] * tangent[j, 1] - direction[1] * tangent[j, 0]) < np.sin(min_crossing_angle):
            continue
        # Slide along the second centreline to where the signed distance to the line changes sign.
        lo, hi = max(j - 1, 0), min(j + 1, len(b_dense) - 1)
        signed = lines[i, :2] @ b_dense[[lo, hi]].T + lines[i, 2]
        if signed[0] != signed[1] and signed[0] * signed[1] <= 0:
            t = signed[0] / (signed[0] - signed[1])
            partners.append(b_dense[lo] + t * (b_dense[hi] - b_dense[lo]))
        else:
            partners.append(b_dense[j])
        keep.append(i)
    if len(keep) < 4:
        raise ReconstructionError("the two views' centrelines have fewer than 4 epipolar matches")
    identity = np.zeros(5)
    first_ideal = PinholeCamera(first.width, first.height, first.intrinsics, identity, first.rotation, first.position)
    second_ideal = PinholeCamera(second.width, second.height, second.intrinsics, identity, second.rotation,
                                 second.position)
    points = triangulate(first_ideal, a[keep], second_ideal, np.asarray(partners))
    return resample_by_spacing(np.vstack([entry, points]) if np.linalg.norm(points[0] - entry[0]) > 0.002
                               else points, 0.001)
