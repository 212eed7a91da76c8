"""An AK09940A array over Linux I2C (smbus2): 16 sensors behind a TCA9548A multiplexer,
four sensors (addresses 0x0C-0x0F) on each of four channels, row = channel."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from guidewire.contracts import ArrayReading, ArraySettings, grid_positions
from guidewire.hardware.ak09940a import (BURST_LENGTH, CNTL2, CNTL3, CNTL4, COMPANY_ID, DEVICE_ID, SOFT_RESET, ST1,
                                         ST1_DATA_OVERRUN, ST1_DATA_READY, ST2_INVALID, TEMPERATURE_ENABLE, WIA1,
                                         SensorError, array_reading, continuous_mode, decode_burst)

SENSOR_ADDRESSES = (0x0C, 0x0D, 0x0E, 0x0F)
MULTIPLEXER_ADDRESS = 0x70
MULTIPLEXER_CHANNELS = 4


@dataclass(frozen=True)
class SensorAddress:
    channel: int  # multiplexer channel
    address: int  # 7-bit I2C address on that channel


def array_addresses(rows: int = 4, cols: int = 4) -> list[SensorAddress]:
    """Row-major sensor order: channel = row, address = 0x0C + column."""
    if rows > MULTIPLEXER_CHANNELS or cols > len(SENSOR_ADDRESSES):
        raise ValueError(f"a {rows}x{cols} array does not fit {MULTIPLEXER_CHANNELS} channels x "
                         f"{len(SENSOR_ADDRESSES)} addresses")
    return [SensorAddress(row, SENSOR_ADDRESSES[col]) for row in range(rows) for col in range(cols)]


class I2CArray:
    """Reads the array with one burst per sensor; a sensor that stops answering is
    marked missing (NaN field) and retried on later samples, the others go on."""

    read_ahead = None  # hardware is read when its slot comes
    dropped = 0  # every read returns the sensors' latest sample: nothing queues up to be lost

    def __init__(self, bus, rows: int, cols: int, pitch: float, rate_hz: float,
                 multiplexer_address: int = MULTIPLEXER_ADDRESS, noise_rms: float = 120e-9):
        self.bus = bus  # an smbus2.SMBus, or anything with the same methods
        self.rows, self.cols = rows, cols
        self.sensors = array_addresses(rows, cols)
        self.multiplexer = multiplexer_address
        self.noise_rms = noise_rms
        self.mode = continuous_mode(rate_hz)
        self.positions = grid_positions(rows, cols, pitch)
        self._channel = None
        self.bus_errors = 0
        self.overruns = 0
        self.configured = np.zeros(len(self.sensors), bool)
        for index in range(len(self.sensors)):
            self._configure(index)

    @classmethod
    def open(cls, bus_number: int, **kwargs) -> "I2CArray":
        from smbus2 import SMBus

        return cls(SMBus(bus_number), **kwargs)

    def _select(self, channel: int) -> None:
        if self._channel != channel:
            self._channel = None  # unknown until the write succeeds
            self.bus.write_byte(self.multiplexer, 1 << channel)
            self._channel = channel

    def _configure(self, index: int) -> bool:
        sensor = self.sensors[index]
        try:
            self._select(sensor.channel)
            identity = self.bus.read_i2c_block_data(sensor.address, WIA1, 2)
            if tuple(identity) != (COMPANY_ID, DEVICE_ID):
                raise SensorError(f"sensor {index} (channel {sensor.channel}, 0x{sensor.address:02X}) is not an "
                                  f"AK09940A: WIA1/WIA2 = {identity[0]:#04x}/{identity[1]:#04x}")
            self.bus.write_byte_data(sensor.address, CNTL4, SOFT_RESET)
            time.sleep(0.001)  # reset time
            self.bus.write_byte_data(sensor.address, CNTL2, TEMPERATURE_ENABLE)
            self.bus.write_byte_data(sensor.address, CNTL3, self.mode)
        except OSError:
            self.bus_errors += 1
            self.configured[index] = False
            return False
        self.configured[index] = True
        return True

    def read(self, _time: float | None = None) -> ArrayReading:
        count = len(self.sensors)
        counts = np.zeros((count, 3), np.int64)
        tmps = np.zeros(count, np.uint8)
        ready, invalid, missing = np.zeros(count, bool), np.zeros(count, bool), np.ones(count, bool)
        for index, sensor in enumerate(self.sensors):
            if not self.configured[index] and not self._configure(index):
                continue
            try:
                self._select(sensor.channel)
                burst = self.bus.read_i2c_block_data(sensor.address, ST1, BURST_LENGTH)
            except OSError:  # no acknowledge: the sensor is gone until it answers a new set-up
                self.bus_errors += 1
                self.configured[index] = False
                continue
            counts[index], tmps[index], st1, st2 = decode_burst(burst)
            if st1 & ST1_DATA_OVERRUN:
                self.overruns += 1
            missing[index] = False
            ready[index], invalid[index] = st1 & ST1_DATA_READY, st2 & ST2_INVALID
        return array_reading(counts, tmps, ready, invalid, missing)

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close:
            close()


def open_array(settings: ArraySettings) -> I2CArray:
    """The factory's entry (guidewire.contracts.open_array("i2c", ...))."""
    return I2CArray.open(settings.i2c_bus, rows=settings.rows, cols=settings.cols, pitch=settings.pitch,
                         rate_hz=settings.rate_hz, multiplexer_address=settings.multiplexer_address)
