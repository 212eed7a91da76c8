"""3D reconstruction node: one calibrated view, the magnetometer array and the robot in; the wire in 3D out.

Each image of the view (with its CameraInfo) is paired by stamp with the
nearest array frame (guidewire.sync) and the robot's insertion at its instant, its wire centreline
taken from the view's GuidewireSegmentation or, with segmentation_topic '',
from the classical camera segmenter, and the wire fitted (guidewire.reconstruction).
Publishes GuidewireShape, a PointCloud2 (x, y, z, sigma), a LINE_STRIP Marker,
the tip PoseStamped and PoseWithCovarianceStamped (the fit's Gauss-Newton sigma)
in the bench frame; once a converged RegistrationResult has come, the shape and the tip pose also
in the registered CT's frame (guidewire/ct/*); and at status_rate_hz a DiagnosticStatus on guidewire/status
that says whether a controller can trust the perception now (inputs fresh,
segmentation sure, fit residual and length against the robot's insertion within
bounds) and why not. Any input that is missing or bad is said on /diagnostics;
the node keeps serving.
"""
from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from visualization_msgs.msg import Marker

from guidewire.geometry import look_at_rotation, on_bench
from guidewire.imaging import ImageFormatError
from guidewire.reconstruction import (FitSettings, PathTrack, ReconstructionError, WireMagnets, WirePrior,
                                      reconstruct, reconstruct_with_leader)
from guidewire.reconstruction.frames import estimate_in_frame
from guidewire.reconstruction.inputs import array_from_message, camera_from_info
from guidewire.reconstruction.trust import TrustBounds, distrust_reasons, length_disagreement
from guidewire.robot import JointHistory, joint_values
from guidewire.robot import JointState as RobotJoints
from guidewire.reconstruction.views import camera_centreline, camera_trace
from guidewire.sync import NearestStampMatcher, stamp_ns
from guidewire.twin.config import ConfigError, load_bench_config
from guidewire_perception.msg import GuidewireSegmentation, GuidewireShape, MagnetometerArray, RegistrationResult
from guidewire_ros import convert
from guidewire_ros.common import (
    ERROR,
    OK,
    WARN,
    Diagnostics,
    declare,
    future_stamp,
    latched_qos,
    publisher_qos,
    qos_profile,
    run,
    runtime_parameters,
)

METHODS = ("physics", "image_only", "learned")
# Seconds after the view's first image within which a missing CameraInfo is the start-up race (a loaded
# machine delivered an image before its CameraInfo: a soak's one ERROR line), a WARN; after it, an ERROR.
CALIBRATION_GRACE_S = 5.0


