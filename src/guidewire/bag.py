"""rosbag2 bags written and read with the rosbags library (rosbag2 itself is not
installable here): the suite's custom types registered from msg/, mcap storage
by default, sqlite3 on request."""
from __future__ import annotations

from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
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


class BagWriter:
    """Appends serialized (CDR) messages to a new bag, one connection per topic."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"unknown storage '{storage}' (choose mcap or sqlite3)")
        self.typestore = suite_typestore()
        self.writer = Writer(Path(path), version=9, storage_plugin=plugins[storage])
        self.writer.open()
        self.connections = {}
        self.counts = {}

    def add_topic(self, topic: str, msgtype: str, offered_qos_profiles=()) -> None:
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.typestore,
                                                                 offered_qos_profiles=offered_qos_profiles)
            self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self.writer.write(self.connections[topic], timestamp_ns, data)
        self.counts[topic] += 1

    def close(self) -> None:
        self.writer.close()


def read_bag(path: str | Path, topics: list[str] | None = None):
    """Yield (topic, msgtype, timestamp_ns, raw CDR bytes) in log-time order."""
    with Reader(Path(path)) as reader:
        connections = [c for c in reader.connections if not topics or c.topic in topics]
        for connection, timestamp, data in reader.messages(connections=connections):
            yield connection.topic, connection.msgtype, timestamp, data


def bag_topics(path: str | Path) -> dict[str, str]:
    """topic -> message type of a bag."""
    with Reader(Path(path)) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def replay_schedule(path: str | Path, topics: list[str] | None = None, rate: float = 1.0,
                    start_offset: float = 0.0):
    """Yield (seconds after the replay's start, topic, raw CDR) with the bag's original spacing,
    divided by `rate`, skipping its first `start_offset` seconds."""
    if rate <= 0:
        raise ValueError(f"replay rate must be positive, got {rate}")
    first = None
    for topic, _, timestamp, data in read_bag(path, topics):
        if first is None:
            first = timestamp + int(start_offset * 1e9)
        if timestamp < first:
            continue
        yield (timestamp - first) * 1e-9 / rate, topic, data
