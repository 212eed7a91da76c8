"""Bench frames node: the bench's static transforms on /tf_static, as tf2's static broadcaster does.

From the bench configuration (guidewire.frames): bench -> mag_array, each camera's optical frame,
each X-ray camera's optical frame (the C-arm's focal spot) and detector, and the robot base.
The CT frame joins once a registration arrives (a PoseStamped of the CT in a TF frame, or a
converged RegistrationResult; a result that did not converge leaves the CT frame where it is): the
whole set is published again with it, so a late subscriber (transient local, depth 1) gets every
frame in one TFMessage.
"""
from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from guidewire.frames import bench_frames
from guidewire.twin.config import ConfigError, load_bench_config
from guidewire_perception.msg import RegistrationResult
from guidewire_ros import convert
from guidewire_ros.common import OK, WARN, Diagnostics, declare, latched_qos, run, runtime_parameters

# tf2_ros.StaticTransformBroadcaster's QoS
STATIC_QOS = latched_qos()


class BenchFrames(Node):
    def __init__(self):
        super().__init__("bench_frames")
        bench_config = declare(self, "bench_config", "", "Bench YAML with the sensors' poses; '' = embedded defaults")
        xray_cameras = declare(self, "xray_cameras", ["xray"], "The C-arm's cameras, name or name:view (a named "
                               "view, as camera_capture's view parameter): their <name>_optical and _detector frames")
        self.ct_frame = declare(self, "ct_frame_id", "ct", "Frame of the registered CT volume")
        ct_pose_topic = declare(self, "ct_pose_topic", "ct_registration/ct_pose",
                                "PoseStamped of the CT in a TF frame (the registration's); '' = none")
        result_topic = declare(self, "registration_topic", "ct_registration/result",
                               "RegistrationResult whose ct_to_world becomes the CT transform; '' = none")
        try:
            frames = bench_frames(load_bench_config(bench_config or None), tuple(xray_cameras))
        except ConfigError as error:
            raise SystemExit(f"bench_frames: {error}") from error
        stamp = self.get_clock().now().to_msg()
        self.transforms = {frame.child: convert.transform_stamped(stamp, frame.parent, frame.child, frame.pose)
                           for frame in frames}
        self.publisher = self.create_publisher(TFMessage, "/tf_static", STATIC_QOS)
        # Both transient-local as the registration's latched writers: a bench_frames started (or respawned)
        # after the one-off registration still gets the CT pose. Depth 10 holds the result writer's whole
        # history (qos_depth 5), so a failed result after a converged one still leaves the converged one.
        latched = latched_qos(10)
        if ct_pose_topic:
            self.create_subscription(PoseStamped, ct_pose_topic,
                                     lambda m: self._set_ct(m.header, m.pose, self.ct_frame), latched)
        if result_topic:
            self.create_subscription(RegistrationResult, result_topic, self._on_result, latched)
        self.diagnostics = Diagnostics(self, "bench_frames")
        self.problem = ""
        self._publish()
        self.create_timer(1.0, self._report)
        runtime_parameters(self, {})  # every setting is read once: a change is refused, with the reason
        self.get_logger().info(f"/tf_static: {', '.join(self.transforms)}")

    def _on_result(self, result: RegistrationResult) -> None:
        # A failed registration's result carries its initial or best-so-far pose: it must not move ct
        # (the registration publishes ct_pose only when converged).
        if not result.converged:
            child = result.ct_frame_id or self.ct_frame
            self.problem = (f"registration did not converge ({result.message or 'no reason given'}): its pose "
                            "ignored, " + (f"'{child}' stays at the last converged pose" if child in self.transforms
                                           else f"no '{child}' frame yet"))
            self.get_logger().warning(self.problem, throttle_duration_sec=5.0)
            return
        self._set_ct(result.header, result.ct_to_world, result.ct_frame_id or self.ct_frame)

    def _set_ct(self, header, pose, child: str) -> None:
        if not header.frame_id or (header.frame_id not in self.transforms and header.frame_id != "bench"):
            self.problem = f"CT pose in frame '{header.frame_id}', which is not a bench frame: ignored"
            self.get_logger().warning(self.problem, throttle_duration_sec=5.0)
            return
        try:
            matrix = convert.matrix_from_pose(pose)
        except ValueError as error:
            self.problem = f"CT pose unusable ({error}): ignored"
            self.get_logger().warning(self.problem, throttle_duration_sec=5.0)
            return
        self.problem = ""
        self.transforms[child] = convert.transform_stamped(header.stamp, header.frame_id, child, matrix)
        self._publish()

    def _publish(self) -> None:
        self.publisher.publish(TFMessage(transforms=list(self.transforms.values())))

    def _report(self) -> None:
        level, message = (WARN, self.problem) if self.problem else (OK, "static frames published")
        self.diagnostics.publish(level, message, {"frames": ", ".join(self.transforms),
                                                  "ct registered": self.ct_frame in self.transforms})


def main() -> None:
    run(BenchFrames)


if __name__ == "__main__":
    main()
