"""3D reconstruction node: one calibrated view, the magnetometer array and the robot in; the wire in 3D out.

Each image of the view (with its CameraInfo) is paired by stamp with the
nearest array frame and robot state (guidewire.sync), its wire centreline
taken from the view's GuidewireSegmentation or, with segmentation_topic '',
from the classical camera segmenter, and the wire fitted (guidewire.reconstruction).
Publishes GuidewireShape, a PointCloud2 (x, y, z, sigma), a LINE_STRIP Marker
and the tip PoseStamped in the bench frame. Any input that is missing or bad
is said on /diagnostics; the node keeps serving.
"""
from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from visualization_msgs.msg import Marker

from guidewire.contracts import STATUS_OK
from guidewire.geometry import PinholeCamera, look_at_rotation
from guidewire.imaging import ImageFormatError
from guidewire.reconstruction import ArrayField, FitSettings, ReconstructionError, WireMagnets, WirePrior, reconstruct
from guidewire.reconstruction.views import camera_centreline
from guidewire.sync import NearestStampMatcher
from guidewire.twin.config import ConfigError, load_bench_config
from guidewire_perception.msg import GuidewireSegmentation, GuidewireShape, MagnetometerArray
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, publisher_qos, qos_profile, run

METHODS = ("physics", "image_only")


def stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class ReconstructionNode(Node):
    def __init__(self):
        super().__init__("reconstruction")
        self.method = declare(self, "method", "physics", f"Fit: {' or '.join(METHODS)} (camera + robot, no field)")
        if self.method not in METHODS:
            raise SystemExit(f"reconstruction: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        view = declare(self, "view", "camera_top", "The calibrated view: its camera name in the bench config")
        bench_config = declare(self, "bench_config", "",
                               "Bench YAML: view pose, array placement, wire and magnets; '' = embedded defaults")
        self.frame_id = declare(self, "frame_id", "bench", "Frame of the published wire")
        image_topic = declare(self, "image_topic", f"{view}/image_raw", "The view's image")
        info_topic = declare(self, "camera_info_topic", f"{view}/camera_info", "The view's CameraInfo")
        segmentation_topic = declare(self, "segmentation_topic", "",
                                     "The view's GuidewireSegmentation; '' = segment the optical image here")
        array_topic = declare(self, "array_topic", "mag_array/frame", "MagnetometerArray frames")
        joints_topic = declare(self, "joint_states_topic", "robot/joint_states", "The robot's JointState")
        self.insertion_joint = declare(self, "insertion_joint", "insertion", "Prismatic insertion joint, m")
        self.background_file = declare(self, "background_file", "",
                                       "Background field YAML (the driver's format), recorded without the wire; "
                                       "'' = the array frames are already background-subtracted")
        slop = declare(self, "slop_s", 0.02, "Largest stamp difference of a matched image, array frame, robot state")
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data", "Subscription QoS"))
        output_qos = publisher_qos(self, default_depth=30)
        self.diagnostics = Diagnostics(self, "reconstruction")
        try:
            config = load_bench_config(bench_config or None)
        except ConfigError as error:
            raise SystemExit(f"reconstruction: {error}") from error
        self.bench = config
        cameras = {camera.name: camera for camera in config.stereo}
        if view not in cameras:
            raise SystemExit(f"reconstruction: view {view!r} is not a camera of the bench ({', '.join(cameras)})")
        camera = cameras[view]  # the view's mounting pose, from the bench YAML
        self.view_rotation = look_at_rotation(camera.position, camera.look_at, camera.up)
        self.view_position = np.asarray(camera.position, float)
        g = config.guidewire
        self.magnets = WireMagnets.from_layout(g.diameter, g.tip_magnet_length, g.tip_magnet_polarization,
                                               g.segment_magnet_count, g.segment_magnet_length,
                                               g.segment_magnet_spacing, g.segment_magnet_polarization)
        self.array_offset = np.array([0.0, 0.0, config.magnetometer_array.height])
        self.noise = config.magnetometer_array.noise_rms
        self.background = self._load_background() if self.background_file else None
        self.matcher = NearestStampMatcher(["array", "robot"], slop_s=slop)
        self.calibration: CameraInfo | None = None

        self.shape_publisher = self.create_publisher(GuidewireShape, "guidewire/shape", output_qos)
        self.cloud_publisher = self.create_publisher(PointCloud2, "guidewire/cloud", output_qos)
        self.marker_publisher = self.create_publisher(Marker, "guidewire/marker", output_qos)
        self.tip_publisher = self.create_publisher(PoseStamped, "guidewire/tip", output_qos)
        self.create_subscription(MagnetometerArray, array_topic, self._on_array, input_qos)
        self.create_subscription(JointState, joints_topic, self._on_joints, input_qos)
        self.create_subscription(CameraInfo, info_topic, self._on_info, input_qos)
        self.use_segmentation = bool(segmentation_topic)
        if self.use_segmentation:
            self.create_subscription(GuidewireSegmentation, segmentation_topic, self._on_segmentation, input_qos)
        self.create_subscription(Image, image_topic, self._on_image, input_qos)
        self.published = 0
        self.state = (OK, "waiting for the first frame")
        self.details: dict = {}
        self.latency_ms: list[float] = []
        self.create_timer(1.0, self._report)
        self.get_logger().info(f"reconstructing {image_topic} ({self.method}) with {array_topic}")

    def _load_background(self) -> np.ndarray:
        from guidewire.calibration import ArrayCalibration

        count = self.bench.magnetometer_array.rows * self.bench.magnetometer_array.cols
        try:
            return ArrayCalibration.load(self.background_file, count).background
        except (OSError, ValueError) as error:
            raise SystemExit(f"reconstruction: cannot load background_file {self.background_file}: {error}") \
                from error

    def _on_array(self, message: MagnetometerArray) -> None:
        self.matcher.add("array", stamp_ns(message.header.stamp), message)

    def _on_joints(self, message: JointState) -> None:
        if self.insertion_joint in message.name:
            position = message.position[list(message.name).index(self.insertion_joint)]
            self.matcher.add("robot", stamp_ns(message.header.stamp), float(position))

    def _on_info(self, message: CameraInfo) -> None:
        # A calibration holds until the next one: the image may arrive before its own CameraInfo.
        self.calibration = message

    def _on_segmentation(self, message: GuidewireSegmentation) -> None:
        # The segmentation comes after its image: fit now, with the image's partners.
        self._fit(message.header, None, message)

    def _on_image(self, message: Image) -> None:
        if not self.use_segmentation:
            self._fit(message.header, message, None)

    def _fit(self, header, image: Image | None, segmentation: GuidewireSegmentation | None) -> None:
        start = time.perf_counter()
        pivot = stamp_ns(header.stamp)
        partners = self.matcher.match(pivot)
        problems = []
        if self.calibration is None:
            self._say(ERROR, "no CameraInfo for the view yet: no calibration, no fit")
            return
        camera = self._camera(self.calibration)
        if camera is None:
            return
        try:
            if segmentation is not None:
                pixels = np.column_stack([segmentation.centreline_u, segmentation.centreline_v]).astype(float)
                pixels = pixels if segmentation.tip_found and len(pixels) >= 4 else None
            else:
                pixels = camera_centreline(convert.image_array(image).squeeze())
        except (ImageFormatError, ValueError) as error:
            self._say(ERROR, f"unusable image: {error}")
            return
        if pixels is None:
            self._say(WARN, "no wire in the view")
            return
        length = partners["robot"]
        if length is None:
            from guidewire.twin.wire import GuidewireModel  # the bench robot's programmed insertion profile

            length = GuidewireModel(self.bench.guidewire, self.bench.seed).inserted_length(pivot * 1e-9)
            problems.append("no robot state within the window: inserted length from the bench's profile")
        array = None
        method = self.method
        if method == "physics":
            array, note = self._array(partners["array"])
            if note:
                problems.append(note)
            if array is None:
                method = "image_only"
        g = self.bench.guidewire
        direction = np.asarray(g.entry_direction, float)
        prior = WirePrior(inserted_length=float(length), entry_point=np.asarray(g.entry_point, float),
                          entry_direction=direction / np.linalg.norm(direction), magnets=self.magnets)
        try:
            estimate = reconstruct(camera, pixels, prior, array, FitSettings(use_magnetics=method == "physics"))
        except ReconstructionError as error:
            self._say(ERROR, f"no fit: {error}")
            return
        shape_header = convert.header(pivot, self.frame_id)
        modalities = GuidewireShape.MODALITY_CAMERA | (GuidewireShape.MODALITY_MAGNETIC if method == "physics"
                                                       else 0)
        self.shape_publisher.publish(convert.guidewire_shape(shape_header, estimate, self.magnets.diameter,
                                                             modalities))
        self.cloud_publisher.publish(convert.wire_cloud(shape_header, estimate.points, estimate.sigma))
        self.marker_publisher.publish(convert.wire_marker(shape_header, estimate.points, self.magnets.diameter))
        self.tip_publisher.publish(convert.pose_stamped(shape_header, estimate.tip_position,
                                                        estimate.tip_orientation))
        self.published += 1
        self.latency_ms = (self.latency_ms + [1000 * (time.perf_counter() - start)])[-50:]
        self.details = {"method": method, "sensors used": estimate.used_sensors,
                        "tip sigma (mm)": f"{estimate.tip_sigma * 1000:.2f}",
                        "field residual rms (uT)": f"{estimate.field_rms * 1e6:.3f}",
                        "chi2 per dof": f"{estimate.chi2_per_dof:.2f}", "length (mm)": f"{estimate.length * 1000:.1f}"}
        if problems:
            self._say(WARN, "; ".join(problems))
        else:
            self.state = (OK, f"wire reconstructed ({method})")

    def _camera(self, info: CameraInfo) -> PinholeCamera | None:
        intrinsics = np.asarray(info.k, float).reshape(3, 3)
        if not np.isfinite(intrinsics).all() or intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
            self._say(ERROR, "the view's CameraInfo has no calibration (K is zero): no fit")
            return None
        distortion = np.zeros(5)
        distortion[:min(5, len(info.d))] = np.asarray(info.d, float)[:5]
        return PinholeCamera(width=info.width, height=info.height, intrinsics=intrinsics, distortion=distortion,
                             rotation=self.view_rotation, position=self.view_position)

    def _array(self, message: MagnetometerArray | None):
        """ArrayField in the bench frame, or None with the reason the fit goes on without the field."""
        if message is None:
            return None, "no array frame within the matching window: camera + robot only (flagged)"
        positions = np.array([[p.x, p.y, p.z] for p in message.sensor_positions]) + self.array_offset
        field = np.array([[v.x, v.y, v.z] for v in message.magnetic_field])
        if len(positions) != len(field) or len(message.status) != len(field):
            return None, "array frame with mismatched lengths: camera + robot only (flagged)"
        status = np.frombuffer(bytes(message.status), np.uint8) if isinstance(message.status, (bytes, bytearray)) \
            else np.asarray(message.status, np.uint8)
        background = None
        if self.background is not None:
            if len(self.background) != len(field):
                return None, "background size differs from the array's: camera + robot only (flagged)"
            background = self.background
        valid = (status == STATUS_OK) & np.isfinite(field).all(axis=1)
        note = ""
        if not valid.all():
            note = f"{int((~valid).sum())} of {len(valid)} sensors unusable (missing, saturated, stale or NaN): " \
                   "fitted on the rest"
        if valid.sum() < 3:
            return None, "fewer than 3 usable sensors: camera + robot only (flagged)"
        return ArrayField(positions, np.where(valid[:, None], field, 0.0), background, self.noise, valid), note

    def _say(self, level, message: str) -> None:
        if self.state != (level, message):
            if level == ERROR:
                self.get_logger().error(message)
            else:
                self.get_logger().warning(message)
        self.state = (level, message)

    def _report(self) -> None:
        level, message = self.state
        values = {"published": self.published, **self.details}
        if self.latency_ms:
            values["fit latency p50 (ms)"] = f"{np.median(self.latency_ms):.0f}"
        self.diagnostics.publish(level, message, values)


def main() -> None:
    run(ReconstructionNode)


if __name__ == "__main__":
    main()
