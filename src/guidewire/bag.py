"""rosbag2 bags written and read with the rosbags library (rosbag2 itself is not
installable here): the suite's custom types registered from msg/, mcap storage
by default, sqlite3 on request."""
from __future__ import annotations

import heapq
import io
import struct
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter, write_record, write_uint16, write_uint32, write_uint64
from rosbags.typesys import Stores, get_typestore, get_types_from_msg

PACKAGE = "guidewire_perception"
MSG_DIR = Path(__file__).resolve().parents[2] / "msg"


def message_directory() -> Path:
    """msg/ of the source tree, or of the installed package share."""
    if MSG_DIR.is_dir():
        return MSG_DIR
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "msg"


def suite_typestore():
    """The Kilted type store plus this suite's messages, parsed from their .msg text."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for file in sorted(message_directory().glob("*.msg")):
        types.update(get_types_from_msg(file.read_text(), f"{PACKAGE}/msg/{file.stem}"))
    typestore.register(types)
    return typestore


class BagError(ValueError):
    """A bag that cannot be played or read, and why."""


def check_bag(path: str | Path) -> Path:
    """The bag directory, or a BagError saying what is wrong with it; a bag whose recorder never
    closed it (killed, or still recording) is named as such, with the command that recovers it."""
    if not str(path):
        raise BagError("no bag given (the path is empty)")
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"no bag directory {path}")
    if not (path / "metadata.yaml").is_file():
        if any(path.glob("*.mcap")) or any(path.glob("*.db3")):
            raise BagError(f"{path} was never closed (its recorder was killed, or is still recording): recover "
                           f"its messages with `python -m guidewire.bag recover {path}` and play "
                           f"{path.name}_recovered")
        raise BagError(f"{path} is not a rosbag2 bag: it has no metadata.yaml")
    return path


class _McapWriter(McapWriter):
    """rosbags writes one time as both MCAP times; rosbag2 stores the receive time as the message's
    log_time and the publisher's send time as its publish_time. This writes both: publish_time is
    the value of `publish_time` when write() is called (None: the log time)."""

    publish_time: int | None = None

    def write(self, connection, timestamp: int, data) -> None:  # McapWriter.write with the second time
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        self.chunk.message_start_time = min(timestamp, self.chunk.message_start_time)
        self.chunk.message_end_time = max(timestamp, self.chunk.message_end_time)
        self.chunk.msgs[connection.id].append((timestamp, self.chunk.bio.tell()))
        record = io.BytesIO()
        write_uint16(record, connection.id)
        write_uint32(record, 0)
        write_uint64(record, timestamp)
        write_uint64(record, timestamp if self.publish_time is None else self.publish_time)
        record.write(data)
        write_record(self.chunk.bio, 0x05, record)
        if self.chunk.bio.tell() > 2 ** 20:
            self.close_chunk()


class _Writer(Writer):
    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _McapWriter}


class BagWriter:
    """Appends serialized (CDR) messages to a new bag, one connection per topic. mcap bags keep each
    message's publication (source) time beside its receive time; sqlite3 bags only the receive time."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"unknown storage '{storage}' (choose mcap or sqlite3)")
        self.typestore = suite_typestore()
        self.writer = _Writer(Path(path), version=9, storage_plugin=plugins[storage])
        self.writer.open()
        self.connections = {}
        self.counts = {}

    def add_topic(self, topic: str, msgtype: str, offered_qos_profiles=()) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                                 offered_qos_profiles=offered_qos_profiles)
            self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes, publish_time_ns: int | None = None) -> None:
        """timestamp_ns: when the message was received (the log time); publish_time_ns: when it was
        published, if known (mcap only)."""
        storage = self.writer.storage
        if isinstance(storage, _McapWriter):
            storage.publish_time = publish_time_ns
        self.writer.write(self.connections[topic], timestamp_ns, data)
        self.counts[topic] += 1

    def checkpoint(self) -> None:
        """Put everything written so far into the file, so that a recorder killed
        without warning (SIGKILL, power cut of the process) leaves it recoverable
        with recover_bag(). rosbags writes metadata.yaml only on close, buffers up
        to 1 MiB per mcap chunk, and keeps one sqlite3 transaction open until close;
        this closes the pending chunk, or commits the transaction, early instead."""
        storage = self.writer.storage
        if hasattr(storage, "close_chunk") and storage.chunk.msgs:
            storage.close_chunk()
            storage.bio.flush()
        elif hasattr(storage, "conn"):
            storage.conn.commit()

    def close(self) -> None:
        self.writer.close()


