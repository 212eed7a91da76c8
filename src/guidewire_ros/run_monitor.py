"""The runner's eyes on a pipeline run: which nodes are ready, their output rates and latencies, and their
error against the bench's ground truth, live.

A node is ready when its first output arrives: a message on one of its data topics (for a node whose only
publication is /diagnostics, such as the recorder, its first diagnostic). Images are not subscribed to
where the node publishes something smaller beside them (a camera's CameraInfo), so watching costs the
run little.
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from guidewire.robot import INSERTION, ROLL, robot_joint_state
from guidewire_ros.common import message_class

INFRASTRUCTURE_TOPICS = {"/rosout", "/parameter_events", "/diagnostics", "/tf", "/tf_static"}
# What a node publishes beside its output (pictures for viewers, status) and images (large): watched
# only where a node publishes nothing else.
SIDE_PACKAGES = {"visualization_msgs", "diagnostic_msgs"}
IMAGE_TYPE = "sensor_msgs/msg/Image"
WINDOW_S = 5.0


def stamp_of(message) -> int | None:
    header = getattr(message, "header", None)
    if header is None:
        return None
    value = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
    return value or None


class RunMonitor(Node):
    def __init__(self, expected_nodes: list[str], truth=None):
        super().__init__("run_monitor")
        self.expected = list(expected_nodes)
        self.truth = truth
        self.lock = threading.Lock()
        self.ready_since: dict[str, float] = {}
        self.topic_publishers: dict[str, list[str]] = {}
        self.arrivals: dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))  # (receive s, latency s)
        self.scores: dict[str, deque] = defaultdict(lambda: deque(maxlen=200))
        self.subscribed: set[str] = set()
        self.silent: set[str] = set()  # nodes in the graph that publish no data topic
        self.diagnosed: set[str] = set()
        self.create_subscription(message_class("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics",
                                 self._on_diagnostics, 50)
        self.diagnostics_publisher = self.create_publisher(message_class("diagnostic_msgs/msg/DiagnosticArray"),
                                                           "/diagnostics", 10)
        self.create_timer(0.5, self._discover)

    # Discovery ---------------------------------------------------------------------------------
    def _discover(self) -> None:
        for name in self.expected:
            publications = self._publications(name)
            data = {topic: kind for topic, kind in publications.items() if topic not in INFRASTRUCTURE_TOPICS}
            if publications and not data:
                self.silent.add(name)
            elif data:
                self.silent.discard(name)
            small = {topic: kind for topic, kind in data.items()
                     if kind != IMAGE_TYPE and kind.split("/")[0] not in SIDE_PACKAGES}
            for topic in data:  # every data topic's publisher, for the report
                self.topic_publishers.setdefault(topic, [])
                if name not in self.topic_publishers[topic]:
                    self.topic_publishers[topic].append(name)
            for topic, kind in (small or data).items():
                if topic not in self.subscribed:
                    self.subscribed.add(topic)
                    self.create_subscription(message_class(kind), topic,
                                             lambda message, topic=topic: self._on_message(topic, message),
                                             qos_profile_sensor_data)

    def _publications(self, name: str) -> dict[str, str]:
        """topic -> type of what the node publishes; empty while it is not in the graph."""
        for node_name, namespace in self.get_node_names_and_namespaces():
            if node_name == name:
                return {topic: kinds[0] for topic, kinds in
                        self.get_publisher_names_and_types_by_node(node_name, namespace)}
        return {}

    # Messages -----------------------------------------------------------------------------------
    def _on_diagnostics(self, message) -> None:
        with self.lock:
            self.diagnosed.update(status.name.split(":", 1)[0] for status in message.status)

    def _mark_ready(self, name: str) -> None:
        with self.lock:
            self.ready_since.setdefault(name, time.monotonic())

    def _on_message(self, topic: str, message) -> None:
        now_ns = self.get_clock().now().nanoseconds
        stamp = stamp_of(message)
        latency = (now_ns - stamp) * 1e-9 if stamp else float("nan")
        for name in self.topic_publishers.get(topic, []):
            self._mark_ready(name)
        with self.lock:
            self.arrivals[topic].append((time.monotonic(), latency))
        if self.truth is not None:
            self._score(message, stamp)

    def _score(self, message, stamp: int | None) -> None:
        kind = type(message).__name__
        try:
            if kind == "JointState":
                state = robot_joint_state(message, INSERTION, ROLL)
                if state is not None and stamp:
                    self.truth.add_robot_state(stamp, state)
            elif kind == "GuidewireSegmentation" and stamp:
                from guidewire_ros.convert import image_array

                tip = np.array([message.tip_u, message.tip_v]) if message.tip_found else None
                score = self.truth.segmentation(stamp, image_array(message.mask) > 0, tip)
                self._add_score("Dice %", score.dice)
            elif kind == "RegistrationResult" and message.converged:
                from guidewire.run_report import score_registration

                _, rotation, origin, _ = score_registration(self.truth, message)
                self._add_score("CT deg", rotation)
                self._add_score("CT mm", origin)
            elif kind == "GuidewireShape" and stamp and len(message.centreline) > 1:
                frame = message.header.frame_id
                errors = self.truth.shape(stamp, np.array([[p.x, p.y, p.z] for p in message.centreline]), frame)
                if frame == self.truth.ct_frame:  # the wire in the anatomy: reconstruction and registration
                    self._add_score("CT-frame tip mm", 1e3 * errors.tip)
                else:
                    self._add_score("3D RMSE mm", 1e3 * errors.rmse)
                    self._add_score("tip mm", 1e3 * errors.tip)
        except ValueError as error:  # a view or a message the bench has no truth for
            self.get_logger().debug(f"not scored: {error}")

    def _add_score(self, name: str, value: float) -> None:
        with self.lock:
            self.scores[name].append(value)

    def report_respawn(self, name: str, text: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        status = DiagnosticStatus(level=DiagnosticStatus.ERROR, name=f"run_pipeline: {name}", message=text,
                                  hardware_id="run_pipeline", values=[KeyValue(key="node", value=name)])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(array)

    # Views ------------------------------------------------------------------------------------
    def pending(self) -> list[str]:
        with self.lock:
            return [name for name in self.expected if name not in self.ready_since
                    and not (name in self.silent and name in self.diagnosed)]

    def node_rows(self) -> list[tuple[str, float, float]]:
        """(node, output rate Hz over the last seconds, median latency ms) per expected node."""
        now = time.monotonic()
        rows = []
        with self.lock:
            for name in self.expected:
                topics = [t for t, names in self.topic_publishers.items() if name in names]
                best = (0.0, float("nan"))
                for topic in topics:
                    recent = [(t, lat) for t, lat in self.arrivals[topic] if now - t <= WINDOW_S]
                    rate = len(recent) / WINDOW_S
                    latencies = [lat for _, lat in recent if math.isfinite(lat)]
                    if rate > best[0] or (rate == best[0] and latencies):
                        best = (rate, 1e3 * float(np.median(latencies)) if latencies else float("nan"))
                rows.append((name, *best))
        return rows

    def score_medians(self) -> dict[str, float]:
        with self.lock:
            return {name: float(np.nanmedian(values)) for name, values in self.scores.items() if len(values)}

    def live_line(self, elapsed: float) -> str:
        parts = [f"{elapsed:5.0f} s"]
        for name, rate, latency in self.node_rows():
            lat = f" {latency:.0f} ms" if math.isfinite(latency) else ""
            parts.append(f"{name} {rate:.1f} Hz{lat}")
        parts += [f"{name} {value:.2f}" for name, value in self.score_medians().items()]
        return " | ".join(parts)
