"""The wire, images and the magnetic field for a Foxglove live view (foxglove-sdk).

Messages are foxglove.messages types (protobuf on the wire), in SI units and the frames the
ROS topics name (the wire in `bench`); the Foxglove app connects to the WebSocket server
(ws://HOST:PORT; foxglove-sdk 0.30 speaks the subprotocol foxglove.sdk.v1), and the same
channels can be written to an MCAP file (protobuf, not rosbag2) for later viewing.
"""
from __future__ import annotations

import foxglove
import numpy as np
from foxglove import channels
from foxglove.messages import (ArrowPrimitive, Color, FrameTransform, FrameTransforms, LinePrimitive,
                               LinePrimitiveLineType, PackedElementField, PackedElementFieldNumericType, Point3,
                               PointCloud, Pose, Quaternion, RawImage, SceneEntity, SceneUpdate, Timestamp, Vector3)
from scipy.spatial.transform import Rotation

DEFAULT_PORT = 8765  # the Foxglove app's default for a WebSocket connection
WIRE_COLOUR = Color(r=1.0, g=0.3, b=0.1, a=1.0)  # as the RViz marker
FIELD_COLOUR = Color(r=0.1, g=0.8, b=0.2, a=1.0)


def timestamp(stamp_ns: int) -> Timestamp:
    """Foxglove's Timestamp (unsigned seconds); ValueError for a stamp before 1970 or past 2106."""
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    if not 0 <= seconds < 2**32:
        raise ValueError(f"stamp {seconds} s is outside what Foxglove's timestamps carry (1970 to 2106)")
    return Timestamp(seconds, nanoseconds)


def point3(p) -> Point3:
    return Point3(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def pose(position, orientation_xyzw) -> Pose:
    x, y, z, w = (float(v) for v in orientation_xyzw)
    return Pose(position=Vector3(x=float(position[0]), y=float(position[1]), z=float(position[2])),
                orientation=Quaternion(x=x, y=y, z=z, w=w))


def wire_scene(points, tip_position, tip_orientation_xyzw, diameter: float, frame_id: str,
               stamp_ns: int) -> SceneUpdate:
    """The wire as a line strip (metres, drawn at least 1 mm wide) and an arrow out of the tip
    (the tip pose's x axis), one entity that each update replaces."""
    line = LinePrimitive(type=LinePrimitiveLineType.LineStrip, pose=pose((0, 0, 0), (0, 0, 0, 1)),
                         thickness=max(float(diameter), 0.001), points=[point3(p) for p in points],
                         color=WIRE_COLOUR)
    arrow = ArrowPrimitive(pose=pose(tip_position, tip_orientation_xyzw), shaft_length=0.005,
                           shaft_diameter=0.001, head_length=0.003, head_diameter=0.002, color=WIRE_COLOUR)
    entity = SceneEntity(timestamp=timestamp(stamp_ns), frame_id=frame_id, id="guidewire", lines=[line],
                         arrows=[arrow])
    return SceneUpdate(entities=[entity])


def wire_cloud(points, sigma, frame_id: str, stamp_ns: int) -> PointCloud:
    """float32 x, y, z and sigma (metres, 1-sigma per point), as the ROS wire cloud."""
    data = np.column_stack([np.asarray(points, float), np.asarray(sigma, float)]).astype("<f4")
    fields = [PackedElementField(name=name, offset=4 * i, type=PackedElementFieldNumericType.Float32)
              for i, name in enumerate(("x", "y", "z", "sigma"))]
    return PointCloud(timestamp=timestamp(stamp_ns), frame_id=frame_id, pose=pose((0, 0, 0), (0, 0, 0, 1)),
                      point_stride=16, fields=fields, data=data.tobytes())


def raw_image(height: int, width: int, encoding: str, step: int, data: bytes, frame_id: str,
              stamp_ns: int) -> RawImage:
    """A sensor_msgs/Image's fields as they are (Foxglove reads the ROS encodings mono8, mono16, bgr8...)."""
    return RawImage(timestamp=timestamp(stamp_ns), frame_id=frame_id, width=int(width), height=int(height),
                    encoding=encoding, step=int(step), data=bytes(data))


def x_to(direction) -> tuple:
    """Quaternion (x, y, z, w) turning +x onto `direction` (an arrow primitive points along +x)."""
    direction = np.asarray(direction, float)
    direction = direction / np.abs(direction).max()  # first by its largest component: squares of 1e200 overflow
    rotation, _ = Rotation.align_vectors([direction / np.linalg.norm(direction)], [[1.0, 0.0, 0.0]])
    return tuple(rotation.as_quat())


def field_scene(positions, field, scale: float, frame_id: str, stamp_ns: int) -> SceneUpdate:
    """An arrow per sensor (`scale` metres per tesla) from its position (metres, in `frame_id`);
    sensors without a finite, non-zero field get none."""
    arrows = []
    for position, vector in zip(np.asarray(positions, float), np.asarray(field, float)):
        length = scale * float(np.linalg.norm(vector))
        if not np.isfinite(vector).all() or length <= 0:
            continue
        arrows.append(ArrowPrimitive(pose=pose(position, x_to(vector)), shaft_length=0.7 * length,
                                     shaft_diameter=0.002, head_length=0.3 * length, head_diameter=0.004,
                                     color=FIELD_COLOUR))
    return SceneUpdate(entities=[SceneEntity(timestamp=timestamp(stamp_ns), frame_id=frame_id,
                                             id="magnetic_field", arrows=arrows)])


def frame_transform(parent: str, child: str, translation, rotation_xyzw, stamp_ns: int) -> FrameTransform:
    x, y, z, w = (float(v) for v in rotation_xyzw)
    return FrameTransform(timestamp=timestamp(stamp_ns), parent_frame_id=parent, child_frame_id=child,
                          translation=Vector3(x=float(translation[0]), y=float(translation[1]),
                                              z=float(translation[2])),
                          rotation=Quaternion(x=x, y=y, z=z, w=w))


def frame_transforms(transforms) -> FrameTransforms:
    """Several FrameTransforms in one message (as one TFMessage)."""
    return FrameTransforms(transforms=list(transforms))


class LiveView:
    """Typed channels on a context of their own, served over WebSocket (`serve`) and/or written to
    an MCAP file (`mcap_path`); at least one of the two."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, serve: bool = True,
                 mcap_path: str = ""):
        if not serve and not mcap_path:
            raise ValueError("a live view needs a server (serve) or an MCAP file (mcap_path), or both")
        self.context = foxglove.Context()
        self.server = foxglove.start_server(name="guidewire_perception", host=host, port=port,
                                            context=self.context) if serve else None
        self.mcap = foxglove.open_mcap(mcap_path, allow_overwrite=True, context=self.context) if mcap_path else None
        self.channels: dict = {}

    @property
    def port(self) -> int | None:
        return self.server.port if self.server else None

    def log(self, topic: str, message, stamp_ns: int) -> None:
        """Log a foxglove.messages value on `topic` (its typed channel made on first use)."""
        channel = self.channels.get(topic)
        if channel is None:
            channel_class = getattr(channels, f"{type(message).__name__}Channel")
            channel = self.channels[topic] = channel_class(topic, context=self.context)
        channel.log(message, log_time=int(stamp_ns))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.mcap is not None:
            self.mcap.close()
            self.mcap = None
