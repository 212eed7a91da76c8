"""The bench's static frames (REP-103/105) from its configuration: where the magnetometer
array, each camera's optical frame, the C-arm's source (its optical frame) and detector,
and the robot base sit in the `bench` frame. The ROS frames node publishes them on
/tf_static; the reconstruction uses the same configuration, so the two cannot disagree."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.geometry import look_at_rotation
from guidewire.twin.config import BenchConfig
from guidewire.twin.fluoroscopy import carm_to_bench, homogeneous, with_view
from guidewire.twin.wire import _frame_with_tangent

WORLD = "bench"


@dataclass(frozen=True)
class Frame:
    parent: str
    child: str
    pose: np.ndarray  # 4x4: child coordinates -> parent coordinates (metres)


def frame_with_x_axis(direction) -> np.ndarray:
    """A rotation whose x axis is `direction` (the wire's entry frame, the reconstruction's tip frame)."""
    direction = np.asarray(direction, float)
    return _frame_with_tangent(direction / np.linalg.norm(direction))


def axis_quaternion(direction) -> np.ndarray:
    """(x, y, z, w) of frame_with_x_axis."""
    return Rotation.from_matrix(frame_with_x_axis(direction)).as_quat()


def bench_frames(config: BenchConfig, xray_cameras: tuple[str, ...] = ("xray",)) -> list[Frame]:
    """Every static frame of the bench. `<camera>_optical` for each stereo camera and each X-ray
    camera (the C-arm's focal spot: z towards the detector, x along its columns, y along its rows,
    the frame its CameraInfo projects from); `<camera>_detector` is the detector's centre. An X-ray
    camera is `name` (the bench's C-arm angles) or `name:view`, a named view (CARM_VIEWS), as the
    capture node's `view` parameter turns the C-arm."""
    array = config.magnetometer_array
    frames = [Frame(WORLD, "mag_array", homogeneous(np.eye(3), (0.0, 0.0, array.height)))]
    for camera in config.stereo:
        frames.append(Frame(WORLD, f"{camera.name}_optical",
                            homogeneous(look_at_rotation(camera.position, camera.look_at, camera.up),
                                        camera.position)))
    for camera in xray_cameras:
        name, _, view = camera.partition(":")
        carm = with_view(config.fluoroscopy, view)
        frames.append(Frame(WORLD, f"{name}_optical", carm_to_bench(carm)))
        frames.append(Frame(f"{name}_optical", f"{name}_detector",
                            homogeneous(np.eye(3), (0.0, 0.0, carm.source_to_detector))))
    wire = config.guidewire
    frames.append(Frame(WORLD, "robot_base", homogeneous(frame_with_x_axis(wire.entry_direction), wire.entry_point)))
    return frames
