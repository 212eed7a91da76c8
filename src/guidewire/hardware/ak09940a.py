"""The AK09940A tri-axial magnetometer: register map, conversions and the one mapping of its
flags to a reading's per-sensor status, shared by every transport (I2C, serial frames).

From the AK09940A datasheet: identity WIA1/WIA2, soft reset, continuous mode at
10-400 Hz (CNTL3), and one 12-byte burst ST1, HX, HY, HZ (24-bit little-endian,
sign-extended 18-bit counts of 10 nT), TMPS, ST2 per sensor and sample.
"""
from __future__ import annotations

import numpy as np

from guidewire.contracts import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE, ArrayReading

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


class SensorError(RuntimeError):
    """A sensor that failed its identity check or set-up."""


def counts_from_registers(data: bytes) -> list[int]:
    """Signed counts of HX, HY, HZ from their nine 3-byte little-endian registers."""
    return [int.from_bytes(data[3 * axis:3 * axis + 3], "little", signed=True) for axis in range(3)]


def decode_burst(burst: bytes | list[int]) -> tuple[np.ndarray, int, int]:
    """Counts (3,), TMPS, ST1 and ST2 of a 12-byte ST1..ST2 burst, as (counts, tmps, st1, st2)."""
    data = bytes(burst)
    if len(data) != BURST_LENGTH:
        raise ValueError(f"AK09940A burst must be {BURST_LENGTH} bytes, got {len(data)}")
    return np.array(counts_from_registers(data[1:10])), data[TMPS_OFFSET], data[0], data[ST2_OFFSET]


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


def sensor_status(ready, invalid, missing, saturated) -> np.ndarray:
    """Per-sensor STATUS_* from the chip's flags (arrays of bool, one per sensor): no answer is
    MISSING; ST2.INV is STALE; a clipped axis is SATURATED; DRDY low (no new conversion) is STALE."""
    status = np.where(np.asarray(ready, bool), STATUS_OK, STATUS_STALE)
    status = np.where(saturated, STATUS_SATURATED, status)
    status = np.where(invalid, STATUS_STALE, status)
    return np.where(missing, STATUS_MISSING, status).astype(np.uint8)


def array_reading(counts, tmps, ready, invalid, missing) -> ArrayReading:
    """The array's reading from every sensor's registers and flags (row-major; counts (n,3),
    tmps and flags (n,)): field in tesla, NaN where the sample is invalid or the sensor did not
    answer, temperature NaN where it did not answer."""
    counts = np.asarray(counts)
    invalid, missing = np.asarray(invalid, bool), np.asarray(missing, bool)
    field = counts * TESLA_PER_COUNT
    field[invalid | missing] = np.nan
    return ArrayReading(field=field, status=sensor_status(ready, invalid, missing, clipped(counts)),
                        temperature=np.where(missing, np.nan, tmps_celsius(tmps)))
