"""Bags keep each message's publication time beside its receive time; replay spaces by the former."""
import pytest

from guidewire.bag import BagError, BagWriter, check_bag, read_bag, recover_bag, replay_schedule, timed_messages

TOPIC = "/chatter"
STRING = b"\x00\x01\x00\x00\x02\x00\x00\x00a\x00\x00\x00"  # CDR of std_msgs/String "a"


def backlog_bag(path, storage="mcap", close=True):
    """Issue 23's probe: 2000 messages published over 3.6 s; the recorder, stalled, received the first
    1500 late, in one burst of 1.05 s, and the rest 0.6 s after they were published."""
    writer = BagWriter(path, storage)
    writer.add_topic(TOPIC, "std_msgs/msg/String")
    published = [int(k * 1.8e6) for k in range(2000)]  # 3.6 s
    for k, sent in enumerate(published):
        received = 2_200_000_000 + int(k * 0.7e6) if k < 1500 else sent + 600_000_000
        writer.write(TOPIC, received, STRING, sent)
    if close:
        writer.close()
    else:
        writer.checkpoint()
    return published


def test_replay_spaces_a_late_backlog_as_it_was_published(tmp_path):
    published = backlog_bag(tmp_path / "bag")
    assert [t for _, t, _ in timed_messages(tmp_path / "bag")] == published
    offsets = [offset for offset, _, _ in replay_schedule(tmp_path / "bag")]
    assert offsets[-1] == pytest.approx(3.6, abs=0.01) and offsets[1499] == pytest.approx(2.7, abs=0.01)
    # By reception, as before: the first 1500 messages within 1.05 s.
    squeezed = [offset for offset, _, _ in replay_schedule(tmp_path / "bag", time_base="reception")]
    assert squeezed[1499] == pytest.approx(1.05, abs=0.01)
    # The log time is still the receive time.
    assert [t for _, _, t, _ in read_bag(tmp_path / "bag")][0] == 2_200_000_000


def test_a_backlog_logged_after_a_newer_message_of_another_topic_replays_as_published(tmp_path):
    """The ROS record/replay test's flake: the recorder's first message was an image published 2 s after
    the array frames it then took as a backlog; a schedule from the first logged message in log order
    sent that backlog at once and the replay ran 2 s short of the bag's span."""
    writer = BagWriter(tmp_path / "bag")
    writer.add_topic("/image", "std_msgs/msg/String")
    writer.add_topic("/array", "std_msgs/msg/String")
    writer.write("/image", 2_010_000_000, STRING, 2_000_000_000)
    for k in range(100):  # published 0-1.98 s, all logged after the image
        writer.write("/array", 2_020_000_000 + k * 100_000, STRING, k * 20_000_000)
    writer.write("/array", 2_030_000_000, STRING, 2_020_000_000)
    writer.close()
    schedule = list(replay_schedule(tmp_path / "bag", rate=2.0))
    assert [offset for offset, _, _ in schedule] == pytest.approx([k * 0.01 for k in range(100)] + [1.0, 1.01])
    assert [topic for _, topic, _ in schedule] == ["/array"] * 100 + ["/image", "/array"]
    # Each topic's own order is its log order.
    assert [t for _, t, _ in timed_messages(tmp_path / "bag", ["/array"])] == [k * 20_000_000 for k in range(100)] \
        + [2_020_000_000]


def test_sqlite3_bags_without_publication_times_play_by_reception(tmp_path):
    backlog_bag(tmp_path / "bag", "sqlite3")
    offsets = [offset for offset, _, _ in replay_schedule(tmp_path / "bag")]
    assert offsets[1499] == pytest.approx(1.05, abs=0.01)


def test_recovery_keeps_publication_times(tmp_path):
    published = backlog_bag(tmp_path / "killed", close=False)
    assert [t for _, t, _ in timed_messages(recover_bag(tmp_path / "killed"))] == published


def test_unusable_bags_are_named(tmp_path):
    """Probes: replay with bag '' said "Expected metadata file '.'"; a bag killed mid-run gave an error
    that did not point to the recover command."""
    backlog_bag(tmp_path / "killed", close=False)
    with pytest.raises(BagError, match=f"{tmp_path / 'killed'} was never closed .*python -m guidewire.bag recover "
                                       f"{tmp_path / 'killed'}"):
        check_bag(tmp_path / "killed")
    with pytest.raises(BagError, match="no bag given"):
        list(read_bag(""))
    with pytest.raises(BagError, match="no bag directory"):
        check_bag(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="no metadata.yaml"):
        check_bag(tmp_path / "empty")
    with pytest.raises(ValueError, match="replay rate must be positive, got 0"):
        next(replay_schedule(tmp_path / "killed", rate=0.0))
