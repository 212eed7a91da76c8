"""Rigid transforms and the pinhole camera model (OpenCV conventions).

Camera frames are optical frames (REP-103): z forward, x right, y down.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.contracts import grid_positions  # noqa: F401 (public here too: the sensor grid's layout)

# No position on any bench is this far from its origin: larger coordinates are corrupt data (and past
# what float32 carries once in millimetres, as OpenIGTLink and Foxglove send them).
MAX_BENCH_COORDINATE_M = 100.0


def on_bench(name: str, positions) -> np.ndarray:
    """`positions` (m, any shape, finite) as an array; ValueError naming them when one lies beyond
    MAX_BENCH_COORDINATE_M of the origin."""
    array = np.asarray(positions, float)
    farthest = np.abs(array).max(initial=0.0)
    if farthest > MAX_BENCH_COORDINATE_M:
        raise ValueError(f"{name} reaches {farthest:.3g} m from the bench's origin, beyond any bench "
                         f"({MAX_BENCH_COORDINATE_M:g} m)")
    return array


def unit_quaternion(q) -> np.ndarray | None:
    """The finite quaternion `q` scaled to unit length; None for a zero one. Scaled by its largest
    component first: a quaternion of 1e300s is a rotation, but its squares overflow."""
    q = np.asarray(q, float)
    scale = np.abs(q).max()
    if scale < 1e-6:
        return None
    q = q / scale
    return q / np.linalg.norm(q)


def look_at_rotation(position, target, up) -> np.ndarray:
    """Rotation (columns = optical-frame axes in world coordinates) of a camera at
    `position` looking at `target`, with world direction `up` appearing up in the image."""
    z = np.asarray(target, float) - np.asarray(position, float)
    z /= np.linalg.norm(z)
    down = -np.asarray(up, float)
    y = down - z * np.dot(down, z)
    norm = np.linalg.norm(y)
    if norm < 1e-9:
        raise ValueError("camera 'up' direction is parallel to the viewing direction")
    y /= norm
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics K (3x3), plumb_bob distortion and the camera pose in the world.

    rotation: columns are the optical-frame axes expressed in the world frame;
    position: optical centre in the world frame (metres).
    """

    width: int
    height: int
    intrinsics: np.ndarray
    distortion: np.ndarray
    rotation: np.ndarray
    position: np.ndarray

    @property
    def rvec_tvec(self) -> tuple[np.ndarray, np.ndarray]:
        """World-to-camera transform in OpenCV's (rvec, tvec) form."""
        rotation_world_to_camera = self.rotation.T
        rvec, _ = cv2.Rodrigues(rotation_world_to_camera)
        return rvec, -rotation_world_to_camera @ self.position

    @property
    def projection_matrix(self) -> np.ndarray:
        """3x4 P = K [R | t] for undistorted pixel coordinates."""
        rvec, tvec = self.rvec_tvec
        return self.intrinsics @ np.hstack([cv2.Rodrigues(rvec)[0], tvec.reshape(3, 1)])

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World points (N,3) in the optical frame (N,3)."""
        return (np.asarray(points_world, float) - self.position) @ self.rotation

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """Pixel coordinates (N,2) of world points, with lens distortion."""
        rvec, tvec = self.rvec_tvec
        pixels, _ = cv2.projectPoints(np.asarray(points_world, float).reshape(-1, 1, 3), rvec, tvec,
                                      self.intrinsics, self.distortion)
        return pixels.reshape(-1, 2)


def triangulate(camera_a: PinholeCamera, pixels_a: np.ndarray, camera_b: PinholeCamera,
                pixels_b: np.ndarray) -> np.ndarray:
    """World points (N,3) from corresponding distorted pixels in two calibrated cameras."""

    def undistorted(camera, pixels):
        points = cv2.undistortPoints(np.asarray(pixels, float).reshape(-1, 1, 2), camera.intrinsics,
                                     camera.distortion, P=camera.intrinsics)
        return points.reshape(-1, 2).T

    homogeneous = cv2.triangulatePoints(camera_a.projection_matrix, camera_b.projection_matrix,
                                        undistorted(camera_a, pixels_a), undistorted(camera_b, pixels_b))
    return (homogeneous[:3] / homogeneous[3]).T


def rotation_matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion of a rotation matrix, as geometry_msgs/Quaternion orders it."""
    return Rotation.from_matrix(rotation).as_quat()


def matrix_from_pose(pose) -> np.ndarray:
    """4x4 homogeneous transform of a geometry_msgs/Pose (rclpy's or a bag's); ValueError for a zero or
    non-finite quaternion."""
    q = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w], float)
    t = np.array([pose.position.x, pose.position.y, pose.position.z], float)
    unit = unit_quaternion(q) if np.all(np.isfinite(q)) else None
    if unit is None or not np.all(np.isfinite(t)):
        raise ValueError("pose has a zero or non-finite quaternion or position")
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat(unit).as_matrix()
    matrix[:3, 3] = t
    return matrix
