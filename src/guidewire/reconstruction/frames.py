"""A fitted wire expressed in another frame (the registered CT's), for a controller that plans in the
patient's anatomy rather than on the bench."""
from __future__ import annotations

import dataclasses

import numpy as np

from guidewire.reconstruction.physics import WireEstimate


def estimate_in_frame(estimate: WireEstimate, frame_from_world: np.ndarray) -> WireEstimate:
    """The estimate with its points, tip and field offset mapped by a rigid 4x4 transform (world ->
    frame). The 1-sigma values (along each point's least certain direction) do not depend on the axes,
    so a rigid map leaves them as they are; a transform that is not rigid (scale, shear, non-finite) is
    a ValueError, since it would make them wrong."""
    transform = np.asarray(frame_from_world, float)
    if transform.shape != (4, 4) or not np.all(np.isfinite(transform)):
        raise ValueError(f"frame_from_world must be a finite 4x4 transform, got shape {transform.shape}")
    rotation, translation = transform[:3, :3], transform[:3, 3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0 \
            or not np.allclose(transform[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError("frame_from_world is not a rigid transform (rotation and translation only)")
    return dataclasses.replace(
        estimate, points=np.asarray(estimate.points, float) @ rotation.T + translation,
        tip_position=rotation @ np.asarray(estimate.tip_position, float) + translation,
        tip_direction=rotation @ np.asarray(estimate.tip_direction, float),
        offset_field=rotation @ np.asarray(estimate.offset_field, float))
