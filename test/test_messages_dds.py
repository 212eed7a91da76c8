"""Every custom message crosses Fast DDS between two real nodes with every field intact."""
import array
import importlib
import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_support import START_S, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)

TYPES = ["MagnetometerArray", "GuidewireSegmentation", "GuidewireShape", "RegistrationResult"]
PRIMITIVES = {"float": "f", "double": "d", "int8": "i", "uint8": "u", "int16": "i", "uint16": "u", "int32": "i",
              "uint32": "u", "int64": "i", "uint64": "u"}


def message_class(type_name: str):
    package, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def random_value(type_name: str, rng: np.random.Generator):
    """A random value for a rosidl field type, covering arrays and nested messages."""
    if type_name.startswith("sequence<"):
        inner = type_name[len("sequence<"):-1].split(",")[0]
        return [random_value(inner, rng) for _ in range(int(rng.integers(1, 5)))]
    if "[" in type_name:  # fixed-size array, e.g. double[9]
        inner, size = type_name[:-1].split("[")
        return [random_value(inner, rng) for _ in range(int(size))]
    if type_name in ("float", "double"):
        return float(np.float32(rng.normal())) if type_name == "float" else float(rng.normal())
    if type_name == "boolean":
        return bool(rng.integers(2))
    if type_name == "string":
        return "frame_" + "".join(rng.choice(list("abcxyz_"), 6))
    if type_name in ("uint8", "octet", "byte"):
        return int(rng.integers(0, 256))
    if type_name in PRIMITIVES:
        bits = int("".join(c for c in type_name if c.isdigit()))
        high = 2 ** (bits - 1) if PRIMITIVES[type_name] == "i" else 2 ** bits
        return int(rng.integers(-high if PRIMITIVES[type_name] == "i" else 0, high - 1))
    return random_message(message_class(type_name), rng)


def random_message(kind, rng):
    message = kind()
    for field, type_name in kind.get_fields_and_field_types().items():
        value = random_value(type_name, rng)
        if type_name == "sequence<uint8>" or type_name.startswith("uint8["):
            value = bytes(value) if field != "status" else value
        setattr(message, field, value)
    return message


def assert_same(sent, received, path):
    if hasattr(sent, "get_fields_and_field_types"):
        for field in sent.get_fields_and_field_types():
            assert_same(getattr(sent, field), getattr(received, field), f"{path}.{field}")
    elif isinstance(sent, (list, tuple, array.array, np.ndarray, bytes)):
        assert len(sent) == len(received), path
        for i, (a, b) in enumerate(zip(sent, received)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(sent, float):
        assert math.isclose(sent, received, rel_tol=0, abs_tol=0) or (math.isnan(sent) and math.isnan(received)), path
    else:
        assert sent == received, path


def test_every_custom_message_round_trips_between_processes(ros):
    domain, node, executor, logs = ros
    rng = np.random.default_rng(2024)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    sent, received, publishers = {}, {}, {}
    for name in TYPES:
        kind = message_class(f"guidewire_perception/{name}")
        sent[name] = random_message(kind, rng)
        publishers[name] = node.create_publisher(kind, f"roundtrip/{name}/out", qos)
        node.create_subscription(kind, f"roundtrip/{name}/back", lambda m, n=name: received.setdefault(n, m), qos)
    with running(["test/echo_node.py"], domain, logs / "echo.log") as echo:
        assert spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in publishers.values()),
                          START_S), \
            (logs / "echo.log").read_text()
        for name in TYPES:
            publishers[name].publish(sent[name])
        assert spin_until(executor, lambda: len(received) == len(TYPES), 20), f"got only {sorted(received)}"
        assert echo.poll() is None
    for name in TYPES:
        assert received[name] == sent[name]
        assert_same(sent[name], received[name], name)
