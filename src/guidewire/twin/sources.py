"""Magnetometer-array back-ends: each returns one synchronous array reading.

`sim` samples the simulated bench; hardware back-ends (I2C, serial) return
the same ArrayReading so the node does not care where the field came from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guidewire.twin import DigitalTwin
from guidewire.twin.magnetics import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE
from guidewire.geometry import grid_positions

__all__ = ["ArrayReading", "SimulatedArray", "STATUS_OK", "STATUS_SATURATED", "STATUS_STALE", "STATUS_MISSING"]


@dataclass(frozen=True)
class ArrayReading:
    field: np.ndarray  # (n,3) T in the array frame; NaN rows for missing sensors
    status: np.ndarray  # (n,) uint8 STATUS_*
    temperature: np.ndarray  # (n,) degrees Celsius, NaN where unknown


class SimulatedArray:
    """The bench's AK09940A array sampled at a given time."""

    def __init__(self, bench: DigitalTwin):
        self.bench = bench
        config = bench.config.magnetometer_array
        self.rows, self.cols = config.rows, config.cols
        # The array frame sits at the centre of the sensor plane, axes parallel to the bench.
        self.positions = grid_positions(config.rows, config.cols, config.pitch)
        self.noise_rms = config.noise_rms

    def read(self, time: float) -> ArrayReading:
        return self.read_ahead([time])[0]

    def read_ahead(self, times) -> list[ArrayReading]:
        """Readings at several sample times at once. The bench is a pure function of
        time, so the driver can simulate a block of upcoming samples in one vectorised
        call and publish each at its own time (real hardware cannot, and has no such method)."""
        samples = self.bench.magnetometer.samples([self.bench.state(t) for t in times])
        temperature = np.full(len(self.positions), 25.0)
        return [ArrayReading(field=s.field, status=s.status, temperature=temperature) for s in samples]

    def close(self) -> None:
        pass
