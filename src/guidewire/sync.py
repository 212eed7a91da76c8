"""Matching messages of several streams by stamp (message_filters cannot be installed here).

The reconstruction needs, for each segmented frame, the array frame and the
robot state nearest to that frame's stamp. Streams are buffered for
`history_s`; a pivot stamp is matched to each stream's nearest message when
it lies within `slop_s`, as message_filters' ApproximateTime policy bounds
the spread of a matched set. A pivot that arrives before its partners (the
array frame still on its way) can be retried: `match` returns None for that
stream rather than a worse partner, and `pending` says whether a later message
could still fall inside the window.
"""
from __future__ import annotations

import bisect
import threading
from collections import deque
from typing import Any


def stamp_ns(stamp) -> int:
    """Nanoseconds of a builtin_interfaces/Time (rclpy or rosbags message)."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class StampBuffer:
    """Messages of one stream in stamp order, the last `history_s` seconds of them."""

    def __init__(self, history_s: float = 2.0):
        self.history_ns = int(history_s * 1e9)
        self.stamps: deque[int] = deque()
        self.items: deque[Any] = deque()

    def add(self, stamp_ns: int, item) -> None:
        if self.stamps and stamp_ns < self.stamps[-1]:  # out of order: insert in place (rare)
            index = bisect.bisect(list(self.stamps), stamp_ns)
            self.stamps.insert(index, stamp_ns)
            self.items.insert(index, item)
        else:
            self.stamps.append(stamp_ns)
            self.items.append(item)
        while self.stamps and self.stamps[-1] - self.stamps[0] > self.history_ns:
            self.stamps.popleft()
            self.items.popleft()

    def nearest(self, stamp_ns: int, slop_ns: int):
        """(stamp, item) of the message nearest `stamp_ns` within `slop_ns`, else None."""
        if not self.stamps:
            return None
        stamps = list(self.stamps)
        index = bisect.bisect_left(stamps, stamp_ns)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(stamps)]
        best = min(candidates, key=lambda i: abs(stamps[i] - stamp_ns))
        if abs(stamps[best] - stamp_ns) > slop_ns:
            return None
        return stamps[best], self.items[best]

    def newest(self) -> int | None:
        return self.stamps[-1] if self.stamps else None


class NearestStampMatcher:
    """Partners for a pivot stamp from named streams, each within the slop. Thread-safe: subscriptions
    add while a worker thread matches."""

    def __init__(self, streams, slop_s: float, history_s: float = 2.0):
        if not slop_s > 0:
            raise ValueError(f"slop must be > 0 s, got {slop_s}")
        self.slop_ns = int(slop_s * 1e9)
        self.buffers = {name: StampBuffer(history_s) for name in streams}
        self._lock = threading.Lock()

    def add(self, stream: str, stamp_ns: int, item) -> None:
        with self._lock:
            self.buffers[stream].add(stamp_ns, item)

    def match(self, stamp_ns: int) -> dict:
        """{stream: item or None} for the pivot stamp."""
        found = {}
        with self._lock:
            for name, buffer in self.buffers.items():
                hit = buffer.nearest(stamp_ns, self.slop_ns)
                found[name] = None if hit is None else hit[1]
        return found

    def newest_complete(self, pivot: str) -> tuple[int, dict] | None:
        """(stamp, {stream: item}) of the newest `pivot` message with a partner in every other stream,
        else None."""
        with self._lock:
            buffer = self.buffers[pivot]
            for stamp, item in zip(reversed(buffer.stamps), reversed(buffer.items)):
                partners = {name: other.nearest(stamp, self.slop_ns) for name, other in self.buffers.items()
                            if name != pivot}
                if all(hit is not None for hit in partners.values()):
                    return stamp, {pivot: item, **{name: hit[1] for name, hit in partners.items()}}
        return None

    def empty(self) -> list[str]:
        """The streams that hold no message."""
        with self._lock:
            return [name for name, buffer in self.buffers.items() if not buffer.stamps]

    def pending(self, stream: str, stamp_ns: int) -> bool:
        """True while a message of `stream` inside the window may still arrive (its newest is older)."""
        with self._lock:
            newest = self.buffers[stream].newest()
        return newest is None or newest < stamp_ns + self.slop_ns
