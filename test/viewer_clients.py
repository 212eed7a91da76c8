"""What the viewers' side decodes, for the bridge tests:
- a minimal Foxglove WebSocket client on the standard library (no client package is installed):
  the handshake, the server's advertise and unadvertise, a subscription, and its messages decoded with the
  protobuf schema the server sends (RFC 6455 framing; the SDK's protocol, subprotocol foxglove.sdk.v1);
- an OpenIGTLink POLYDATA decoder for pyigtl's client (pyigtl 0.3.4 sends POLYDATA but cannot decode it).
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

import numpy as np
import pyigtl
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SUBPROTOCOL = "foxglove.sdk.v1"  # foxglove-sdk 0.30.3 refuses foxglove.websocket.v1 (400 Bad Request)
MESSAGE_DATA = 0x01  # binary opcode of a subscribed message: u32 subscription, u64 log time, payload
RESUBSCRIBE_S = 3.0


class FoxgloveClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:  # the server may still be starting
            try:
                self.socket = socket.create_connection((host, port), timeout=timeout)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                             f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self._exact(1)
        status = response.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise ConnectionError(f"handshake refused: {response!r}")
        self.channels: dict[int, dict] = {}
        self.subscriptions: dict[int, dict] = {}

    def _exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.socket.recv(count - len(data))
            if not chunk:
                raise EOFError("server closed the connection")
            data += chunk
        return data

    def _frame(self) -> tuple[int, bytes]:
        first, second = self._exact(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", self._exact(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._exact(8))[0]
        return first & 0x0F, self._exact(length)

    def _send_text(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)  # a client masks every frame
        size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(data))
        self.socket.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def receive(self, topic: str, timeout: float):
        """(log time ns, decoded protobuf message) of the first message on `topic` within `timeout` s,
        subscribing once the topic is advertised; None when none came. A subscription that brought nothing for
        RESUBSCRIBE_S is made again: a CI run under load had the server refuse one as an unknown channel."""
        deadline = time.monotonic() + timeout
        subscribed_at = 0.0
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                opcode, payload = self._frame()
            except socket.timeout:
                opcode, payload = None, b""
            if opcode == 0x1:
                message = json.loads(payload)
                if message["op"] == "advertise":
                    self.channels.update({c["id"]: c for c in message["channels"]})
                elif message["op"] == "unadvertise":  # a channel re-made gets a new id: subscribe to that one
                    gone = set(message["channelIds"])
                    self.channels = {i: c for i, c in self.channels.items() if i not in gone}
                    self.subscriptions = {i: c for i, c in self.subscriptions.items() if c["id"] not in gone}
            elif opcode == 0x2 and payload[0] == MESSAGE_DATA:
                subscription, log_time = struct.unpack("<IQ", payload[1:13])
                channel = self.subscriptions.get(subscription)
                if channel is not None and channel["topic"] == topic:
                    return log_time, decode(channel, payload[13:])
            mine = [i for i, c in self.subscriptions.items() if c["topic"] == topic]
            if mine and time.monotonic() - subscribed_at > RESUBSCRIBE_S:
                self._send_text(json.dumps({"op": "unsubscribe", "subscriptionIds": mine}))
                self.subscriptions = {i: c for i, c in self.subscriptions.items() if i not in mine}
            wanted = [c for c in self.channels.values() if c["topic"] == topic]
            if wanted and wanted[0]["id"] not in {c["id"] for c in self.subscriptions.values()}:
                subscription = max(self.subscriptions, default=0) + 1
                self.subscriptions[subscription] = wanted[0]
                self._send_text(json.dumps({"op": "subscribe",
                                            "subscriptions": [{"id": subscription, "channelId": wanted[0]["id"]}]}))
                subscribed_at = time.monotonic()
        return None

    def close(self) -> None:
        self.socket.sendall(bytes([0x88, 0x80]) + os.urandom(4))  # a masked, empty close frame
        self.socket.close()


def decode(channel: dict, payload: bytes):
    """A protobuf message from the channel's advertised schema (a base64 FileDescriptorSet)."""
    assert channel["encoding"] == "protobuf", channel["encoding"]
    return parse(channel["schemaName"], base64.b64decode(channel["schema"]), payload)


def decode_local(message):
    """A foxglove.messages value (opaque in Python) read back through its own protobuf schema."""
    schema = message.get_schema()
    return parse(schema.name, bytes(schema.data), message.encode())


def parse(schema_name: str, descriptor_set: bytes, payload: bytes):
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(schema_name)).FromString(payload)


class PolyDataDecoder(pyigtl.PolyDataMessage):
    """POLYDATA body per the OpenIGTLink spec: ten uint32 counts and sizes, big-endian float32
    points, then the uint32 cell arrays (vertices, lines, ...)."""

    def _unpack_content(self, content):
        counts = struct.unpack(">10I", content[:40])
        points_end = 40 + 12 * counts[0]
        self.points = np.frombuffer(content[40:points_end], ">f4").reshape(-1, 3)
        vertices_end = points_end + counts[2]
        self.lines = np.frombuffer(content[vertices_end:vertices_end + counts[4]], ">u4")
        self.line_count = counts[3]


def decode_polydata(monkeypatch) -> None:
    """Make pyigtl clients in this process decode POLYDATA with PolyDataDecoder."""
    monkeypatch.setitem(pyigtl.messages.message_type_to_class_constructor, "POLYDATA", PolyDataDecoder)
