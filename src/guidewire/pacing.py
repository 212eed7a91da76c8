"""Fixed-rate sampling on threads of its own, away from a ROS executor.

A 400 Hz driver leaves 2.5 ms per sample. An rclpy timer callback costs a large
part of that in executor overhead and jitter, and a slow read delays the next
sample. The pacer keeps its own sample grid instead: t_k = start + k * period,
wall-clock nanoseconds, and hands each reading to `emit` at (not before) its
sample time.

Two ways to read:
- `read(t)`: hardware. The sample is read when its time has come.
- `read_ahead(times)`: a source that is a pure function of time (the simulated
  bench). A producer thread computes blocks of upcoming samples ahead, one
  vectorised call per block, and the emitting thread only waits and emits.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, Callable, Sequence

# Python hands the GIL between threads every 5 ms by default; a thread woken for
# its sample time would wait up to that long behind the producer.
SWITCH_INTERVAL_S = 2e-4


class SamplePacer:
    def __init__(self, rate_hz: float, emit: Callable[[int, Any], None], on_error: Callable[[Exception], None],
                 read: Callable[[float], Any] | None = None,
                 read_ahead: Callable[[Sequence[float]], list] | None = None,
                 block: int = 8, max_lag_s: float = 0.1):
        if (read is None) == (read_ahead is None):
            raise ValueError("give exactly one of read and read_ahead")
        if rate_hz <= 0:
            raise ValueError(f"rate must be positive, got {rate_hz} Hz")
        self.period_ns = int(round(1e9 / rate_hz))
        self.emit, self.on_error, self.read, self.read_ahead = emit, on_error, read, read_ahead
        self.block = max(int(block), 1)
        self.max_lag_ns = int(max_lag_s * 1e9)
        self.dropped = 0  # grid slots skipped because reading fell behind by more than max_lag_s
        self._ready: queue.Queue = queue.Queue(maxsize=2 * self.block)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        start_ns = time.time_ns() + self.period_ns
        if self.read_ahead is not None:
            workers = [(self._produce, "sample-ahead"), (self._emit_ready, "sample-emit")]
        else:
            workers = [(self._read_and_emit, "sample-read")]
        for target, name in workers:
            thread = threading.Thread(target=target, args=(start_ns,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()

    def _catch_up(self, slot_ns: int) -> int:
        """The next slot to sample: this one, or, when more than max_lag_s behind the
        clock, the next one ahead of it (the slots in between count as dropped)."""
        now = time.time_ns()
        if now - slot_ns <= self.max_lag_ns:
            return slot_ns
        skipped = (now - slot_ns) // self.period_ns + 1
        self.dropped += int(skipped)
        return slot_ns + int(skipped) * self.period_ns

    def _wait_until(self, when_ns: int) -> bool:
        """Sleep until the wall clock reaches when_ns; False if stopped meanwhile."""
        while not self._stop.is_set():
            remaining = when_ns - time.time_ns()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining * 1e-9, 0.1))
        return False

    def _read_and_emit(self, slot_ns: int) -> None:
        while self._wait_until(slot_ns):
            self._reported(lambda: self.emit(slot_ns, self.read(slot_ns * 1e-9)))
            slot_ns = self._catch_up(slot_ns + self.period_ns)

    def _reported(self, work: Callable[[], Any]) -> Any:
        """Run one read or emit; a fault (bus, middleware) must not end the sampling: report it, go on."""
        try:
            return work()
        except Exception as error:
            self.on_error(error)
            return None

    def _produce(self, slot_ns: int) -> None:
        while not self._stop.is_set():
            slots = [slot_ns + k * self.period_ns for k in range(self.block)]
            readings = self._reported(lambda: self.read_ahead([s * 1e-9 for s in slots])) or []
            for slot, reading in zip(slots, readings):
                while not self._stop.is_set():
                    try:
                        self._ready.put((slot, reading), timeout=0.1)
                        break
                    except queue.Full:
                        continue
            slot_ns = self._catch_up(slots[-1] + self.period_ns)

    def _emit_ready(self, _start_ns: int) -> None:
        while not self._stop.is_set():
            try:
                slot_ns, reading = self._ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if not self._wait_until(slot_ns):
                return
            self._reported(lambda: self.emit(slot_ns, reading))


def pacing_status(target_hz: float, achieved_hz: float, dropped: int) -> tuple[int, str]:
    """0 (ok), 1 (warning) or 2 (error), and why, for a period in which a sampler published at
    achieved_hz and skipped `dropped` grid slots: any drop or more than 10% below the target rate is
    a warning, below half the target (or more drops than 10% of the target's samples) an error."""
    summary = f"{achieved_hz:.0f} of {target_hz:g} Hz, {dropped} frames dropped"
    if achieved_hz < 0.5 * target_hz or dropped > 0.1 * target_hz:
        return 2, f"sampling cannot keep up: {summary}"
    if dropped or achieved_hz < 0.9 * target_hz:
        return 1, f"sampling falls behind: {summary}"
    return 0, "ok"
