"""Replay node: publishes a rosbag2 bag (mcap or sqlite3) with its original timing.

The recorded CDR bytes are published as they are, so header stamps and every
other field are untouched; `rate` scales the spacing, `start_offset` skips the
bag's first seconds, `loop` repeats it, `topics` filters it. The spacing, and the order across
topics, is the messages' publication times' where the bag has them (guidewire.bag.timed_messages),
counted from the first message out.
It waits for its subscribers first, and at the end reports per topic whether every
reliable reader acknowledged every message; the exit status is 1 if one did not.
"""
from __future__ import annotations

import threading
import time

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from guidewire.bag import TIME_BASES, bag_topics, latched_topics, replay_schedule
from guidewire_ros.common import OK, WARN, Diagnostics, declare, message_class, publisher_qos, run, \
    runtime_parameters, spin_until_stopped


class Replay(Node):
    def __init__(self):
        super().__init__("replay")
        self.bag = declare(self, "bag", "", "Bag directory to play")
        if not self.bag:
            raise ValueError("parameter 'bag' is empty: set it to the directory of the bag to play")
        self.rate = declare(self, "rate", 1.0, "Playback speed factor (2.0 = twice as fast)", 0.01, 100.0)
        self.loop = declare(self, "loop", False, "Start again at the end")
        self.start_offset = declare(self, "start_offset", 0.0, "Seconds of the bag to skip", 0.0, 1e9)
        self.time_base = declare(self, "time_base", "publication",
                                 f"Spacing by {' or '.join(TIME_BASES)} times (publication: as the messages were "
                                 "published; bags without them play by reception)")
        if self.time_base not in TIME_BASES:
            raise ValueError(f"time_base '{self.time_base}' is not one of {', '.join(TIME_BASES)}")
        wanted = [t for t in declare(self, "topics", [""], "Topics to play; [''] plays all") if t]
        self.wait_for_subscribers = declare(self, "wait_for_subscribers", 1,
                                            "Start once every topic has this many subscribers (at most "
                                            "wait_for_subscribers_s); 0 = start at once", 0, 1000)
        self.wait_for_subscribers_s = declare(self, "wait_for_subscribers_s", 10.0,
                                              "Longest wait for the subscribers, s; then play anyway, with a "
                                              "warning", 0.0, 3600.0)
        self.wait_for_all_acked_s = declare(self, "wait_for_all_acked_s", 10.0,
                                            "At the end, wait up to this long until reliable readers "
                                            "acknowledged every message (as ros2 bag play --wait-for-all-acked)",
                                            0.0, 3600.0)
        # A bag plays faster than it was recorded: a deep history lets a reliable reader catch up.
        qos = publisher_qos(self, default_depth=1000)
        available = bag_topics(self.bag)
        missing = [t for t in wanted if t not in available]
        if missing:
            raise ValueError(f"{self.bag} has no topic {', '.join(missing)} (it has {', '.join(sorted(available))})")
        self.topics = wanted or sorted(available)
        # Durability as recorded, as ros2 bag play offers the recorded QoS: a topic latched then (/tf_static,
        # the registration's result) is latched now (a transient-local reader does not match a volatile
        # writer), the others volatile (not the middleware's default, which is transient-local in Fast DDS).
        latched = latched_topics(self.bag) if qos.reliability != ReliabilityPolicy.BEST_EFFORT else set()
        durability = {True: DurabilityPolicy.TRANSIENT_LOCAL, False: DurabilityPolicy.VOLATILE}
        self.publishers_by_topic = {}
        for topic in self.topics:
            self.publishers_by_topic[topic] = self.create_publisher(
                message_class(available[topic]), topic,
                QoSProfile(depth=qos.depth, reliability=qos.reliability, durability=durability[topic in latched]))
        self.published = dict.fromkeys(self.topics, 0)
        self.exit_code = 0
        self.state = "waiting for subscribers"
        self.stop = threading.Event()
        self.diagnostics = Diagnostics(self, f"replay/{self.bag}")
        self.diagnostics.start(lambda: self.diagnostics.publish(
            WARN if self.exit_code else OK, self.state,
            {f"published {topic}": count for topic, count in self.published.items()}))
        runtime_parameters(self, {})
        self.get_logger().info(f"playing {self.bag}: {', '.join(self.topics)} at x{self.rate:g} "
                               f"by {self.time_base} time")

    def wait_for_readers(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.wait_for_subscribers_s
        while any(p.get_subscription_count() < self.wait_for_subscribers for p in self.publishers_by_topic.values()):
            if stop.is_set():
                return
            if time.monotonic() > deadline:
                few = [t for t, p in self.publishers_by_topic.items()
                       if p.get_subscription_count() < self.wait_for_subscribers]
                self.get_logger().warning(f"playing although {', '.join(few)} had fewer than "
                                          f"{self.wait_for_subscribers} subscribers after "
                                          f"{self.wait_for_subscribers_s:g} s")
                return
            time.sleep(0.05)

    def play(self, stop: threading.Event) -> None:
        self.wait_for_readers(stop)
        self.state = "playing"
        while not stop.is_set():
            start = None
            for offset, topic, data in replay_schedule(self.bag, self.topics, self.rate, self.start_offset,
                                                       self.time_base):
                if start is not None:
                    delay = start + offset - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                self.publishers_by_topic[topic].publish(bytes(data))
                self.published[topic] += 1
                if start is None:
                    # The spacing counts from the first message out. A clock started before the bag was
                    # opened and its first chunk read sent the messages due meanwhile at once: the replay
                    # ran that much short of the bag's span.
                    start = time.monotonic() - offset
            if not self.loop:
                self.wait_until_delivered()
                return

    def wait_until_delivered(self) -> None:
        """The middleware sends large messages from its own thread and repairs lost fragments on
        request; a publisher destroyed at once would drop that tail. Then one line per topic: how many
        messages went to how many readers, and whether the reliable ones acknowledged all of them."""
        deadline = time.monotonic() + self.wait_for_all_acked_s
        for topic, publisher in self.publishers_by_topic.items():
            acknowledged = publisher.wait_for_all_acked(Duration(seconds=max(deadline - time.monotonic(), 0.0)))
            report = f"{topic}: {self.published[topic]} messages to {publisher.get_subscription_count()} readers"
            if acknowledged:
                self.get_logger().info(f"{report}, every reliable reader acknowledged all of them")
            else:
                self.exit_code = 1
                self.get_logger().error(f"{report}, NOT acknowledged by every reliable reader within "
                                        f"{self.wait_for_all_acked_s:g} s: some may have lost messages")
        self.state = "finished" if not self.exit_code else "finished, not every message acknowledged"

    def spin_until_played(self, stopped: threading.Event) -> None:
        """Play on a thread of its own while the executor serves the node; return at the end."""
        player = threading.Thread(target=self.play, args=(self.stop,), daemon=True)
        player.start()
        watcher = threading.Thread(target=lambda: (player.join(), stopped.set()), daemon=True)
        watcher.start()
        spin_until_stopped(self, stopped)
        self.stop.set()
        if not player.is_alive():
            self.get_logger().info(f"replay {self.state}: {sum(self.published.values())} messages")

    def close(self) -> None:
        self.stop.set()
        self.diagnostics.close()


def main() -> None:
    run(Replay, spin=Replay.spin_until_played)


if __name__ == "__main__":
    main()
