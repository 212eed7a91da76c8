"""Foxglove bridge node: a live view of the wire, images, magnetic field and frames for the
Foxglove app (guidewire.bridges.foxglove_view).

Serves the foxglove-sdk WebSocket server on host:port (`serve`; the app opens ws://host:port)
and/or writes the same channels to an MCAP file (`mcap_path`). Channels: /guidewire/scene (the
wire as a line and a tip arrow, SceneUpdate) and /guidewire/cloud (PointCloud, x y z sigma),
each image topic as RawImage, /mag_array/field (an arrow per sensor, SceneUpdate), and /tf and
/tf_static as FrameTransforms (the static ones again every second: a live view has no history).
All in SI units and the frames the ROS topics name. Bad input is said on /diagnostics.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from guidewire.bridges import foxglove_view
from guidewire.geometry import on_bench
from guidewire.imaging import ImageFormatError
from guidewire.sync import stamp_ns
from guidewire_perception.msg import GuidewireShape, MagnetometerArray
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, Diagnostics, declare, latched_qos, qos_profile, run

# tf2_ros's static listener QoS: a late subscriber still gets the static frames
# The AK09940A saturates near 1.2 mT; a reading of a tesla or more is corrupt, and its arrow would reach past the bench.
MAX_FIELD_T = 1.0
STATIC_QOS = latched_qos()


class FoxgloveBridge(Node):
    def __init__(self):
        super().__init__("foxglove_bridge")
        serve = declare(self, "serve", True, "Serve the live view over WebSocket (the Foxglove app: ws://host:port)")
        host = declare(self, "host", "127.0.0.1",
                       "Address the WebSocket server listens on: 127.0.0.1 (this machine only) or 0.0.0.0")
        port = declare(self, "port", foxglove_view.DEFAULT_PORT, "WebSocket port (the app's default 8765)", 1, 65535)
        mcap_path = declare(self, "mcap_path", "", "Also write the channels to this MCAP file; '' = none")
        self.period = {"wire": 1.0 / declare(self, "rate_hz", 10.0, "Most wire updates per second", 0.1, 100.0),
                       "image": 1.0 / declare(self, "image_rate_hz", 2.0, "Most frames per second of each image",
                                              0.1, 30.0),
                       "field": 1.0 / declare(self, "field_rate_hz", 5.0, "Most field updates per second",
                                              0.1, 100.0)}
        shape_topic = declare(self, "shape_topic", "guidewire/shape", "The reconstructed wire (GuidewireShape)")
        image_topics = declare(self, "image_topics", ["xray/image_raw", "segmentation/overlay"],
                               "sensor_msgs/Image topics shown as images ('' entries are ignored)")
        array_topic = declare(self, "array_topic", "mag_array/frame", "MagnetometerArray frames; '' = no field")
        self.field_scale = declare(self, "field_scale", 200.0, "Field arrow length per tesla, m/T (as RViz's)",
                                   0.0, 1e6)
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data", "Subscription QoS"))
        try:
            self.view = foxglove_view.LiveView(host, port, serve=serve, mcap_path=mcap_path)
        except (ValueError, RuntimeError, OSError) as error:
            raise SystemExit(f"foxglove_bridge: {error}") from error
        self.diagnostics = Diagnostics(self, "foxglove_bridge")
        self.last: dict[str, float] = {}
        self.logged: dict[str, int] = {}
        self.static: dict[str, object] = {}  # child frame -> its latest static FrameTransform
        self.problems: dict[str, str] = {}  # per input: why its latest message was not shown
        self.create_subscription(GuidewireShape, shape_topic, self._on_shape, input_qos)
        for topic in filter(None, image_topics):
            self.create_subscription(Image, topic, lambda m, t=topic: self._on_image(t, m), input_qos)
        if array_topic:
            self.create_subscription(MagnetometerArray, array_topic, self._on_array, input_qos)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf("/tf", m), 100)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf("/tf_static", m), STATIC_QOS)
        self.create_timer(1.0, self._report)
        where = f"ws://{host}:{self.view.port}" if serve else ""
        self.get_logger().info(f"Foxglove live view: {' and '.join(filter(None, [where, mcap_path]))}")

    def _due(self, key: str, kind: str) -> bool:
        """Whether `key` may be logged now (at most once a period of its kind)."""
        now = time.monotonic()
        if now - self.last.get(key, -1e9) < self.period[kind]:
            return False
        self.last[key] = now
        return True

    def _log(self, topic: str, message, stamp: int) -> None:
        self.view.log(topic, message, stamp)
        self.logged[topic] = self.logged.get(topic, 0) + 1

    def _on_shape(self, message: GuidewireShape) -> None:
        if not self._due("wire", "wire"):
            return
        try:
            points, sigma, position, orientation = convert.shape_arrays(message)
        except ValueError as error:
            return self._error("shape", f"unusable shape: {error}")
        stamp, frame = stamp_ns(message.header.stamp), message.header.frame_id
        try:
            scene = foxglove_view.wire_scene(points, position, orientation, message.diameter, frame, stamp)
            cloud = foxglove_view.wire_cloud(points, sigma, frame, stamp)
        except (ValueError, OverflowError) as error:
            return self._error("shape", f"unusable shape: {error}")
        self._log("/guidewire/scene", scene, stamp)
        self._log("/guidewire/cloud", cloud, stamp)
        self.problems.pop("shape", None)

    def _on_image(self, topic: str, message: Image) -> None:
        if not self._due(topic, "image"):
            return
        try:
            convert.image_array(message)  # rejects an image whose fields contradict each other
        except ImageFormatError as error:
            return self._error(topic, f"unusable image on {topic}: {error}")
        stamp = stamp_ns(message.header.stamp)
        try:
            image = foxglove_view.raw_image(message.height, message.width, message.encoding, message.step,
                                            message.data, message.header.frame_id, stamp)
        except (ValueError, OverflowError) as error:
            return self._error(topic, f"unusable image on {topic}: {error}")
        self.problems.pop(topic, None)
        self._log("/" + topic.lstrip("/"), image, stamp)

    def _on_array(self, message: MagnetometerArray) -> None:
        if not self._due("field", "field"):
            return
        positions = [[p.x, p.y, p.z] for p in message.sensor_positions]
        field = [[v.x, v.y, v.z] for v in message.magnetic_field]
        if len(positions) != len(field):
            return self._error("array", f"array frame with {len(positions)} positions and {len(field)} fields")
        stamp = stamp_ns(message.header.stamp)
        if not (np.isfinite(positions).all() and np.isfinite(field).all()):
            return self._error("array", "array frame with non-finite sensor positions or field")
        strongest = np.abs(field).max(initial=0.0)
        if strongest > MAX_FIELD_T:
            return self._error("array", f"array frame with a field component of {strongest:.3g} T, beyond any "
                                        f"magnetometer ({MAX_FIELD_T:g} T)")
        try:
            positions = on_bench("array frame's sensor positions", positions)
            scene = foxglove_view.field_scene(positions, field, self.field_scale, message.header.frame_id, stamp)
        except (ValueError, OverflowError) as error:
            return self._error("array", f"unusable array frame: {error}")
        self.problems.pop("array", None)
        self._log("/mag_array/field", scene, stamp)

    def _on_tf(self, topic: str, message: TFMessage) -> None:
        try:
            transforms = {t.child_frame_id: self._transform(t) for t in message.transforms}
        except (ValueError, OverflowError) as error:
            return self._error(topic, f"unusable transform on {topic}: {error}")
        self.problems.pop(topic, None)
        if topic == "/tf_static":
            self.static.update(transforms)
            return self._log_static()
        if transforms:
            self._log("/tf", foxglove_view.frame_transforms(transforms.values()),
                      self.get_clock().now().nanoseconds)

    @staticmethod
    def _transform(t):
        r, p = t.transform.rotation, t.transform.translation
        return foxglove_view.frame_transform(t.header.frame_id, t.child_frame_id, (p.x, p.y, p.z),
                                             (r.x, r.y, r.z, r.w), stamp_ns(t.header.stamp))

    def _log_static(self) -> None:
        if self.static:
            self._log("/tf_static", foxglove_view.frame_transforms(self.static.values()),
                      self.get_clock().now().nanoseconds)

    def _error(self, source: str, message: str) -> None:
        if self.problems.get(source) != message:
            self.get_logger().error(message)
        self.problems[source] = message

    def _report(self) -> None:
        self._log_static()
        problems = "; ".join(self.problems.values())
        self.diagnostics.publish(ERROR if problems else OK, problems or "serving",
                                 {"port": self.view.port, **{f"{t} logged": n for t, n in self.logged.items()}})

    def close(self) -> None:
        self.view.close()


def main() -> None:
    run(FoxgloveBridge)


if __name__ == "__main__":
    main()
