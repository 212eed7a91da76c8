"""AK09940A tri-axial magnetometers over Linux I2C (smbus2), 16 sensors behind a
TCA9548A multiplexer: four sensors (addresses 0x0C-0x0F) on each of four channels.

Register map and conversions from the AK09940A datasheet: identity WIA1/WIA2,
soft reset, continuous mode at 10-400 Hz (CNTL3), and one 12-byte burst
ST1, HX, HY, HZ (24-bit little-endian, sign-extended 18-bit counts of 10 nT),
TMPS, ST2 per sensor and sample.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from guidewire.geometry import grid_positions
from guidewire.magnetometer import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE, ArrayReading

WIA1, WIA2 = 0x00, 0x01
ST1, TMPS_OFFSET, ST2_OFFSET = 0x10, 10, 11
CNTL2, CNTL3, CNTL4 = 0x31, 0x32, 0x33
COMPANY_ID, DEVICE_ID = 0x48, 0xA3
SOFT_RESET = 0x01  # CNTL4 SRST
TEMPERATURE_ENABLE = 0x40  # CNTL2 TEM
BURST_LENGTH = 12  # ST1 .. ST2
ST1_DATA_READY, ST1_DATA_OVERRUN = 0x01, 0x02
ST2_INVALID = 0x02
COUNT_LIMIT = (1 << 17) - 1  # 18-bit signed: the sensor clips at +-131071 counts
TESLA_PER_COUNT = 10e-9
# CNTL3 MODE[4:0] for continuous measurement; 1 and 2.5 kHz exist only in the low-power drives.
CONTINUOUS_MODES = {10: 0x02, 20: 0x04, 50: 0x06, 100: 0x08, 200: 0x0A, 400: 0x0C}
SENSOR_ADDRESSES = (0x0C, 0x0D, 0x0E, 0x0F)
MULTIPLEXER_ADDRESS = 0x70
MULTIPLEXER_CHANNELS = 4


class SensorError(RuntimeError):
    """A sensor that failed its identity check or set-up."""


def decode_burst(burst: bytes | list[int]) -> tuple[np.ndarray, int, float, int, int]:
    """Field (3,) in tesla, raw counts clipped flag, temperature (deg C), ST1, ST2 from a 12-byte burst."""
    data = bytes(burst)
    if len(data) != BURST_LENGTH:
        raise ValueError(f"AK09940A burst must be {BURST_LENGTH} bytes, got {len(data)}")
    counts = np.array([int.from_bytes(data[1 + 3 * axis:4 + 3 * axis], "little", signed=True)
                       for axis in range(3)])
    return counts * TESLA_PER_COUNT, int(clipped(counts)), tmps_celsius(data[TMPS_OFFSET]), data[0], data[ST2_OFFSET]


def clipped(counts: np.ndarray) -> np.ndarray:
    """True where a sensor's (last axis: x, y, z) counts hit the 18-bit limit."""
    return np.any(np.abs(counts) >= COUNT_LIMIT, axis=-1)


def tmps_celsius(tmps):
    """Datasheet conversion of the TMPS register to degrees Celsius."""
    return 30.0 - np.asarray(tmps, float) / 1.72


def continuous_mode(rate_hz: float) -> int:
    rate = int(round(rate_hz))
    if rate not in CONTINUOUS_MODES:
        raise ValueError(f"AK09940A continuous rate {rate_hz:g} Hz is not one of "
                         f"{', '.join(map(str, CONTINUOUS_MODES))} Hz (1 and 2.5 kHz need a low-power drive)")
    return CONTINUOUS_MODES[rate]


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
        field = np.full((count, 3), np.nan)
        status = np.full(count, STATUS_MISSING, np.uint8)
        temperature = np.full(count, np.nan)
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
            value, saturated, celsius, st1, st2 = decode_burst(burst)
            temperature[index] = celsius
            if st1 & ST1_DATA_OVERRUN:
                self.overruns += 1
            if st2 & ST2_INVALID:
                status[index] = STATUS_STALE  # the sensor answered but flagged this sample invalid
                continue
            field[index] = value
            status[index] = STATUS_SATURATED if saturated else (
                STATUS_OK if st1 & ST1_DATA_READY else STATUS_STALE)
        return ArrayReading(field=field, status=status, temperature=temperature)

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close:
            close()