def read_bag(path: str | Path, topics: list[str] | None = None):
    """Yield (topic, msgtype, timestamp_ns, raw CDR bytes) in log-time order."""
    with Reader(check_bag(path)) as reader:
        connections = [c for c in reader.connections if not topics or c.topic in topics]
        for connection, timestamp, data in reader.messages(connections=connections):
            yield connection.topic, connection.msgtype, timestamp, data


def bag_topics(path: str | Path) -> dict[str, str]:
    """topic -> message type of a bag."""
    with Reader(check_bag(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def latched_topics(path: str | Path) -> set[str]:
    """The topics whose every recorded publisher offered transient-local durability (/tf_static, a
    registration's result): a replay must offer it too, or their transient-local readers never match."""
    from rosbags.interfaces import QosDurability

    latched = set()
    with Reader(check_bag(path)) as reader:
        for connection in reader.connections:
            profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
            if profiles and all(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles):
                latched.add(connection.topic)
    return latched


TIME_BASES = ("publication", "reception")


def timed_messages(path: str | Path, topics: list[str] | None = None, time_base: str = "publication"):
    """Yield (topic, timestamp_ns, raw CDR) timestamped by publication (the publisher's send time,
    where the bag has it: mcap bags of this recorder or of rosbag2; others fall back to their log
    time) or by reception (the log time), in the order of those times.

    By publication, each topic's messages come in their log order (a publisher's messages arrive in
    the order sent), merged across topics by publication time: a recorder that took one topic's
    backlog after a newer message of another topic logged them out of publication order."""
    if time_base not in TIME_BASES:
        raise ValueError(f"unknown time base '{time_base}' (choose {' or '.join(TIME_BASES)})")
    path = check_bag(path)
    files = sorted(path.glob("*.mcap"))
    if time_base == "reception" or not files:
        for topic, _, timestamp, data in read_bag(path, topics):
            yield topic, timestamp, data
        return
    yield from _merged_by_publication(files, topics or sorted(bag_topics(path)))


def _merged_by_publication(files: list[Path], topics: list[str]):
    """The per-topic merge in two passes over the bag in log order instead of one reader per topic, which
    decompressed every chunk once per topic (a 34-topic bag: 6.7 s instead of 0.6 s, bench/bench_bag_replay.py).
    The first pass keeps only each message's key, its topic's running maximum publication time (so a topic's
    own log order stands); the second holds a message back only until no later one in the log has a smaller
    key."""
    from mcap.reader import make_reader

    def logged(with_data: bool):
        for file in files:
            with open(file, "rb") as stream:
                for _, channel, message in make_reader(stream).iter_messages(topics=topics):
                    yield channel.topic, message.publish_time, message.data if with_data else None

    keys, latest = [], {}
    for topic, publish_time, _ in logged(False):
        latest[topic] = max(latest.get(topic, publish_time), publish_time)
        keys.append(latest[topic])
    # later_minimum[i]: the smallest key from message i on; a held message at or below it is next.
    later_minimum = np.minimum.accumulate(np.array(keys + [np.iinfo(np.int64).max], np.int64)[::-1])[::-1]
    held: list = []
    for index, (topic, publish_time, data) in enumerate(logged(True)):
        heapq.heappush(held, (keys[index], index, topic, publish_time, data))
        while held and held[0][0] <= later_minimum[index + 1]:
            _, _, topic, publish_time, data = heapq.heappop(held)
            yield topic, publish_time, data


def replay_schedule(path: str | Path, topics: list[str] | None = None, rate: float = 1.0,
                    start_offset: float = 0.0, time_base: str = "publication"):
    """Yield (seconds after the replay's start, topic, raw CDR) with the bag's original spacing,
    divided by `rate`, skipping its first `start_offset` seconds. By publication time (default), a
    backlog the recorder received late in a burst replays spread as it was published, also where it
    was logged after a newer message of another topic (timed_messages' order); within a topic,
    one published before the previous one replays at once."""
    if not rate > 0:
        raise ValueError(f"replay rate must be positive, got {rate}")
    first = None
    for topic, timestamp, data in timed_messages(path, topics, time_base):
        if first is None:
            first = timestamp + int(start_offset * 1e9)
        if start_offset > 0 and timestamp < first:
            continue
        yield max(timestamp - first, 0) * 1e-9 / rate, topic, data


class RecoveryError(RuntimeError):
    """A bag directory that holds nothing recoverable."""


def recover_bag(path: str | Path, output: str | Path | None = None) -> Path:
    """Rewrite the complete messages of an unfinished bag (no metadata.yaml: its
    recorder was killed) as a new, readable bag of the same storage; the original
    stays as it is, up to sqlite's own roll-back of the unfinished transaction.

    mcap: the stream reader reads chunk by chunk from the start and stops at the
    first incomplete record. sqlite3: every committed row. Either way everything
    up to the last checkpoint comes back.
    """
    path = Path(path)
    output = Path(output) if output else path.with_name(path.name + "_recovered")
    if any(path.glob("*.mcap")):
        writer = BagWriter(output, "mcap")
        reader = _recover_mcap
    elif any(path.glob("*.db3")):
        writer = BagWriter(output, "sqlite3")
        reader = _recover_sqlite3
    else:
        raise RecoveryError(f"no .mcap or .db3 file in {path} to recover")
    try:
        reader(path, writer)
    finally:
        writer.close()
    if not sum(writer.counts.values()):
        raise RecoveryError(f"{path}: no complete message to recover")
    return output


def _recover_sqlite3(path: Path, writer: BagWriter) -> None:
    import sqlite3

    for file in sorted(path.glob("*.db3")):
        connection = sqlite3.connect(file)  # opening rolls back the transaction the recorder left open
        try:
            rows = connection.execute("SELECT topics.name, topics.type, messages.timestamp, messages.data "
                                      "FROM messages JOIN topics ON messages.topic_id = topics.id "
                                      "ORDER BY messages.id")
            for topic, msgtype, timestamp, data in rows:
                writer.add_topic(topic, msgtype)
                writer.write(topic, timestamp, data)
        finally:
            connection.close()


def _recover_mcap(path: Path, writer: BagWriter) -> None:
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas, topics = {}, {}
    for file in sorted(path.glob("*.mcap")):
        with open(file, "rb") as stream:
            try:
                for record in StreamReader(stream).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        topics[record.id] = record.topic
                        writer.add_topic(record.topic, schemas[record.schema_id])
                    elif isinstance(record, Message):
                        writer.write(topics[record.channel_id], record.log_time, record.data, record.publish_time)
            except (McapError, EOFError, ValueError, struct.error):
                pass  # the truncated tail: the last complete record has been read


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Bag tools: recover a bag whose recorder was killed.")
    parser.add_argument("command", choices=["recover"])
    parser.add_argument("bag")
    parser.add_argument("--output", help="directory for the recovered bag (default: <bag>_recovered)")
    args = parser.parse_args(argv)
    print(recover_bag(args.bag, args.output))


if __name__ == "__main__":
    main()
