"""Random, well-typed but hostile ROS messages of any type, for fuzzing nodes (issue 23): NaN,
infinities and extremes in numbers; empty, long and mismatched sequences; odd strings and frame ids.
Every value is one rclpy accepts (it checks types and ranges when a field is set), so the message
travels and the node, not the publisher, meets it."""
from __future__ import annotations

import numpy as np

FLOATS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 1e300, -1e300, 3.0e38, 1.0, -1.0, 0.02, 1e6)
STRINGS = ("", "bench", "ct", "mag_array", "insertion", "roll", "mono8", "32FC1", "nowhere", " ", "\t",
           "x" * 300, "é∂", "../../etc")
INTEGER_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1),
                  "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1),
                  "uint64": (0, 2**64 - 1), "byte": (0, 255), "char": (0, 255), "octet": (0, 255)}
FLOAT_TYPES = ("float", "double", "float32", "float64")


def _integer(rng, kind: str) -> int:
    low, high = INTEGER_RANGES[kind]
    return int(rng.choice([low, high, 0, 1, 2, 3, 16, 100])) if rng.random() < 0.7 else \
        int(rng.integers(max(low, -1000), min(high, 100_000) + 1))


def _scalar(rng, kind: str, depth: int):
    if kind in FLOAT_TYPES:
        return float(rng.choice(FLOATS)) if rng.random() < 0.6 else float(rng.normal(0, 10))
    if kind in INTEGER_RANGES:
        value = _integer(rng, kind)
        return bytes([value % 256]) if kind in ("byte", "octet") else value
    if kind == "boolean":
        return bool(rng.integers(0, 2))
    if kind.startswith("string") or kind.startswith("wstring"):
        return str(rng.choice(STRINGS))
    return hostile_message(rng, _message_class(kind), depth + 1)


def _message_class(kind: str):
    package, name = kind.split("/")[0], kind.split("/")[-1]
    module = __import__(f"{package}.msg", fromlist=[name])
    return getattr(module, name)


def _field_value(rng, kind: str, depth: int):
    if kind.startswith("sequence<"):
        inner = kind[len("sequence<"):-1].split(",")[0].strip()
        length = int(rng.choice([0, 1, 2, 3, 15, 16, 17, 64])) if depth < 2 else int(rng.integers(0, 3))
        if inner in ("uint8", "byte", "octet", "char"):
            return bytes(rng.integers(0, 256, length, dtype=np.uint8)) if inner != "char" else \
                [int(v) for v in rng.integers(0, 256, length)]
        return [_scalar(rng, inner, depth) for _ in range(length)]
    if kind.endswith("]"):  # fixed-size array: rclpy demands the length
        inner, size = kind[:-1].split("[")
        return [_scalar(rng, inner, depth) for _ in range(int(size))]
    return _scalar(rng, kind, depth)


def hostile_message(rng: np.random.Generator, message_class, depth: int = 0):
    """One message of `message_class` with every field drawn hostile (a value rclpy refuses is left
    at its default)."""
    message = message_class()
    for field, kind in message_class.get_fields_and_field_types().items():
        try:
            setattr(message, field, _field_value(rng, kind, depth))
        except (AssertionError, TypeError, ValueError, OverflowError):
            pass  # outside what the type can carry at all: such a message cannot be sent
    return message


def corrupted(rng: np.random.Generator, good, changes: int = 2):
    """A copy of a good message with one to `changes` fields, at any depth, drawn hostile: it passes
    the checks a wholly random one fails first and reaches the code behind them."""
    from rclpy.serialization import deserialize_message, serialize_message

    message = deserialize_message(serialize_message(good), type(good))
    for _ in range(int(rng.integers(1, changes + 1))):
        target, depth = message, 0
        while True:
            fields = type(target).get_fields_and_field_types()
            field = str(rng.choice(list(fields)))
            value = getattr(target, field)
            if hasattr(type(value), "get_fields_and_field_types") and rng.random() < 0.7:
                target, depth = value, depth + 1
                continue
            try:
                setattr(target, field, _field_value(rng, fields[field], depth))
            except (AssertionError, TypeError, ValueError, OverflowError):
                pass
            break
    return message