class ReconstructionNode(Node):
    def __init__(self):
        super().__init__("reconstruction")
        self.method = declare(self, "method", "physics",
                              "physics (fit to view, field and robot), image_only (view and robot, no field) or "
                              "learned (the magnetic-fusion paper's networks)")
        learned_weights = declare(self, "learned_weights", "",
                                  "Folder of the learned method's networks; '' = the shipped ones")
        if self.method not in METHODS:
            raise SystemExit(f"reconstruction: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        view = declare(self, "view", "camera_top", "The calibrated view: its camera name in the bench config")
        bench_config = declare(self, "bench_config", "",
                               "Bench YAML: view pose, array placement, wire and magnets; '' = embedded defaults")
        self.frame_id = declare(self, "frame_id", "bench", "Frame of the published wire")
        second = declare(self, "second_view", "",
                         "A second calibrated camera of the bench (camera_side) whose image pins the depth the "
                         "first view leaves open; '' = one view")
        image_topic = declare(self, "image_topic", f"{view}/image_raw", "The view's image")
        info_topic = declare(self, "camera_info_topic", f"{view}/camera_info", "The view's CameraInfo")
        segmentation_topic = declare(self, "segmentation_topic", "",
                                     "The view's GuidewireSegmentation; '' = segment the optical image here")
        array_topic = declare(self, "array_topic", "mag_array/frame", "MagnetometerArray frames")
        joints_topic = declare(self, "joint_states_topic", "robot/joint_states", "The robot's JointState")
        registration_topic = declare(self, "registration_topic", "ct_registration/result",
                                     "RegistrationResult whose converged CT pose maps the wire into the CT's frame "
                                     "(guidewire/ct/*); '' = bench frame only")
        self.insertion_joint = declare(self, "insertion_joint", "insertion", "Prismatic insertion joint, m")
        self.background_file = declare(self, "background_file", "",
                                       "Background field YAML (the driver's format), recorded without the wire; "
                                       "'' = the array frames are already background-subtracted")
        twin_background = declare(self, "twin_background", False,
                                  "Simulated bench only: the background the twin's array records with the wire "
                                  "withdrawn (a real bench records it: background_file)")
        max_rate = declare(self, "max_rate_hz", 0.0, "Most fits per second (a faster view is thinned); 0 = all")
        self.min_period = 1.0 / max_rate if max_rate > 0 else 0.0
        self.last_fit, self.thinned = -np.inf, 0
        slop = declare(self, "slop_s", 0.02, "Largest stamp difference of a matched image and array frame")
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data", "Subscription QoS"))
        output_qos = publisher_qos(self, default_depth=30)
        # A wire in a vessel follows its tip; the bench twin's pre-curved free rod does not, so it is off there.
        self.track = PathTrack() if declare(
            self, "follow_the_leader", False, "One view: the path of the earlier tips is the body's prior (a wire "
            "in a vessel; not a free rod, whose shape moves as it is pushed). Changeable at run time") else None
        self.diagnostics = Diagnostics(self, "reconstruction")
        try:
            config = load_bench_config(bench_config or None)
        except ConfigError as error:
            raise SystemExit(f"reconstruction: {error}") from error
        self.bench = config
        cameras = {camera.name: camera for camera in config.stereo}
        if view not in cameras:
            raise SystemExit(f"reconstruction: view {view!r} is not a camera of the bench ({', '.join(cameras)})")
        if second and second not in cameras:
            raise SystemExit(f"reconstruction: second_view {second!r} is not a camera of the bench "
                             f"({', '.join(cameras)})")
        # Each view's mounting pose, from the bench YAML.
        self.poses = {name: (look_at_rotation(c.position, c.look_at, c.up), np.asarray(c.position, float))
                      for name, c in cameras.items() if name in (view, second)}
        self.view, self.second_view = view, second
        self.calibrations: dict[str, CameraInfo] = {}
        self.first_fit_request: float | None = None  # monotonic time of the first image to fit
        self.profile = None
        g = config.guidewire
        self.magnets = WireMagnets.of_guidewire(g)
        self.array_offset = np.array([0.0, 0.0, config.magnetometer_array.height])
        self.noise = config.magnetometer_array.noise_rms
        self.background = self._load_background() if self.background_file else None
        if twin_background:
            from guidewire.twin import DigitalTwin

            self.background = DigitalTwin(config).magnetometer.recorded_background()
        # Ten seconds of partners: on a loaded machine a view frame waits seconds for its fit, and with
        # the default two an image older than the newest array frame by more found no partner (fits
        # fell back to camera-only under make run).
        self.matcher = NearestStampMatcher(["array", "image", "second"], slop_s=slop, history_s=10.0)
        self.robot = JointHistory(max_extrapolation=0.5)
        self.learned, self.learned_error = None, ""
        if self.method == "learned":  # torch is imported only for this method: the others start in a second
            from guidewire.reconstruction.depth import DepthModelError
            from guidewire.reconstruction.learned import LearnedReconstructor

            try:
                self.learned = LearnedReconstructor(learned_weights or None)
            except DepthModelError as error:
                self.learned_error = str(error)  # said on every frame: the node serves, the fault is visible
                self.get_logger().error(self.learned_error)


        self.shape_publisher = self.create_publisher(GuidewireShape, "guidewire/shape", output_qos)
        self.cloud_publisher = self.create_publisher(PointCloud2, "guidewire/cloud", output_qos)
        self.marker_publisher = self.create_publisher(Marker, "guidewire/marker", output_qos)
        self.tip_publisher = self.create_publisher(PoseStamped, "guidewire/tip", output_qos)
        self.tip_pose_publisher = self.create_publisher(PoseWithCovarianceStamped, "guidewire/tip_pose", output_qos)
        self.status_publisher = self.create_publisher(DiagnosticStatus, "guidewire/status", output_qos)
        self.ct_shape_publisher = self.create_publisher(GuidewireShape, "guidewire/ct/shape", output_qos)
        self.ct_tip_pose_publisher = self.create_publisher(PoseWithCovarianceStamped, "guidewire/ct/tip_pose",
                                                           output_qos)
        self.ct: tuple[str, np.ndarray] | None = None  # (CT frame, CT <- bench transform) once registered
        self.ct_problem = ""
        self.bounds = TrustBounds(
            max_input_age=declare(self, "status_max_input_age_s", 1.0, "Trusted only if every input is this fresh, s"),
            max_fit_age=declare(self, "status_max_fit_age_s", 2.0, "Trusted only if the last fit is this recent, s"),
            max_chi2_per_dof=declare(self, "status_max_chi2_per_dof", 10.0,
                                     "Trusted only below this fit residual (0.1-0.8 on the simulated bench)"),
            length_tolerance=declare(self, "length_tolerance_m", 0.005,
                                     "Largest |reconstructed - commanded| inserted length, m, before it is reported"))
        # Inputs whose freshness the status checks: monotonic time of each one's newest message.
        self.inputs = {f"{view} image": None, "robot state": None}
        self.inputs.update({"array frame": None} if self.method != "image_only" else {})
        self.inputs.update({f"{second} image": None} if second else {})
        self.inputs.update({"segmentation": None} if segmentation_topic else {})
        self.fit_time, self.fit_chi2, self.length_problem, self.segmentation_problem = None, float("nan"), "", ""
        # The array runs at up to 400 Hz while a fit takes tens of ms: keep a second of frames queued.
        array_qos = QoSProfile(depth=400, reliability=input_qos.reliability, durability=input_qos.durability)
        self.create_subscription(MagnetometerArray, array_topic, self._on_array, array_qos)
        self.create_subscription(JointState, joints_topic, self._on_joints, input_qos)
        self.create_subscription(CameraInfo, info_topic, lambda m: self.calibrations.__setitem__(view, m), input_qos)
        if second:
            self.create_subscription(CameraInfo, f"{second}/camera_info",
                                     lambda m: self.calibrations.__setitem__(second, m), input_qos)
            self.create_subscription(Image, f"{second}/image_raw", self._on_second_view, input_qos)
        self.use_segmentation = bool(segmentation_topic)
        if self.use_segmentation:
            self.create_subscription(GuidewireSegmentation, segmentation_topic, self._on_segmentation, input_qos)
        self.create_subscription(Image, image_topic, self._on_image, input_qos)
        if registration_topic:  # the registration is a one-off that may predate this node: latched
            # Deep enough for the publisher's whole history (qos_depth 5): with depth 1 a late joiner got
            # only the newest result, and a failed one after a converged one left it with no CT frame.
            self.create_subscription(RegistrationResult, registration_topic, self._on_registration, latched_qos(10))
        self.published = 0
        self.state = (OK, "waiting for the first frame")
        self.details: dict = {}
        self.latency_ms: list[float] = []
        self.create_timer(1.0, self._report)
        # A view frame waits until the array (and the second view) have passed its stamp (its partners may
        # still be in flight or queued behind a fit) while they keep arriving (a stream silent for wait_s
        # has stopped).
        self.wait_s = max(1.0, 5 * slop)
        self.arrived: dict[str, float] = {}  # monotonic time of each partner stream's newest message
        self.waiting: deque = deque(maxlen=8)  # (header, image, segmentation, monotonic arrival), oldest first
        self.worker: threading.Thread | None = None
        self.skipped = 0
        self.create_timer(0.05, self._drain)
        self.create_timer(1.0 / declare(self, "status_rate_hz", 10.0, "guidewire/status rate, Hz"),
                          self._publish_status)
        runtime_parameters(self, {"follow_the_leader": self._set_follow_the_leader})
        self.get_logger().info(f"reconstructing {image_topic} ({self.method}) with {array_topic}")

    def _load_background(self) -> np.ndarray:
        from guidewire.calibration import ArrayCalibration

        count = self.bench.magnetometer_array.rows * self.bench.magnetometer_array.cols
        try:
            return ArrayCalibration.load(self.background_file, count).background
        except (OSError, ValueError) as error:
            raise SystemExit(f"reconstruction: cannot load background_file {self.background_file}: {error}") \
                from error

    def _on_registration(self, message: RegistrationResult) -> None:
        """A converged result replaces the CT frame's transform; a failed one keeps the last good one."""
        if not message.converged:
            return
        if message.header.frame_id != self.frame_id:
            self.ct_problem = (f"registration in frame '{message.header.frame_id}', expected '{self.frame_id}': "
                               "no CT-frame wire")
            self.get_logger().error(self.ct_problem)
            return
        try:
            world_from_ct = convert.matrix_from_pose(message.ct_to_world)
            on_bench("CT origin", world_from_ct[:3, 3])
        except ValueError as error:
            self.ct_problem = f"unusable registration: {error}"
            self.get_logger().error(self.ct_problem)
            return
        self.ct, self.ct_problem = (message.ct_frame_id or "ct", np.linalg.inv(world_from_ct)), ""
        self.get_logger().info(f"registered: the wire is also published in frame '{self.ct[0]}'")

    def _refused(self, message, what: str) -> bool:
        problem = future_stamp(self, message.header.stamp, what)
        if problem:
            self._say(ERROR, problem)
        return bool(problem)

    def _on_second_view(self, message: Image) -> None:
        if self._refused(message, f"{self.second_view} image"):
            return
        self.inputs[f"{self.second_view} image"] = self.arrived["second"] = time.monotonic()
        self.matcher.add("second", stamp_ns(message.header.stamp), message)
        self._drain()

    def _on_array(self, message: MagnetometerArray) -> None:
        if self._refused(message, "array frame"):
            return
        self.inputs["array frame"] = self.arrived["array"] = time.monotonic()
        self.matcher.add("array", stamp_ns(message.header.stamp), message)
        self._drain()

    def _on_joints(self, message: JointState) -> None:
        position, velocity = joint_values(message, self.insertion_joint)
        if position is not None:
            self.inputs["robot state"] = time.monotonic()
            self.robot.add(stamp_ns(message.header.stamp) * 1e-9, RobotJoints(position, 0.0, velocity or 0.0))

    def _on_segmentation(self, message: GuidewireSegmentation) -> None:
        if self._refused(message, "segmentation"):
            return
        self.inputs["segmentation"] = time.monotonic()
        self.segmentation_problem = f"segmentation unsure (confidence {message.confidence:.2f})" \
            if message.low_confidence else ""
        self._wait(message.header, None, message)

    def _on_image(self, message: Image) -> None:
        if self._refused(message, f"{self.view} image"):
            return
        self.inputs[f"{self.view} image"] = time.monotonic()
        if self.use_segmentation:
            self.matcher.add("image", stamp_ns(message.header.stamp), message)
        else:
            self._wait(message.header, message, None)

    def _wait(self, header, image, segmentation) -> None:
        if time.monotonic() - self.last_fit < self.min_period:
            self.thinned += 1
            return
        if len(self.waiting) == self.waiting.maxlen:
            self.skipped += 1
        self.waiting.append((header, image, segmentation, time.monotonic()))
        self._drain()

    def _drain(self) -> None:
        if not self.waiting or (self.worker is not None and self.worker.is_alive()):
            return
        # The streams the fit uses (not the robot's: its insertion is interpolated, or extrapolated
        # with its velocity, at the image's instant).
        partners = (["array"] if self.method != "image_only" else []) + (["second"] if self.second_view else [])
        now = time.monotonic()

        def ready(frame) -> bool:  # no partner still in flight (a stream silent for wait_s has stopped)
            stamp = stamp_ns(frame[0].stamp)
            return not any(self.matcher.pending(stream, stamp) and now - self.arrived.get(stream, -1e9) < self.wait_s
                           for stream in partners)

        # The newest frame whose partners are in; on a loaded machine the array's backlog makes that an
        # older one (waiting for the newest, replaced by a newer one each time, no frame was ever fitted).
        chosen = next((index for index in range(len(self.waiting) - 1, -1, -1) if ready(self.waiting[index])), None)
        if chosen is None:
            if now - self.waiting[0][3] < 10.0:
                return
            chosen = len(self.waiting) - 1  # partners ten seconds late: fit the newest without them
        for _ in range(chosen):
            self.waiting.popleft()
            self.skipped += 1
        header, image, segmentation, _ = self.waiting.popleft()
        self.last_fit = now
        # The fit runs beside the executor, so the array and camera callbacks keep the partner buffers
        # current meanwhile: fitted in the callback, a loaded machine queued the array frames behind each
        # fit and most frames found no partner.
        self.worker = threading.Thread(target=self._fit, args=(header, image, segmentation), daemon=True)
        self.worker.start()

    def _fit(self, header, image: Image | None, segmentation: GuidewireSegmentation | None) -> None:
        start = time.perf_counter()
        pivot = stamp_ns(header.stamp)
        partners = self.matcher.match(pivot)
        problems = []
        # A calibration holds until the next one: the image may arrive before its own CameraInfo.
        if self.first_fit_request is None:
            self.first_fit_request = time.monotonic()
        if self.view not in self.calibrations:
            if time.monotonic() - self.first_fit_request < CALIBRATION_GRACE_S:
                self._say(WARN, "waiting for the view's first CameraInfo: no fit yet")
            else:
                self._say(ERROR, f"no CameraInfo for the view {CALIBRATION_GRACE_S:.0f} s after its first image: "
                          "no calibration, no fit")
            return
        try:
            camera = camera_from_info(self.calibrations[self.view], *self.poses[self.view])
        except ReconstructionError as error:
            self._say(ERROR, f"no fit: {error}")
            return
        try:
            if segmentation is not None:
                u, v = segmentation.centreline_u, segmentation.centreline_v
                if len(u) != len(v):
                    raise ValueError(f"segmentation centreline_u has {len(u)} values and centreline_v {len(v)}")
                if not (np.isfinite(u).all() and np.isfinite(v).all()):
                    raise ValueError("segmentation centreline is not finite")
                pixels = np.column_stack([u, v]).astype(float)
                pixels = pixels if segmentation.tip_found and len(pixels) >= 4 else None
            else:
                pixels = camera_centreline(convert.image_array(image).squeeze())
        except (ImageFormatError, ValueError) as error:
            self._say(ERROR, f"unusable image: {error}")
            return
        if pixels is None:
            self.segmentation_problem = "no wire in the view" if segmentation is None else self.segmentation_problem
            self._say(WARN, "no wire in the view")
            return
        if segmentation is None:
            self.segmentation_problem = ""
        second_views, note = self._second_view(partners["second"])
        if note:
            problems.append(note)
        # The insertion at the image's instant, interpolated between the robot's states (a loaded
        # machine delays a 50 Hz robot's timer past any fixed matching window).
        joints = self.robot.at(pivot * 1e-9)
        length = None if joints is None else joints[0]
        if length is None:
            length = self._bench_profile().inserted_length(pivot * 1e-9)
            problems.append("no robot state within the window: inserted length from the bench's profile")
        array = None
        method = self.method
        if method in ("physics", "learned"):
            array, note = array_from_message(partners["array"], self.array_offset, self.background, self.noise)
            if note:
                problems.append(note)
            if array is None and method == "physics":
                method = "image_only"
        g = self.bench.guidewire
        direction = np.asarray(g.entry_direction, float)
        prior = WirePrior(inserted_length=float(length), entry_point=np.asarray(g.entry_point, float),
                          entry_direction=direction / np.linalg.norm(direction), magnets=self.magnets)
        track = self.track  # one path for this fit, whatever a parameter change does meanwhile
        leader_note = ""
        try:
            if self.method == "learned":
                view_image = image if image is not None else partners["image"]
                estimate = self._learned(view_image, camera, pixels, prior, array)
                if estimate is None:
                    return
                method = "learned"
            elif track is not None and method == "physics" and not second_views:
                estimate, leader_note = reconstruct_with_leader(track, camera, pixels, prior, array)
                method = "physics + leader"
            else:
                estimate = reconstruct(camera, pixels, prior, array, FitSettings(use_magnetics=method == "physics"),
                                       second_views)
        except ReconstructionError as error:
            self._say(ERROR, f"no fit: {error}")
            return
        shape_header = convert.header(pivot, self.frame_id)
        modalities = GuidewireShape.MODALITY_CAMERA | (GuidewireShape.MODALITY_MAGNETIC if array is not None
                                                       and method != "image_only" else 0) \
            | (GuidewireShape.MODALITY_STEREO if second_views and method != "learned" else 0)
        self.shape_publisher.publish(convert.guidewire_shape(shape_header, estimate, self.magnets.diameter,
                                                             modalities))
        self.cloud_publisher.publish(convert.wire_cloud(shape_header, estimate.points, estimate.sigma))
        self.marker_publisher.publish(convert.wire_marker(shape_header, estimate.points, self.magnets.diameter))
        self.tip_publisher.publish(convert.pose_stamped(shape_header, estimate.tip_position,
                                                        estimate.tip_orientation))
        self.tip_pose_publisher.publish(convert.tip_pose_with_covariance(shape_header, estimate))
        ct = self.ct
        if ct is not None:
            ct_header = convert.header(pivot, ct[0])
            in_ct = estimate_in_frame(estimate, ct[1])
            self.ct_shape_publisher.publish(convert.guidewire_shape(ct_header, in_ct, self.magnets.diameter,
                                                                    modalities))
            self.ct_tip_pose_publisher.publish(convert.tip_pose_with_covariance(ct_header, in_ct))
        # The robot's insertion is the fit's length prior; a reconstruction that disagrees with it is
        # not the wire the robot holds (buckled, slipped, or the views fitted something else). One view
        # lets the fit fall short by its length slack (the depth of the magnet-free wire is open): allowed.
        slack = FitSettings().length_slack_for(bool(second_views))
        self.length_problem = length_disagreement(estimate.length, float(length),
                                                  self.bounds.length_tolerance + slack) if joints is not None else ""
        if self.length_problem:
            problems.append(self.length_problem)
        self.fit_time, self.fit_chi2 = time.monotonic(), estimate.chi2_per_dof
        self.published += 1
        self.latency_ms = (self.latency_ms + [1000 * (time.perf_counter() - start)])[-50:]
        self.details = {"method": method, "views": 1 + len(second_views) if method != "learned" else 1,
                        "sensors used": estimate.used_sensors,
                        "tip sigma (mm)": f"{estimate.tip_sigma * 1000:.2f}",
                        "field residual rms (uT)": f"{estimate.field_rms * 1e6:.3f}",
                        "chi2 per dof": f"{estimate.chi2_per_dof:.2f}", "length (mm)": f"{estimate.length * 1000:.1f}",
                        "length prior (mm)": f"{float(length) * 1000:.1f}",
                        "length prior from": "robot" if joints is not None else "bench profile",
                        "leader path bins": "off" if track is None else
                        "not used with two views" if second_views else len(track)}
        if leader_note:
            self.details["leader path"] = leader_note
        if problems:
            self._say(WARN, "; ".join(problems))
        else:
            self.state = (OK, f"wire reconstructed ({method})")

    def _set_follow_the_leader(self, on: bool) -> None:
        self.track = PathTrack() if on else None  # a path is only as good as the tips seen since it started

    def _bench_profile(self):
        """The bench robot's programmed insertion profile, built on first use (twin imported only then)."""
        if self.profile is None:
            from guidewire.twin.wire import GuidewireModel

            self.profile = GuidewireModel(self.bench.guidewire, self.bench.seed)
        return self.profile

    def _second_view(self, image: Image | None) -> tuple[list, str]:
        """[(camera, centreline, off-path skeleton px)] of the second view's frame of the same instant, or []
        and why not."""
        if not self.second_view:
            return [], ""
        if image is None or self.second_view not in self.calibrations:
            return [], f"no {self.second_view} frame or calibration within the window: one view only"
        try:
            camera = camera_from_info(self.calibrations[self.second_view], *self.poses[self.second_view])
            trace = camera_trace(convert.image_array(image).squeeze())
        except (ReconstructionError, ImageFormatError, ValueError) as error:
            return [], f"{self.second_view} unusable ({error}): one view only"
        if trace is None or len(trace.points) < 4:
            return [], f"no wire in {self.second_view}: one view only"
        return [(camera, trace.points, trace.off_path)], ""

    def _learned(self, image: Image | None, camera, pixels, prior, array):
        from guidewire.reconstruction.learned import as_estimate, make_sample

        if self.learned is None:
            self._say(ERROR, f"learned method without networks: {self.learned_error}")
            return None
        if image is None or array is None:
            self._say(ERROR, "the learned method needs the view's image and an array frame within the window")
            return None
        field = array.wire_component()
        sample = make_sample(convert.image_array(image).squeeze(), camera, pixels, prior.entry_point,
                             array.positions, np.where(array.valid[:, None], field, 0.0), array.valid)
        return as_estimate(self.learned.reconstruct(sample), int(array.valid.sum()))

    def _say(self, level, message: str) -> None:
        if self.state != (level, message):
            if level == ERROR:
                self.get_logger().error(message)
            else:
                self.get_logger().warning(message)
        self.state = (level, message)

    def _publish_status(self) -> None:
        """The controller's one question: can the perception be trusted now, and if not, why."""
        now = time.monotonic()
        ages = {name: None if seen is None else now - seen for name, seen in self.inputs.items()}
        fit_age = None if self.fit_time is None else now - self.fit_time
        reasons = distrust_reasons(ages, fit_age, self.fit_chi2, self.length_problem, self.segmentation_problem,
                                   self.bounds)
        values = {f"{name} age (s)": "never" if age is None else f"{age:.2f}" for name, age in ages.items()}
        values.update({"fit age (s)": "never" if fit_age is None else f"{fit_age:.2f}",
                       "chi2 per dof": f"{self.fit_chi2:.2f}", **self.details})
        self.status_publisher.publish(DiagnosticStatus(
            level=WARN if reasons else OK, name=f"{self.get_name()}: perception", hardware_id="reconstruction",
            message="; ".join(reasons) if reasons else "trusted",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()]))

    def _report(self) -> None:
        level, message = self.state
        values = {"published": self.published, "frames skipped (a newer one came first)": self.skipped,
                  "frames thinned (max_rate_hz)": self.thinned,
                  **self.details}
        if self.latency_ms:
            values["fit latency p50 (ms)"] = f"{np.median(self.latency_ms):.0f}"
        values["CT frame"] = self.ct[0] if self.ct is not None else "not registered"
        if self.ct_problem:  # the bench-frame wire is unaffected: said beside it, not instead of it
            level, message = max(level, WARN), f"{message}; {self.ct_problem}"
        self.diagnostics.publish(level, message, values)

    def close(self) -> None:
        """Let a fit in flight finish before the context goes (it publishes when done)."""
        if self.worker is not None:
            self.worker.join(timeout=10.0)


def main() -> None:
    run(ReconstructionNode)


if __name__ == "__main__":
    main()
