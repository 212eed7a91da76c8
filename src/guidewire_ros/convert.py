"""The one converter between library types and ROS messages, used by every node (as
depthai-ros's bridge is): nodes hold parameters, a source from a factory, this, and publishers."""
from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import Point, Vector3
from sensor_msgs.msg import CameraInfo, Image, MagneticField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from guidewire.contracts import STATUS_OK, STATUS_SATURATED, STATUS_STALE, CameraCalibration
from guidewire.geometry import on_bench, unit_quaternion
from guidewire.geometry import matrix_from_pose  # noqa: F401 (the nodes' converter for geometry_msgs/Pose)
from guidewire.imaging import from_image_fields, to_image_fields
from guidewire_perception.msg import GuidewireSegmentation, MagnetometerArray

STATUS_COLOURS = {STATUS_OK: (0.1, 0.8, 0.2), STATUS_SATURATED: (1.0, 0.5, 0.0), STATUS_STALE: (0.6, 0.6, 0.6)}


def header(stamp_ns: int, frame_id: str) -> Header:
    message = Header(frame_id=frame_id)
    message.stamp.sec, message.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return message


# Images -----------------------------------------------------------------------------------

def image_message(array, encoding: str, header) -> Image:
    """sensor_msgs/Image from a numpy array (see guidewire.imaging for the layout rules)."""
    fields = to_image_fields(array, encoding)
    return Image(header=header, height=fields.height, width=fields.width, encoding=fields.encoding,
                 is_bigendian=fields.is_bigendian, step=fields.step, data=fields.data)


def image_array(message: Image):
    """numpy view of a sensor_msgs/Image; ImageFormatError when it contradicts itself."""
    return from_image_fields(message.height, message.width, message.encoding, message.is_bigendian,
                             message.step, message.data)


def camera_encoding(image: np.ndarray) -> str:
    """A captured frame's encoding: mono8 or mono16 for single-channel frames, else OpenCV's bgr8."""
    if image.ndim == 2 and image.dtype == np.uint8:
        return "mono8"
    return "mono16" if image.ndim == 2 and image.dtype == np.uint16 else "bgr8"


def camera_info(calibration: CameraCalibration | None, image: Image) -> CameraInfo:
    """CameraInfo for an image: its calibration when the source has one, else only the image size."""
    if calibration is None:
        return CameraInfo(header=image.header, width=image.width, height=image.height)
    return CameraInfo(header=image.header, width=calibration.width, height=calibration.height,
                      distortion_model=calibration.distortion_model, d=np.asarray(calibration.distortion).tolist(),
                      k=np.asarray(calibration.intrinsics).ravel().tolist(),
                      r=np.asarray(calibration.rectification).ravel().tolist(),
                      p=np.asarray(calibration.projection).ravel().tolist())


# Magnetometer array -----------------------------------------------------------------------

def points(positions: np.ndarray) -> list[Point]:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions]


def covariance(noise_rms: float, sensors: int) -> list[float]:
    """Row-major 3x3 per sensor: isotropic noise_rms^2."""
    return np.tile(np.diag([noise_rms ** 2] * 3).ravel(), sensors).tolist()


def magnetometer_array(header: Header, sequence: int, rows: int, cols: int, positions: list[Point],
                       field: np.ndarray, covariance: list[float], status: np.ndarray,
                       temperature: np.ndarray) -> MagnetometerArray:
    message = MagnetometerArray(header=header, sequence=sequence, rows=rows, cols=cols)
    message.sensor_positions = positions
    message.magnetic_field = [Vector3(x=float(x), y=float(y), z=float(z)) for x, y, z in field]
    message.magnetic_field_covariance = covariance
    message.status = status.astype(np.uint8).tobytes()
    message.temperature = temperature.astype(np.float32).tolist()
    return message


def magnetic_field(array: MagnetometerArray, index: int) -> MagneticField:
    """One sensor of an array message as sensor_msgs/MagneticField."""
    single = MagneticField(header=array.header, magnetic_field=array.magnetic_field[index])
    single.magnetic_field_covariance = array.magnetic_field_covariance[9 * index:9 * index + 9]
    return single


