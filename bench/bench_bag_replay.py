"""How long a replay takes to order a bag by publication time: guidewire.bag.timed_messages (two passes in log
order) against the per-topic merge it replaced (one mcap reader per topic, heapq.merge: every chunk decompressed
once per topic), on the same bag in the same run; both orders must agree. The bag is made here: TOPICS topics
of a pipeline's mix (one 2048x1536 camera at 2 Hz, a 512x512 X-ray at 5 Hz, the array at 100 Hz and small
messages), with a late backlog on one topic, as issue 23's recorder wrote under load.

    scripts/env.sh python bench/bench_bag_replay.py [--seconds 20] [--topics 34]
"""
from __future__ import annotations

import argparse
import heapq
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from guidewire.bag import BagWriter, bag_topics, timed_messages

COMMAND = "scripts/env.sh python bench/bench_bag_replay.py"


def make_bag(path: Path, seconds: float, topics: int) -> int:
    """A bag of `seconds` with `topics` topics; the array's first second is logged late, in a burst at 1 s."""
    streams = [("/camera/top/image_raw", 2.0, 2048 * 1536), ("/xray/image_raw", 5.0, 512 * 512),
               ("/mag_array/frame", 100.0, 16 * 3 * 8 + 64)]
    streams += [(f"/status_{k:02d}", 10.0, 200) for k in range(topics - len(streams))]
    writer = BagWriter(path)
    records = []
    for topic, rate, size in streams:
        writer.add_topic(topic, "std_msgs/msg/String")
        payload = b"\x00\x01\x00\x00" + (size - 4).to_bytes(4, "little") + bytes(size - 8)
        for k in range(int(seconds * rate)):
            sent = int(k / rate * 1e9)
            received = sent + 1_000_000
            if topic == "/mag_array/frame" and sent < 1e9:
                received = 1_000_000_000 + k * 10_000
            records.append((received, topic, payload, sent))
    for received, topic, payload, sent in sorted(records, key=lambda r: r[0]):
        writer.write(topic, received, payload, sent)
    writer.close()
    return len(records)


def per_topic_merge(path: Path):
    """The replaced order: one reader per topic, merged by publication time."""
    from mcap.reader import make_reader

    files = sorted(path.glob("*.mcap"))

    def published(topic):
        for file in files:
            with open(file, "rb") as stream:
                for _, _, message in make_reader(stream).iter_messages(topics=[topic]):
                    yield message.publish_time, topic, message.data

    for publish_time, topic, data in heapq.merge(*map(published, sorted(bag_topics(path))), key=lambda m: m[0]):
        yield topic, publish_time, data


def measure(order, path: Path):
    tracemalloc.start()
    start = time.perf_counter()
    keys = [(topic, stamp) for topic, stamp, _ in order(path)]
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return keys, seconds, peak


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--topics", type=int, default=34)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bag"
        count = make_bag(path, args.seconds, args.topics)
        size_mb = sum(f.stat().st_size for f in path.glob("*.mcap")) / 1e6
        baseline, base_s, base_peak = measure(per_topic_merge, path)
        ordered, new_s, new_peak = measure(timed_messages, path)
    # Messages published at the same instant may come in either topic order.
    if [stamp for _, stamp in ordered] != [stamp for _, stamp in baseline] or sorted(ordered) != sorted(baseline):
        sys.exit("the two orders disagree")
    print(f"Ordering a {args.topics}-topic bag of {args.seconds:g} s ({count} messages, {size_mb:.0f} MB mcap) by "
          "publication time; peak: Python allocations while reading (tracemalloc)\n")
    print("| method | s | ratio to per-topic merge | peak MB |")
    print("|---|---|---|---|")
    print(f"| per-topic merge (one reader per topic; replaced) | {base_s:.2f} | 1.00 | {base_peak / 1e6:.1f} |")
    print(f"| timed_messages (two passes in log order) | {new_s:.2f} | {new_s / base_s:.2f} | {new_peak / 1e6:.1f} |")
    print(f"\ncommand: {COMMAND} --seconds {args.seconds:g} --topics {args.topics}")


if __name__ == "__main__":
    main()
