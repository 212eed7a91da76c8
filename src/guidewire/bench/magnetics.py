"""Magnetic field at the magnetometer array, computed with magpylib.

Sources: the wire's tip magnet and magnetised segments (axially polarised
cylinders along the centreline), the static cuboid magnet beneath the
platform and the Earth field. The sensor model is the AK09940A: 10 nT per
count, about 120 nT rms noise, +/-1200 uT range, 18-bit two's-complement
output that clips beyond it.
"""
from __future__ import annotations

from dataclasses import dataclass

import magpylib
import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.bench.wire import WireState
from guidewire.config import GuidewireConfig, MagnetometerArrayConfig, StaticSourceConfig
from guidewire.geometry import grid_positions

STATUS_OK, STATUS_SATURATED, STATUS_STALE, STATUS_MISSING = 0, 1, 2, 3


def sensor_positions(config: MagnetometerArrayConfig) -> np.ndarray:
    """Sensor centres (rows*cols, 3) in the bench frame, row-major, array centred on the origin."""
    return grid_positions(config.rows, config.cols, config.pitch, config.height)


def _point_at_arc_length(state: WireState, distance_from_tip: float) -> tuple[np.ndarray, np.ndarray]:
    """Position and tangent on the centreline `distance_from_tip` metres behind the tip."""
    segment_lengths = np.linalg.norm(np.diff(state.centreline, axis=0), axis=1)
    from_tip = np.concatenate([[0.0], np.cumsum(segment_lengths[::-1])])[::-1]
    position = np.array([np.interp(distance_from_tip, from_tip[::-1], state.centreline[::-1, i]) for i in range(3)])
    tangent = np.array([np.interp(distance_from_tip, from_tip[::-1], state.tangents[::-1, i]) for i in range(3)])
    return position, tangent / np.linalg.norm(tangent)


def _axis_to_z(tangent: np.ndarray) -> Rotation:
    """Rotation that maps the cylinder's local z axis onto `tangent`."""
    rotation, _ = Rotation.align_vectors([tangent], [[0.0, 0.0, 1.0]])
    return rotation


def wire_magnets(state: WireState, config: GuidewireConfig) -> list:
    """Axially polarised cylinder magnets along the wire, as magpylib sources."""
    magnets = []
    placements = []
    if config.tip_magnet_length > 0:
        placements.append((config.tip_magnet_length / 2, config.tip_magnet_length, config.tip_magnet_polarization))
    for k in range(config.segment_magnet_count):
        offset = config.tip_magnet_length + (k + 1) * config.segment_magnet_spacing
        if offset < state.length:
            placements.append((offset, config.segment_magnet_length, config.segment_magnet_polarization))
    for distance, length, polarization in placements:
        position, tangent = _point_at_arc_length(state, distance)
        magnets.append(magpylib.magnet.Cylinder(
            polarization=(0.0, 0.0, polarization), dimension=(state.diameter, length),
            position=position, orientation=_axis_to_z(tangent)))
    return magnets


def static_source(config: StaticSourceConfig) -> magpylib.magnet.Cuboid:
    return magpylib.magnet.Cuboid(polarization=config.polarization, dimension=config.dimension,
                                  position=config.position)


@dataclass(frozen=True)
class ArraySample:
    """One simulated array read-out, bench-frame axes (the array frame is a translation of it)."""

    field: np.ndarray  # (n,3) T, as the sensor reports it (quantised, clipped)
    true_field: np.ndarray  # (n,3) T, noise-free
    status: np.ndarray  # (n,) STATUS_* codes
    counts: np.ndarray  # (n,3) raw signed ADC counts


class MagnetometerArrayModel:
    """Noise-free field, then the AK09940A's noise, quantisation and saturation."""

    def __init__(self, array: MagnetometerArrayConfig, wire: GuidewireConfig, source: StaticSourceConfig,
                 earth_field, seed: int):
        self.array = array
        self.wire = wire
        self.positions = sensor_positions(array)
        self.background = magpylib.getB(static_source(source), self.positions) + np.asarray(earth_field, float)
        self._rng = np.random.default_rng([seed, 0xA4])

    def wire_field(self, state: WireState) -> np.ndarray:
        magnets = wire_magnets(state, self.wire)
        if not magnets:
            return np.zeros_like(self.positions)
        return np.atleast_2d(magpylib.getB(magnets, self.positions, sumup=True))

    def true_field(self, state: WireState) -> np.ndarray:
        return self.background + self.wire_field(state)

    def sample(self, state: WireState) -> ArraySample:
        truth = self.true_field(state)
        noisy = truth + self._rng.normal(0.0, self.array.noise_rms, truth.shape)
        counts, status = quantise(noisy, self.array)
        return ArraySample(field=counts * self.array.lsb, true_field=truth, status=status, counts=counts)


def quantise(field: np.ndarray, config: MagnetometerArrayConfig) -> tuple[np.ndarray, np.ndarray]:
    """Signed ADC counts clipped to the output word, and per-sensor saturation status."""
    full_scale = 2 ** (config.adc_bits - 1)
    counts = np.clip(np.rint(field / config.lsb), -full_scale, full_scale - 1).astype(np.int64)
    saturated = (np.abs(field) > config.measurement_range).any(axis=1)
    status = np.where(saturated, STATUS_SATURATED, STATUS_OK).astype(np.uint8)
    return counts, status
