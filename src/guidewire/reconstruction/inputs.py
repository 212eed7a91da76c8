"""Reconstruction inputs from CameraInfo and MagnetometerArray messages, duck-typed on their fields,
so the node (rclpy messages) and the label maker (rosbags messages) read them one way."""
from __future__ import annotations

import numpy as np

from guidewire.contracts import STATUS_OK
from guidewire.geometry import PinholeCamera
from guidewire.reconstruction.physics import ArrayField, ReconstructionError


def camera_from_info(info, rotation: np.ndarray, position: np.ndarray) -> PinholeCamera:
    """A calibrated view from a CameraInfo and the optical frame's pose in the bench frame."""
    intrinsics = np.asarray(info.k, float).reshape(3, 3)
    if not np.isfinite(intrinsics).all() or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise ReconstructionError("the view's CameraInfo has no calibration (K is zero): calibrate the camera "
                                  "(camera_info_url)")
    distortion = np.zeros(5)
    coefficients = np.asarray(info.d, float)[:5]
    distortion[:len(coefficients)] = coefficients
    return PinholeCamera(width=int(info.width), height=int(info.height), intrinsics=intrinsics,
                         distortion=distortion, rotation=np.asarray(rotation, float),
                         position=np.asarray(position, float))


def array_from_message(message, array_offset: np.ndarray, background: np.ndarray | None,
                       noise: float) -> tuple[ArrayField | None, str]:
    """The frame in the bench frame (sensor positions + the array's offset), or None; and a note naming
    sensors left out or why the field cannot be used."""
    if message is None:
        return None, "no array frame within the matching window: camera + robot only (flagged)"
    positions = np.array([[p.x, p.y, p.z] for p in message.sensor_positions]) + array_offset
    field = np.array([[v.x, v.y, v.z] for v in message.magnetic_field])
    status = np.frombuffer(bytes(message.status), np.uint8) if isinstance(message.status, (bytes, bytearray)) \
        else np.asarray(message.status, np.uint8)
    if len(positions) != len(field) or len(status) != len(field):
        return None, "array frame with mismatched lengths: camera + robot only (flagged)"
    if background is not None and len(background) != len(field):
        return None, "background size differs from the array's: camera + robot only (flagged)"
    valid = (status == STATUS_OK) & np.isfinite(field).all(axis=1)
    if valid.sum() < 3:
        return None, "fewer than 3 usable sensors: camera + robot only (flagged)"
    note = "" if valid.all() else (f"{int((~valid).sum())} of {len(valid)} sensors unusable (missing, saturated, "
                                   "stale or NaN): fitted on the rest")
    return ArrayField(positions, np.where(valid[:, None], field, 0.0), background, noise, valid), note
