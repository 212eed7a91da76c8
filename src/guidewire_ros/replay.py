"""Replay node: publishes a rosbag2 bag (mcap or sqlite3) with its original timing.

The recorded CDR bytes are published as they are, so header stamps and every
other field are untouched; `rate` scales the spacing, `start_offset` skips the
bag's first seconds, `loop` repeats it, `topics` filters it.
"""
from __future__ import annotations

import threading
import time

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node

from guidewire.bag import bag_topics, replay_schedule
from guidewire_ros.common import OK, Diagnostics, declare, message_class, publisher_qos, run


class Replay(Node):
    def __init__(self):
        super().__init__("replay")
        self.bag = declare(self, "bag", "", "Bag directory to play")
        self.rate = declare(self, "rate", 1.0, "Playback speed factor (2.0 = twice as fast)")
        self.loop = declare(self, "loop", False, "Start again at the end")
        self.start_offset = declare(self, "start_offset", 0.0, "Seconds of the bag to skip")
        wanted = [t for t in declare(self, "topics", [""], "Topics to play; [''] plays all") if t]
        self.wait_for_subscribers = declare(self, "wait_for_subscribers", 0,
                                            "Wait (up to 10 s) until every topic has this many subscribers")
        self.wait_for_all_acked_s = declare(self, "wait_for_all_acked_s", 10.0,
                                            "At the end, wait up to this long until reliable readers "
                                            "acknowledged every message (as ros2 bag play --wait-for-all-acked)")
        # A bag plays faster than it was recorded: a deep history lets a reliable reader catch up.
        qos = publisher_qos(self, default_depth=1000)
        available = bag_topics(self.bag)
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ValueError(f"{self.bag} has no topic {', '.join(missing)} (it has {', '.join(sorted(available))})")
        self.topics = wanted or sorted(available)
        self.publishers_by_topic = {}
        for topic in self.topics:
            self.publishers_by_topic[topic] = self.create_publisher(message_class(available[topic]), topic, qos)
        self.published = 0
        self.stop = threading.Event()
        self.diagnostics = Diagnostics(self, f"replay/{self.bag}")
        self.create_timer(1.0, lambda: self.diagnostics.publish(OK, "playing", {"published": self.published}))
        self.get_logger().info(f"playing {self.bag}: {', '.join(self.topics)} at x{self.rate:g}")

    def play(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + 10.0
        while self.wait_for_subscribers and time.monotonic() < deadline and not stop.is_set() and any(
                p.get_subscription_count() < self.wait_for_subscribers for p in self.publishers_by_topic.values()):
            time.sleep(0.05)
        while not stop.is_set():
            start = time.monotonic()
            for offset, topic, data in replay_schedule(self.bag, self.topics, self.rate, self.start_offset):
                delay = start + offset - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                self.publishers_by_topic[topic].publish(bytes(data))
                self.published += 1
            if not self.loop:
                self.wait_until_delivered()
                return

    def wait_until_delivered(self) -> None:
        """The middleware sends large messages from its own thread and repairs lost
        fragments on request; a publisher destroyed at once would drop that tail."""
        deadline = time.monotonic() + self.wait_for_all_acked_s
        unacknowledged = [topic for topic, publisher in self.publishers_by_topic.items()
                          if not publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.0)))]
        if unacknowledged:
            self.get_logger().warning(f"not every reader acknowledged the end of {', '.join(unacknowledged)} "
                                      f"within {self.wait_for_all_acked_s:g} s")

    def spin_until_played(self) -> None:
        """Play on a thread of its own while the executor serves the node; return at the end."""
        player = threading.Thread(target=self.play, args=(self.stop,), daemon=True)
        player.start()
        while rclpy.ok() and player.is_alive():
            rclpy.spin_once(self, timeout_sec=0.1)
        self.get_logger().info(f"replay finished: {self.published} messages")

    def close(self) -> None:
        self.stop.set()


def main() -> None:
    run(Replay, spin=Replay.spin_until_played)


if __name__ == "__main__":
    main()
