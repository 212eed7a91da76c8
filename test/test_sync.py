"""The stamp matcher the reconstruction node pairs frames with."""
import pytest

from guidewire.sync import NearestStampMatcher, StampBuffer

MS = 1_000_000


def test_nearest_within_slop_and_none_outside():
    matcher = NearestStampMatcher(["array", "robot"], slop_s=0.005)
    for k in range(100):  # 400 Hz array
        matcher.add("array", k * 2_500_000, f"a{k}")
    matcher.add("robot", 100 * MS, "r")
    found = matcher.match(101 * MS)
    assert found["array"] == "a40" and found["robot"] == "r"  # 100 ms is nearer than 102.5 ms
    found = matcher.match(108 * MS)
    assert found["array"] == "a43" and found["robot"] is None  # robot 8 ms away: outside the slop


def test_out_of_order_messages_are_placed_by_stamp():
    buffer = StampBuffer()
    for stamp in (10, 30, 20):
        buffer.add(stamp * MS, stamp)
    assert buffer.nearest(21 * MS, 2 * MS) == (20 * MS, 20)


def test_history_is_bounded_and_pending_tells_whether_to_wait():
    matcher = NearestStampMatcher(["array"], slop_s=0.01, history_s=1.0)
    for k in range(300):
        matcher.add("array", k * 10 * MS, k)
    assert len(matcher.buffers["array"].stamps) <= 101
    assert matcher.match(500 * MS)["array"] is None  # dropped from the history
    assert matcher.pending("array", 2995 * MS) and not matcher.pending("array", 2000 * MS)


def test_slop_must_be_positive():
    with pytest.raises(ValueError, match="slop must be > 0"):
        NearestStampMatcher(["a"], slop_s=0.0)


def test_newest_complete_pairs_the_newest_pivot_that_has_every_partner():
    matcher = NearestStampMatcher(["image", "info", "pose"], slop_s=0.05, history_s=60.0)
    assert matcher.newest_complete("image") is None and matcher.empty() == ["image", "info", "pose"]
    for stamp in (1.0, 3.0):  # a C-arm at 0.5 Hz: image, info and pose of one instant
        for stream in ("image", "info", "pose"):
            matcher.add(stream, int(stamp * 1e9), f"{stream}@{stamp}")
    matcher.add("image", int(5e9), "image@5.0")  # the newest image, its pose still on the way
    matcher.add("info", int(5e9), "info@5.0")
    matcher.add("pose", int(4.5e9), "pose@4.5")  # the C-arm moved: a pose of another instant is no partner
    stamp, found = matcher.newest_complete("image")
    assert stamp == int(3e9) and found == {"image": "image@3.0", "info": "info@3.0", "pose": "pose@3.0"}
    matcher.add("pose", int(5.02e9), "pose@5.02")  # within the slop
    stamp, found = matcher.newest_complete("image")
    assert stamp == int(5e9) and found["pose"] == "pose@5.02"
    assert matcher.empty() == []
