"""Slicer bridge node: the reconstructed wire, its tip and the registered CT for 3D Slicer over
OpenIGTLink (guidewire.bridges.slicer).

Serves OpenIGTLink on host:port; in Slicer, OpenIGTLinkIF adds a client connector to it. Sends, in
millimetres and RAS (or LPS, `coordinates`), at most rate_hz times a second and only what is new:
the wire (POLYDATA, a model; or POINT, a point list), the tip pose (TRANSFORM GuidewireTipToWorld)
and the CT pose (TRANSFORM CTToWorld, again every second so that a client that connects late gets
it; read transient-local, so a bridge started after the registration gets it too). A shape or pose
that is not usable is said on /diagnostics; the node keeps serving.
"""
from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node

from guidewire.bridges import slicer
from guidewire.sync import stamp_ns
from guidewire_perception.msg import GuidewireShape
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, Diagnostics, declare, latched_qos, qos_profile, run

WIRE_AS = ("polydata", "point")


class SlicerBridge(Node):
    def __init__(self):
        super().__init__("slicer_bridge")
        host = declare(self, "host", "127.0.0.1",
                       "Address the OpenIGTLink server listens on: 127.0.0.1 (this machine only) or an "
                       "interface's address (0.0.0.0: every interface, for Slicer on another machine)")
        port = declare(self, "port", slicer.DEFAULT_PORT, "OpenIGTLink port (Slicer's connector default 18944)",
                       1, 65535)
        rate = declare(self, "rate_hz", 20.0, "Most updates sent per second (the newest shape each time)", 0.1, 100.0)
        self.coordinates = declare(self, "coordinates", "RAS",
                                   "World convention of what is sent: RAS (Slicer's world) or LPS (DICOM, ITK)")
        self.wire_as = declare(self, "wire_as", "polydata",
                               "The wire as polydata (a polyline model in Slicer) or point (a point list)")
        shape_topic = declare(self, "shape_topic", "guidewire/shape", "The reconstructed wire (GuidewireShape)")
        ct_topic = declare(self, "ct_pose_topic", "ct_registration/ct_pose",
                           "PoseStamped of the registered CT frame in the wire's frame; '' = none")
        self.frame_id = declare(self, "frame_id", "bench", "The frame sent as Slicer's world (the bench)")
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data",
                                        "Subscription QoS of the shape (the CT pose is read latched)"))
        if self.coordinates not in slicer.COORDINATES:
            raise SystemExit(f"slicer_bridge: coordinates must be one of {', '.join(slicer.COORDINATES)}, "
                             f"got {self.coordinates!r}")
        if self.wire_as not in WIRE_AS:
            raise SystemExit(f"slicer_bridge: wire_as must be one of {', '.join(WIRE_AS)}, got {self.wire_as!r}")
        try:
            self.server = slicer.SlicerServer(host, port)
        except OSError as error:
            raise SystemExit(f"slicer_bridge: cannot serve OpenIGTLink on {host}:{port}: {error}") from error
        self.diagnostics = Diagnostics(self, "slicer_bridge")
        self.shape: list | None = None  # OpenIGTLink messages of the newest shape, not sent yet
        self.ct: list = []  # the CT transform, sent again every second
        self.ct_due = False
        self.sent = {"shapes": 0, "ct poses": 0}
        self.problems = {"shape": "", "ct": ""}  # per input: why the latest one was not sent
        self.create_subscription(GuidewireShape, shape_topic, self._on_shape, input_qos)
        if ct_topic:
            # As the registration's latched writer (input_qos' volatile reader got nothing from it): a bridge
            # started after the one-off registration still gets the CT pose; only the newest one matters.
            self.create_subscription(PoseStamped, ct_topic, self._on_ct, latched_qos())
        self.create_timer(1.0 / rate, self._send)
        self.create_timer(1.0, self._report)
        self.get_logger().info(f"OpenIGTLink on {self.server.host}:{self.server.port} ({self.coordinates}, mm)")

    def _on_shape(self, message: GuidewireShape) -> None:
        if message.header.frame_id != self.frame_id:
            return self._error("shape", f"shape in frame '{message.header.frame_id}', expected '{self.frame_id}': "
                               "not sent")
        stamp = stamp_ns(message.header.stamp) * 1e-9
        try:
            points, _, position, orientation = convert.shape_arrays(message)
            wire = slicer.points_mm(points, self.coordinates)
            tip = slicer.transform_message(slicer.tip_matrix(position, orientation, self.coordinates),
                                           slicer.TIP_DEVICE, stamp)
        except ValueError as error:
            return self._error("shape", f"unusable shape: {error}")
        wire_message = slicer.wire_polydata(wire, stamp) if self.wire_as == "polydata" else \
            slicer.wire_point_message(wire, stamp, message.diameter * slicer.MM_PER_M)
        self.shape, self.problems["shape"] = [wire_message, tip], ""

    def _on_ct(self, message: PoseStamped) -> None:
        if message.header.frame_id != self.frame_id:
            return self._error("ct", f"CT pose in frame '{message.header.frame_id}', expected '{self.frame_id}': "
                               "not sent")
        try:
            matrix = slicer.ct_matrix(convert.matrix_from_pose(message.pose), self.coordinates)
        except ValueError as error:
            return self._error("ct", f"unusable CT pose: {error}")
        self.ct = [slicer.transform_message(matrix, slicer.CT_DEVICE, stamp_ns(message.header.stamp) * 1e-9)]
        self.ct_due, self.problems["ct"] = True, ""

    def _send(self) -> None:
        if self.shape is not None and self.server.send(self.shape):
            self.shape = None
            self.sent["shapes"] += 1
        if self.ct_due and self.server.send(self.ct):
            self.ct_due = False
            self.sent["ct poses"] += 1

    def _error(self, source: str, message: str) -> None:
        if self.problems[source] != message:
            self.get_logger().error(message)
        self.problems[source] = message

    def _report(self) -> None:
        connected = self.server.is_connected()
        self.ct_due = bool(self.ct)  # again every second, for a client that connected since
        problems = "; ".join(filter(None, self.problems.values()))
        message = problems or ("Slicer connected" if connected else "waiting for a Slicer connection")
        self.diagnostics.publish(ERROR if problems else OK, message,
                                 {"endpoint": f"{self.server.host}:{self.server.port}",
                                  "coordinates": f"{self.coordinates}, mm", "connected": connected,
                                  **{f"{key} sent": value for key, value in self.sent.items()}})

    def close(self) -> None:
        self.server.stop()


def main() -> None:
    run(SlicerBridge)


if __name__ == "__main__":
    main()
