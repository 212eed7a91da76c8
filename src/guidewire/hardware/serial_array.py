"""Magnetometer-array frames from a microcontroller over a serial line.

Frame format (little-endian; README "Serial frame format" is the firmware's
reference):

    offset  size    field
    0       2       sync: 0xA5 0x5A
    2       1       version: 1
    3       1       sensor count N (row-major, as the array)
    4       4       sequence number, uint32, +1 per frame (wraps)
    8       8       device time of the sample, uint64 microseconds
    16      11*N    per sensor: HX, HY, HZ as the AK09940A's 24-bit registers
                    (3 bytes each, signed counts of 10 nT), TMPS, flags
    16+11N  2       CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes 2 .. 15+11N

flags: bit0 data ready (ST1.DRDY), bit1 data overrun (ST1.DOR),
bit2 invalid sample (ST2.INV), bit3 the sensor did not answer.
"""
from __future__ import annotations

import binascii
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np

from guidewire.contracts import ArrayReading, ArraySettings, grid_positions
from guidewire.hardware.ak09940a import array_reading, counts_from_registers

SYNC = b"\xA5\x5A"
VERSION = 1
HEADER = struct.Struct("<BBIQ")  # version, count, sequence, device time
SENSOR_BYTES = 11
FLAG_READY, FLAG_OVERRUN, FLAG_INVALID, FLAG_NO_ANSWER = 0x01, 0x02, 0x04, 0x08
MAX_BACKLOG = 64  # frames


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE; binascii.crc_hqx is that CRC with the 0xFFFF start value."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class SerialFrame:
    sequence: int
    device_time_us: int
    counts: np.ndarray  # (N,3) int
    tmps: np.ndarray  # (N,) uint8
    flags: np.ndarray  # (N,) uint8


def encode_frame(frame: SerialFrame) -> bytes:
    """What the firmware sends (also the test's and the simulator's side of the line)."""
    body = bytearray(HEADER.pack(VERSION, len(frame.counts), frame.sequence % 2 ** 32, frame.device_time_us))
    for counts, tmps, flags in zip(frame.counts, frame.tmps, frame.flags):
        for value in counts:
            body += int(value).to_bytes(3, "little", signed=True)
        body += bytes([int(tmps), int(flags)])
    return SYNC + bytes(body) + struct.pack("<H", crc16(bytes(body)))


class FrameDecoder:
    """Finds frames in a byte stream: resynchronises on the sync word, drops frames
    whose CRC fails, and counts sequence gaps as dropped frames."""

    def __init__(self, sensors: int):
        self.sensors = sensors
        self.frame_length = len(SYNC) + HEADER.size + SENSOR_BYTES * sensors + 2
        self.buffer = bytearray()
        self.crc_errors = 0
        self.dropped = 0
        self.last_sequence = None

    def feed(self, data: bytes) -> list[SerialFrame]:
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                del self.buffer[:-1]  # keep a possible first sync byte
                return frames
            del self.buffer[:start]
            if len(self.buffer) < self.frame_length:
                return frames
            candidate = bytes(self.buffer[:self.frame_length])
            body = candidate[2:-2]
            version, count = body[0], body[1]
            if version != VERSION or count != self.sensors or \
                    struct.unpack("<H", candidate[-2:])[0] != crc16(body):
                self.crc_errors += 1
                del self.buffer[:1]  # not a frame start after all: look for the next sync
                continue
            del self.buffer[:self.frame_length]
            frames.append(self._parse(body))

    def _parse(self, body: bytes) -> SerialFrame:
        _, count, sequence, device_time = HEADER.unpack_from(body)
        if self.last_sequence is not None:
            self.dropped += (sequence - self.last_sequence - 1) % 2 ** 32
        self.last_sequence = sequence
        sensors = np.frombuffer(body, np.uint8, offset=HEADER.size).reshape(count, SENSOR_BYTES)
        counts = np.array([counts_from_registers(bytes(row[:9])) for row in sensors])
        return SerialFrame(sequence, device_time, counts, sensors[:, 9].copy(), sensors[:, 10].copy())


def frame_to_reading(frame: SerialFrame) -> ArrayReading:
    """The flags are the chip's (DRDY, INV) plus the firmware's no-answer bit: decoded as the I2C driver does."""
    flags = frame.flags
    return array_reading(frame.counts, frame.tmps, ready=flags & FLAG_READY, invalid=flags & FLAG_INVALID,
                         missing=flags & FLAG_NO_ANSWER)


class SerialArray:
    """Reads frames from a serial port (pyserial); `read` returns the newest complete frame,
    or raises TimeoutError when none arrived within the timeout."""

    read_ahead = None  # hardware is read when its slot comes

    def __init__(self, port: str, rows: int, cols: int, pitch: float, baudrate: int = 2_000_000,
                 timeout: float = 0.1, noise_rms: float = 120e-9):
        import serial

        try:
            self.port = serial.Serial(port, baudrate=baudrate, timeout=timeout)
        except serial.SerialException as error:
            raise OSError(f"cannot open serial port {port}: {error}") from error
        self.rows, self.cols = rows, cols
        self.timeout = timeout
        self.noise_rms = noise_rms
        self.backlog_dropped = 0
        self.decoder = FrameDecoder(rows * cols)
        self.pending: deque[SerialFrame] = deque()
        self.positions = grid_positions(rows, cols, pitch)

    @property
    def bus_errors(self) -> int:
        return self.decoder.crc_errors

    @property
    def dropped(self) -> int:
        return self.decoder.dropped + self.backlog_dropped

    def read(self, _time: float | None = None) -> ArrayReading:
        """The next frame in order; frames beyond MAX_BACKLOG (a reader slower than the
        firmware) are dropped oldest first and counted."""
        while not self.pending:
            data = self.port.read(max(self.port.in_waiting, 1))
            if not data:
                raise TimeoutError(f"no frame from {self.port.port} within {self.timeout:g} s")
            self.pending.extend(self.decoder.feed(data))
        while len(self.pending) > MAX_BACKLOG:
            self.pending.popleft()
            self.backlog_dropped += 1
        return frame_to_reading(self.pending.popleft())

    def close(self) -> None:
        self.port.close()


def open_array(settings: ArraySettings) -> SerialArray:
    """The factory's entry (guidewire.contracts.open_array("serial", ...))."""
    return SerialArray(settings.serial_port, rows=settings.rows, cols=settings.cols, pitch=settings.pitch,
                       baudrate=settings.baudrate, timeout=2.0 / settings.rate_hz)