def field_markers(array: MagnetometerArray, scale: float) -> MarkerArray:
    """An arrow per sensor, `scale` m per T, coloured by status; a sensor without a field is deleted."""
    markers = MarkerArray()
    for index, (position, field) in enumerate(zip(array.sensor_positions, array.magnetic_field)):
        marker = Marker(header=array.header, ns="magnetic_field", id=index, type=Marker.ARROW)
        vector = np.array([field.x, field.y, field.z])
        if not np.isfinite(vector).all():
            marker.action = Marker.DELETE
            markers.markers.append(marker)
            continue
        tip = np.array([position.x, position.y, position.z]) + scale * vector
        marker.points = [position, Point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]))]
        marker.scale.x, marker.scale.y, marker.scale.z = 0.002, 0.004, 0.004  # shaft, head diameter/length
        red, green, blue = STATUS_COLOURS.get(array.status[index], (1.0, 0.0, 0.0))
        marker.color.r, marker.color.g, marker.color.b, marker.color.a = red, green, blue, 1.0
        markers.markers.append(marker)
    return markers


# Segmentation -----------------------------------------------------------------------------

def segmentation(result, mask: Image, processed_stamp) -> GuidewireSegmentation:
    """GuidewireSegmentation of a guidewire.segmentation FrameSegmentation; `mask` is its mask image."""
    message = GuidewireSegmentation(header=mask.header, mask=mask, confidence=result.confidence,
                                    low_confidence=result.low_confidence, processed_stamp=processed_stamp)
    if result.centreline is not None:
        message.centreline_u = result.centreline.points[:, 0].astype(np.float32).tolist()
        message.centreline_v = result.centreline.points[:, 1].astype(np.float32).tolist()
        message.tip_found = True
        message.tip_u, message.tip_v = (float(v) for v in result.centreline.tip)
    else:
        message.tip_u = message.tip_v = math.nan
    return message


# Reconstructed wire ------------------------------------------------------------------------

def pose_stamped(header: Header, position, orientation_xyzw):
    from geometry_msgs.msg import PoseStamped

    message = PoseStamped(header=header)
    message.pose.position = Point(x=float(position[0]), y=float(position[1]), z=float(position[2]))
    q = message.pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in orientation_xyzw)
    return message


def pose_from_matrix(matrix: np.ndarray):
    """geometry_msgs/Pose of a 4x4 homogeneous transform (m)."""
    from geometry_msgs.msg import Pose
    from scipy.spatial.transform import Rotation

    matrix = np.asarray(matrix, float)
    pose = Pose()
    pose.position = Point(x=float(matrix[0, 3]), y=float(matrix[1, 3]), z=float(matrix[2, 3]))
    q = pose.orientation
    q.x, q.y, q.z, q.w = (float(v) for v in Rotation.from_matrix(matrix[:3, :3]).as_quat())
    return pose


def guidewire_shape(header: Header, estimate, diameter: float, modalities: int):
    """GuidewireShape from a guidewire.reconstruction.WireEstimate."""
    from guidewire_perception.msg import GuidewireShape

    message = GuidewireShape(header=header, length=float(estimate.length), diameter=float(diameter),
                             modalities=int(modalities))
    message.centreline = points(estimate.points)
    message.position_stddev = np.asarray(estimate.sigma, np.float32).tolist()
    message.tip_pose = pose_stamped(header, estimate.tip_position, estimate.tip_orientation).pose
    return message


def wire_cloud(header: Header, positions: np.ndarray, sigma: np.ndarray):
    """PointCloud2 with float32 x, y, z (m) and sigma (m, 1-sigma per point), unorganised."""
    from sensor_msgs.msg import PointCloud2, PointField

    data = np.column_stack([positions, sigma]).astype("<f4")
    fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, name in enumerate(("x", "y", "z", "sigma"))]
    return PointCloud2(header=header, height=1, width=len(data), fields=fields, is_bigendian=False, point_step=16,
                       row_step=16 * len(data), data=data.tobytes(), is_dense=True)


def wire_points(message) -> np.ndarray:
    """(n,4) x, y, z, sigma of a wire_cloud PointCloud2."""
    return np.frombuffer(bytes(message.data), "<f4").reshape(-1, 4)


