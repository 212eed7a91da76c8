"""Recorder node: subscribes to the chosen topics (all by default) and writes the
serialized messages, byte for byte, into a rosbag2 bag (mcap or sqlite3). On SIGINT/SIGTERM
it first writes what the middleware already received (the drain), then closes the bag."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from guidewire.bag import BagWriter
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, message_class, run, runtime_parameters, \
    spin_until_stopped

# A topic's backlog (how far behind its newest message was taken, times its rate) as a share of
# queue_depth past which the recorder says it is falling behind.
BACKLOG_WARN = 0.5
# The drain ends once no message published before the stop signal has arrived for this long: a
# burst published just before it may still be on its way through the middleware's receive thread.
DRAIN_QUIET_S = 0.2


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
    def __init__(self, **node_options):
        super().__init__("recorder", **node_options)
        self.topics = [t for t in declare(self, "topics", [""], "Topics to record; [''] records all") if t]
        output = declare(self, "output", "", "Bag directory to create; '' = rosbag2_<date> in the cwd")
        storage = declare(self, "storage", "mcap", "Storage plugin: mcap (default) or sqlite3")
        self.queue_depth = declare(self, "queue_depth", 12000,
                                   "Messages per topic held while writing falls behind (2 min at 100 Hz, 30 s at "
                                   "400 Hz)", 1, 1_000_000)
        self.take_batch = declare(self, "take_batch", 256,
                                  "Messages taken from each topic's queue at each wake-up of the executor (1 = one "
                                  "message per wake-up, rclpy's way): more costs less CPU per message", 1, 100_000)
        self.take_period_s = declare(self, "take_period_s", 0.02,
                                     "Seconds the executor pauses after a wake-up that took messages, for the next "
                                     "ones to gather and be taken together (0 = each as it arrives); a message's "
                                     "log time may come up to this much later; changes at run time", 0.0, 1.0)
        self.drain_s = declare(self, "drain_s", 2.0, "Seconds at most, after a stop signal, to write the messages "
                               "already received before the bag closes", 0.0, 60.0)
        self.path = Path(output or time.strftime("rosbag2_%Y_%m_%d-%H_%M_%S"))
        self.bag = BagWriter(self.path, storage)
        self.subscriptions_by_topic = {}
        self.lag_ns: dict[str, int] = {}  # per topic, the largest publish-to-write delay since the last report
        # When each topic was subscribed: a message published before it is a transient-local writer's
        # history (Fast DDS's default durability), not a backlog.
        self.subscribed_ns: dict[str, int] = {}
        # Messages that never reached the recorder, from gaps in each publisher's sequence numbers: exact,
        # where a backlog estimate saturates at the queue's size once the oldest are being dropped.
        self.last_sequence: dict[tuple[str, bytes], int] = {}
        self.lost: Counter = Counter()
        self.stop_ns: int | None = None  # system time of the stop signal, once it came (the drain)
        self.drained = 0  # messages published before the stop signal and written after it
        self.reported_lost: Counter = Counter()
        self.written_at_pause = 0  # messages written when the executor last paused (pause_s)
        self.reported_counts: Counter = Counter()
        self.last_report = time.monotonic()
        self.diagnostics = Diagnostics(self, f"recorder/{self.path.name}")
        self.discover_timer = self.create_timer(0.2, self._discover)
        # A killed recorder leaves its bag recoverable up to the last checkpoint.
        self.checkpoint_timer = self.create_timer(
            declare(self, "checkpoint_s", 0.5, "Seconds between flushes to disk (mcap chunk, sqlite3 commit); "
                    "changes at run time", 0.01, 3600.0), self.bag.checkpoint)
        self.diagnostics.start(self._report)
        runtime_parameters(self, {"checkpoint_s": self._set_checkpoint_period,
                                  "take_period_s": lambda seconds: setattr(self, "take_period_s", seconds)})
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
            self.subscribed_ns[topic] = self.get_clock().now().nanoseconds
            self.bag.add_topic(topic, msgtype, [bag_qos(p) for p in offered])
            self.subscriptions_by_topic[topic] = self.create_subscription(
                message_class(msgtype), topic, lambda data, info, t=topic: self._take(t, data, info), profile,
                raw=True)

    def _take(self, topic: str, data: bytes, info) -> None:
        """Writes the message the executor took, then what every topic's queue holds, up to take_batch each.
        rclpy's executor takes one message per pass over its wait set, 0.3-0.5 ms of Python beside the
        recorder's two dozen subscriptions, and each pass after a sleep costs more (bench/bench_recorder.py);
        here one pass takes what gathered since the last, through each subscription's handle as the
        executor takes. A topic's messages stay in their order."""
        self._write(topic, data, info)
        for other, subscription in self.subscriptions_by_topic.items():
            for _ in range(self.take_batch - 1 if other == topic else self.take_batch):
                with subscription.handle:
                    taken = subscription.handle.take_message(subscription.msg_type, True)
                if taken is None:
                    break
                self._write(other, *taken)

    def pause_s(self) -> float:
        """The executor's pause after a callback: take_period_s after one that wrote messages; none after one
        that found every queue empty (the other subscriptions the same wake-up found ready, already taken)
        or a timer's, so that a message waits one pause at most."""
        written = sum(self.bag.counts.values())
        pause = self.take_period_s if written != self.written_at_pause else 0.0
        self.written_at_pause = written
        return pause

    def _write(self, topic: str, data: bytes, info) -> None:
        """The log time is when the recorder takes the message (not the middleware's receive stamp: it
        was seen to run backwards across a topic's first messages, which put them out of order in the
        bag); the publication time is the publisher's source stamp, which replay plays by (a backlog
        received late in a burst is not squeezed)."""
        now = self.get_clock().now().nanoseconds
        source = info["source_timestamp"] or None
        self.bag.write(topic, now, data, source)
        if self.stop_ns is not None and (source is None or source <= self.stop_ns):
            self.drained += 1
        if source and source >= self.subscribed_ns[topic]:
            self.lag_ns[topic] = max(self.lag_ns.get(topic, 0), now - source)
        sequence = info.get("publication_sequence_number")
        if sequence:
            writer = (topic, bytes(info["publisher_gid"]["data"]))
            previous = self.last_sequence.get(writer)
            if previous is not None and sequence > previous + 1:
                self.lost[topic] += sequence - previous - 1
            self.last_sequence[writer] = max(sequence, previous or 0)

    def _set_checkpoint_period(self, seconds: float) -> None:
        self.destroy_timer(self.checkpoint_timer)
        self.checkpoint_timer = self.create_timer(seconds, self.bag.checkpoint)

    def _report(self) -> None:
        """OK while every topic's backlog fits its queue with room; WARN past half of it; ERROR for the
        report period in which messages were lost: a recorder on an overloaded machine says so."""
        now, counts, lost = time.monotonic(), Counter(dict(self.bag.counts)), Counter(dict(self.lost))
        newly_lost, self.reported_lost = lost - self.reported_lost, lost
        period, self.last_report = max(now - self.last_report, 1e-3), now
        lags, self.lag_ns = self.lag_ns, {}
        backlog = {topic: lag * 1e-9 * (counts[topic] - self.reported_counts[topic]) / period
                   for topic, lag in lags.items()}
        self.reported_counts = counts
        level, message = OK, "recording"
        worst = max(backlog, key=backlog.get, default=None)
        if newly_lost:
            level, message = ERROR, "lost (never received, the queue or the publisher's history overflowed): " + \
                ", ".join(f"{count} on {topic}" for topic, count in newly_lost.items())
        elif worst is not None and backlog[worst] > BACKLOG_WARN * self.queue_depth:
            level = WARN
            message = (f"falling behind: {worst} written {lags[worst] * 1e-9:.1f} s after publication, about "
                       f"{backlog[worst]:.0f} messages queued of queue_depth {self.queue_depth}")
        self.diagnostics.publish(level, message, {"bag": str(self.path), **{
            f"messages {topic}": count for topic, count in counts.items()},
            **{f"lost {topic}": count for topic, count in lost.items()},
            **{f"behind {topic} (s)": f"{lag * 1e-9:.2f}" for topic, lag in lags.items()}})

    def drain(self, executor) -> None:
        """After the stop signal: write what the middleware holds but the executor has not taken yet
        (the spin used to end at once and lose it), until DRAIN_QUIET_S pass without a message
        published before the signal, or drain_s is over. Later messages taken meanwhile are written
        too (another host's clock may put an earlier one after the signal); no topic is added."""
        self.discover_timer.cancel()
        self.stop_ns = time.time_ns()  # the clock of the DDS source timestamps
        start = last = time.monotonic()
        before, drained = sum(self.bag.counts.values()), 0
        while self.drain_s > 0 and time.monotonic() - last < DRAIN_QUIET_S:
            if time.monotonic() - start >= self.drain_s:
                self.get_logger().warning(f"drain_s ({self.drain_s} s) over with messages from before the stop "
                                          "still arriving")
                break
            executor.spin_once(timeout_sec=0.02)
            if self.drained != drained:
                drained, last = self.drained, time.monotonic()
        self.get_logger().info(f"stop signal: {sum(self.bag.counts.values()) - before} messages written after it "
                               f"({self.drained} published before it), in {time.monotonic() - start:.2f} s")

    def close(self) -> None:
        self.diagnostics.close()
        self.bag.close()
        self.get_logger().info(f"closed {self.path}: " + ", ".join(f"{t} {n}" for t, n in self.bag.counts.items()))


def main() -> None:
    run(Recorder, lambda node, stopped: spin_until_stopped(node, stopped, node.drain, node.pause_s))


if __name__ == "__main__":
    main()
