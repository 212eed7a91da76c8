"""Fakes that speak the real protocols at the byte level: an I2C bus with a
TCA9548A multiplexer and AK09940A register files (smbus2's method set)."""
from __future__ import annotations

import errno

import numpy as np

from guidewire.hardware import ak09940a as ak
from guidewire.hardware.i2c_array import MULTIPLEXER_ADDRESS, SENSOR_ADDRESSES


def remote_io_error() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")  # what the kernel returns on a missing ACK


class FakeAK09940A:
    def __init__(self):
        self.registers = bytearray(0x40)
        self.registers[ak.WIA1], self.registers[ak.WIA2] = ak.COMPANY_ID, ak.DEVICE_ID
        self.counts = np.zeros(3, int)
        self.tmps = 0x2B
        self.answering = True
        self.stalled = False  # no new sample since the last read (DRDY low)
        self.invalid = False  # ST2.INV
        self.writes: list[tuple[int, int]] = []

    def write(self, register: int, value: int) -> None:
        self.writes.append((register, value))
        if register == ak.CNTL4 and value & ak.SOFT_RESET:
            self.registers[ak.CNTL2:ak.CNTL4 + 1] = bytes(3)
            return
        self.registers[register] = value

    def read(self, register: int, length: int) -> list[int]:
        if self.registers[ak.CNTL3] & 0x1F:  # measuring: the data registers hold the latest sample
            image = self.registers
            image[ak.ST1] = 0 if self.stalled else ak.ST1_DATA_READY
            for axis, value in enumerate(self.counts):
                image[ak.ST1 + 1 + 3 * axis:ak.ST1 + 4 + 3 * axis] = int(value).to_bytes(3, "little", signed=True)
            image[ak.ST1 + ak.TMPS_OFFSET] = self.tmps
            image[ak.ST1 + ak.ST2_OFFSET] = ak.ST2_INVALID if self.invalid else 0
        return list(self.registers[register:register + length])


class FakeI2CBus:
    """smbus2.SMBus's methods over a TCA9548A (channel mask register) and sensors per channel."""

    def __init__(self, channels: int = 4, addresses=SENSOR_ADDRESSES, multiplexer=MULTIPLEXER_ADDRESS):
        self.multiplexer = multiplexer
        self.mask = 0
        self.sensors = {(c, a): FakeAK09940A() for c in range(channels) for a in addresses}
        self.transactions = 0

    def _device(self, address: int) -> FakeAK09940A:
        self.transactions += 1
        selected = [s for (c, a), s in self.sensors.items() if a == address and self.mask & (1 << c)]
        if len(selected) != 1 or not selected[0].answering:  # none, or two answering at once: a bus error
            raise remote_io_error()
        return selected[0]

    def write_byte(self, address: int, value: int) -> None:
        if address != self.multiplexer:
            raise remote_io_error()
        self.mask = value

    def write_byte_data(self, address: int, register: int, value: int) -> None:
        self._device(address).write(register, value)

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
        if length > 32:
            raise ValueError("SMBus block reads are at most 32 bytes")
        return self._device(address).read(register, length)

    def close(self) -> None:
        pass
