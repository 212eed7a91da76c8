"""Recorder node: subscribes to the chosen topics (all by default) and writes the
serialized messages, byte for byte, into a rosbag2 bag (mcap or sqlite3)."""
from __future__ import annotations

import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from guidewire.bag import BagWriter
from guidewire_ros.common import OK, Diagnostics, declare, message_class, run, runtime_parameters


def offered_qos(node: Node, topic: str, depth: int) -> tuple[QoSProfile, list]:
    """A subscription QoS compatible with every current publisher, and their profiles for the bag."""
    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    transient = bool(infos) and all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    profile = QoSProfile(depth=depth,
                         reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE)
    return profile, [i.qos_profile for i in infos]


def bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbags stores it in the bag's metadata."""
    never = QosTime(0, 0)
    return Qos(QosHistory(int(profile.history)), profile.depth, QosReliability(int(profile.reliability)),
               QosDurability(int(profile.durability)), never, never, QosLiveliness(int(profile.liveliness)), never,
               False)


class Recorder(Node):
    def __init__(self):
        super().__init__("recorder")
        self.topics = [t for t in declare(self, "topics", [""], "Topics to record; [''] records all") if t]
        output = declare(self, "output", "", "Bag directory to create; '' = rosbag2_<date> in the cwd")
        storage = declare(self, "storage", "mcap", "Storage plugin: mcap (default) or sqlite3")
        self.queue_depth = declare(self, "queue_depth", 4000,
                                   "Messages per topic held while writing falls behind (10 s at 400 Hz)", 1, 1_000_000)
        self.path = Path(output or time.strftime("rosbag2_%Y_%m_%d-%H_%M_%S"))
        self.bag = BagWriter(self.path, storage)
        self.subscriptions_by_topic = {}
        self.diagnostics = Diagnostics(self, f"recorder/{self.path.name}")
        self.create_timer(0.2, self._discover)
        # A killed recorder leaves its bag recoverable up to the last checkpoint.
        self.checkpoint_timer = self.create_timer(
            declare(self, "checkpoint_s", 0.5, "Seconds between flushes to disk (mcap chunk, sqlite3 commit); "
                    "changes at run time", 0.01, 3600.0), self.bag.checkpoint)
        self.diagnostics.start(self._report)
        runtime_parameters(self, {"checkpoint_s": self._set_checkpoint_period})
        self.get_logger().info(f"recording {'all topics' if not self.topics else ', '.join(self.topics)} "
                               f"to {self.path} ({storage})")

    def _discover(self) -> None:
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscriptions_by_topic or (self.topics and topic not in self.topics):
                continue
            if topic in ("/rosout", "/parameter_events") and not self.topics:
                continue
            if not self.get_publishers_info_by_topic(topic):
                continue
            profile, offered = offered_qos(self, topic, self.queue_depth)
            msgtype = types[0]
            self.bag.add_topic(topic, msgtype, [bag_qos(p) for p in offered])
            self.subscriptions_by_topic[topic] = self.create_subscription(
                message_class(msgtype), topic, lambda data, info, t=topic: self._write(t, data, info), profile,
                raw=True)

    def _write(self, topic: str, data: bytes, info) -> None:
        """The log time is when the recorder takes the message (not the middleware's receive stamp: it
        was seen to run backwards across a topic's first messages, which put them out of order in the
        bag); the publication time is the publisher's source stamp, which replay plays by (a backlog
        received late in a burst is not squeezed)."""
        self.bag.write(topic, self.get_clock().now().nanoseconds, data, info["source_timestamp"] or None)

    def _set_checkpoint_period(self, seconds: float) -> None:
        self.destroy_timer(self.checkpoint_timer)
        self.checkpoint_timer = self.create_timer(seconds, self.bag.checkpoint)

    def _report(self) -> None:
        self.diagnostics.publish(OK, "recording", {"bag": str(self.path), **{
            f"messages {topic}": count for topic, count in dict(self.bag.counts).items()}})

    def close(self) -> None:
        self.diagnostics.close()
        self.bag.close()
        self.get_logger().info(f"closed {self.path}: " + ", ".join(f"{t} {n}" for t, n in self.bag.counts.items()))


def main() -> None:
    run(Recorder)


if __name__ == "__main__":
    main()