def wire_marker(header: Header, positions: np.ndarray, diameter: float) -> Marker:
    """A LINE_STRIP of the wire for RViz (drawn 1 mm wide so it is visible at bench scale)."""
    marker = Marker(header=header, ns="guidewire", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    marker.scale.x = max(float(diameter), 0.001)
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = 1.0, 0.3, 0.1, 1.0
    marker.pose.orientation.w = 1.0
    marker.points = points(positions)
    return marker


def tip_pose_with_covariance(header: Header, estimate):
    """PoseWithCovarianceStamped of the tip: the position covariance is the fit's Gauss-Newton
    1-sigma along its least certain direction (estimate.tip_sigma) on every axis, a bound on each
    axis's; the fit does not estimate the orientation's, so its
    variances are pi^2 (uninformative: the roll about the wire is unobservable anyway)."""
    from geometry_msgs.msg import PoseWithCovarianceStamped

    message = PoseWithCovarianceStamped(header=header)
    message.pose.pose = pose_stamped(header, estimate.tip_position, estimate.tip_orientation).pose
    message.pose.covariance = np.diag([float(estimate.tip_sigma) ** 2] * 3 + [math.pi ** 2] * 3).ravel().tolist()
    return message


# Robot and frames ---------------------------------------------------------------------------

def joint_state_message(stamp, names: tuple[str, str], state):
    """sensor_msgs/JointState of a guidewire.robot.JointState (insertion m, roll rad, and their rates)."""
    from sensor_msgs.msg import JointState

    message = JointState(name=list(names), position=[float(state.insertion), float(state.roll)],
                         velocity=[float(state.insertion_velocity), float(state.roll_velocity)])
    message.header.stamp = stamp
    return message


def transform_stamped(stamp, parent: str, child: str, pose: np.ndarray):
    """geometry_msgs/TransformStamped of a 4x4 pose (child -> parent)."""
    from geometry_msgs.msg import TransformStamped
    from scipy.spatial.transform import Rotation

    message = TransformStamped(child_frame_id=child)
    message.header.stamp, message.header.frame_id = stamp, parent
    t = message.transform.translation
    t.x, t.y, t.z = (float(v) for v in pose[:3, 3])
    q = message.transform.rotation
    q.x, q.y, q.z, q.w = (float(v) for v in Rotation.from_matrix(pose[:3, :3]).as_quat())
    return message


def ground_truth_marker(header: Header, positions: np.ndarray, diameter: float) -> Marker:
    """The bench's true wire as a LINE_STRIP (namespace ground_truth, green), beside the reconstruction's."""
    marker = wire_marker(header, positions, diameter)
    marker.ns = "ground_truth"
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.1, 0.9, 0.2, 0.8
    return marker


# Viewers ------------------------------------------------------------------------------------

def shape_arrays(message) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(centreline (n,3) m, 1-sigma (n,) m, tip position (3,) m, tip orientation x, y, z, w) of a
    GuidewireShape; ValueError naming the field that is empty, mismatched or not finite."""
    points = np.array([[p.x, p.y, p.z] for p in message.centreline], float).reshape(-1, 3)
    sigma = np.asarray(message.position_stddev, float)
    tip = message.tip_pose
    position = np.array([tip.position.x, tip.position.y, tip.position.z])
    orientation = np.array([tip.orientation.x, tip.orientation.y, tip.orientation.z, tip.orientation.w])
    if len(points) < 2:
        raise ValueError(f"centreline has {len(points)} points, a wire needs 2 or more")
    if len(sigma) not in (0, len(points)):
        raise ValueError(f"position_stddev has {len(sigma)} values for {len(points)} centreline points")
    for name, values in (("centreline", points), ("position_stddev", sigma), ("tip_pose.position", position),
                         ("tip_pose.orientation", orientation)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} is not finite")
    on_bench("centreline", points)
    on_bench("tip_pose.position", position)
    unit = unit_quaternion(orientation)
    if unit is None:
        raise ValueError("tip_pose.orientation is a zero quaternion")
    return points, (sigma if len(sigma) else np.zeros(len(points))), position, unit
