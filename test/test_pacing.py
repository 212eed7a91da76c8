import threading
import time

import pytest

from guidewire.pacing import SamplePacer, pacing_status


class Recorder:
    def __init__(self):
        self.emitted, self.errors, self.blocks = [], [], []
        self.lock = threading.Lock()

    def emit(self, stamp_ns, reading):
        with self.lock:
            self.emitted.append((stamp_ns, time.time_ns(), reading))

    def error(self, error):
        self.errors.append(str(error))


def run_for(pacer, seconds):
    pacer.start()
    time.sleep(seconds)
    pacer.stop()


def test_read_ahead_emits_every_grid_slot_at_or_after_its_time():
    record = Recorder()

    def read_ahead(times):
        record.blocks.append(len(times))
        return [round(t * 1e9) for t in times]  # the "reading" is its own sample time

    pacer = SamplePacer(400.0, record.emit, record.error, read_ahead=read_ahead, block=8)
    run_for(pacer, 0.4)
    stamps = [stamp for stamp, _, _ in record.emitted]
    assert len(stamps) >= 100
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {pacer.period_ns}
    assert all(emitted >= stamp for stamp, emitted, _ in record.emitted)
    # Each reading is for its own time (float seconds resolve about 0.2 us at today's epoch).
    assert all(abs(reading - stamp) < 1000 for stamp, _, reading in record.emitted)
    assert set(record.blocks) == {8}
    assert record.errors == [] and pacer.dropped == 0


def test_failing_hardware_reads_are_reported_and_sampling_goes_on():
    record = Recorder()
    calls = []

    def read(t):
        calls.append(t)
        if len(calls) % 3 == 0:
            raise OSError("sensor 5 did not acknowledge")
        return len(calls)

    run_for(SamplePacer(200.0, record.emit, record.error, read=read), 0.3)
    assert len(calls) >= 20
    assert len(record.errors) == len(calls) // 3 and "acknowledge" in record.errors[0]
    assert len(record.emitted) == len(calls) - len(calls) // 3
    assert all(emitted >= stamp for stamp, emitted, _ in record.emitted)


def test_a_source_slower_than_real_time_skips_slots_and_counts_them():
    record = Recorder()

    def slow_read_ahead(times):
        time.sleep(0.05 * len(times))  # 50 ms per 2.5 ms sample
        return list(times)

    pacer = SamplePacer(400.0, record.emit, record.error, read_ahead=slow_read_ahead, block=2, max_lag_s=0.02)
    run_for(pacer, 0.5)
    assert pacer.dropped > 50
    stamps = [stamp for stamp, _, _ in record.emitted]
    assert max(b - a for a, b in zip(stamps, stamps[1:])) > 10 * pacer.period_ns


def test_exactly_one_way_to_read():
    with pytest.raises(ValueError, match="exactly one"):
        SamplePacer(100.0, print, print)
    with pytest.raises(ValueError, match="positive"):
        SamplePacer(0.0, print, print, read=lambda t: t)


@pytest.mark.parametrize("achieved, dropped, level", [
    (400.0, 0, 0), (395.0, 0, 0),
    (400.0, 3, 1), (350.0, 0, 1),
    # Issue 23: 100000 Hz asked, 880 Hz published with 885077 frames dropped, and the driver said OK.
    (880.0, 885077, 2), (150.0, 0, 2)])
def test_pacing_status_tells_drops_and_shortfalls(achieved, dropped, level):
    target = 100000.0 if dropped == 885077 else 400.0
    assert pacing_status(target, achieved, dropped)[0] == level
