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

from guidewire.contracts import STATUS_OK, STATUS_SATURATED, grid_positions
from guidewire.twin.config import GuidewireConfig, MagnetometerArrayConfig, StaticSourceConfig
from guidewire.twin.wire import WireState, noise_key_of


def sensor_positions(config: MagnetometerArrayConfig) -> np.ndarray:
    """Sensor centres (rows*cols, 3) in the bench frame, row-major, array centred on the origin."""
    return grid_positions(config.rows, config.cols, config.pitch, config.height)


def _points_at_arc_lengths(state: WireState, distances_from_tip) -> tuple[np.ndarray, np.ndarray]:
    """Positions (m,3) and unit tangents (m,3) on the centreline, each `distance` metres behind the tip."""
    segment_lengths = np.linalg.norm(np.diff(state.centreline, axis=0), axis=1)
    from_entry = np.concatenate([[0.0], np.cumsum(segment_lengths)])
    along = from_entry[-1] - np.asarray(distances_from_tip, float)
    position = np.column_stack([np.interp(along, from_entry, state.centreline[:, i]) for i in range(3)])
    tangent = np.column_stack([np.interp(along, from_entry, state.tangents[:, i]) for i in range(3)])
    return position.reshape(-1, 3), (tangent / np.linalg.norm(tangent, axis=1, keepdims=True)).reshape(-1, 3)


def axis_to_z(tangents: np.ndarray) -> Rotation:
    """Rotations (one per row) that map a cylinder's local z axis onto each unit tangent."""
    tangents = np.atleast_2d(tangents)
    axes = np.cross([0.0, 0.0, 1.0], tangents)
    sines = np.linalg.norm(axes, axis=1)
    angles = np.arctan2(sines, tangents[:, 2])
    # Anti-parallel tangents have no unique axis: any perpendicular one (x) turns z onto -z.
    axes = np.where(sines[:, None] > 1e-12, axes / np.maximum(sines, 1e-300)[:, None], [1.0, 0.0, 0.0])
    return Rotation.from_rotvec(axes * angles[:, None])


@dataclass(frozen=True)
class MagnetPlacements:
    """Axially polarised cylinders along the wire, one row each."""

    positions: np.ndarray  # (m,3) m
    tangents: np.ndarray  # (m,3) unit, polarisation direction
    lengths: np.ndarray  # (m,) m
    polarizations: np.ndarray  # (m,) T
    diameter: float  # m


def wire_magnet_placements(state: WireState, config: GuidewireConfig) -> MagnetPlacements:
    placements = []
    if config.tip_magnet_length > 0:
        placements.append((config.tip_magnet_length / 2, config.tip_magnet_length, config.tip_magnet_polarization))
    for k in range(config.segment_magnet_count):
        offset = config.tip_magnet_length + (k + 1) * config.segment_magnet_spacing
        if offset < state.length:
            placements.append((offset, config.segment_magnet_length, config.segment_magnet_polarization))
    positions, tangents = _points_at_arc_lengths(state, [distance for distance, _, _ in placements])
    return MagnetPlacements(positions=positions, tangents=tangents,
                            lengths=np.array([length for _, length, _ in placements]),
                            polarizations=np.array([pol for _, _, pol in placements]), diameter=state.diameter)


def wire_magnets(state: WireState, config: GuidewireConfig) -> list:
    """The wire's magnets as magpylib objects (for inspection and display)."""
    placed = wire_magnet_placements(state, config)
    rotations = axis_to_z(placed.tangents) if len(placed.lengths) else []
    return [magpylib.magnet.Cylinder(polarization=(0.0, 0.0, polarization), dimension=(placed.diameter, length),
                                     position=position, orientation=rotation)
            for position, length, polarization, rotation in zip(placed.positions, placed.lengths,
                                                                placed.polarizations, rotations)]


def wire_magnets_fields(placements: list[MagnetPlacements], observers: np.ndarray) -> np.ndarray:
    """Summed field (t,n,3) of each placement's magnets at the observers, through
    magpylib's functional interface: one vectorised call for all magnets of all
    placements instead of an object per magnet and sample, which the 400 Hz
    driver needs (the call's own overhead is paid once per block of samples)."""
    from magpylib.func import cylinder_field

    sensors = len(observers)
    counts = np.array([len(placed.lengths) for placed in placements], int)
    fields = np.zeros((len(placements), sensors, 3))
    if counts.sum() == 0:
        return fields
    positions = np.concatenate([placed.positions for placed in placements])
    tangents = np.concatenate([placed.tangents for placed in placements])
    dimensions = np.concatenate([np.column_stack([np.full(len(placed.lengths), placed.diameter), placed.lengths])
                                 for placed in placements])
    polarizations = np.concatenate([placed.polarizations for placed in placements])
    magnets = len(polarizations)
    pair_magnet = np.repeat(np.arange(magnets), sensors)
    field = cylinder_field(
        "B", observers=np.tile(observers, (magnets, 1)), dimensions=dimensions[pair_magnet],
        polarizations=np.column_stack([np.zeros((magnets, 2)), polarizations])[pair_magnet],
        positions=positions[pair_magnet], orientations=axis_to_z(tangents)[pair_magnet], squeeze=False)
    per_magnet = field.reshape(magnets, sensors, 3)
    owner = np.repeat(np.arange(len(placements)), counts)
    np.add.at(fields, owner, per_magnet)
    return fields


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
        self._noise_root = [seed, 0xA4]

    def wire_fields(self, states: list[WireState]) -> np.ndarray:
        """Noise-free field (t,n,3) of the wire alone, for several states in one magpylib call."""
        return wire_magnets_fields([wire_magnet_placements(state, self.wire) for state in states], self.positions)

    def wire_field(self, state: WireState) -> np.ndarray:
        return self.wire_fields([state])[0]

    def true_field(self, state: WireState) -> np.ndarray:
        return self.background + self.wire_field(state)

    def recorded_background(self, samples: int = 50, seed: int = 0) -> np.ndarray:
        """What the array's background recording reads with the wire withdrawn: the static field
        through the sensor's noise and quantisation, averaged over `samples` frames (T, (n,3))."""
        rng = np.random.default_rng([seed, 0xB6])
        noisy = self.background[None] + rng.normal(0.0, self.array.noise_rms, (samples, *self.background.shape))
        counts, _ = quantise(noisy, self.array)
        return counts.mean(axis=0) * self.array.lsb

    def sample(self, state: WireState) -> ArraySample:
        return self.samples([state])[0]

    def samples(self, states: list[WireState]) -> list[ArraySample]:
        """Read-outs of states, the field of all of them in one magpylib call. Each read-out's noise
        is a function of the seed and its state's time, as the cameras' (twin.wire.noise_key_of)."""
        truth = self.background + self.wire_fields(states)
        noise = np.stack([np.random.default_rng(self._noise_root + noise_key_of(state)).normal(
            0.0, self.array.noise_rms, truth.shape[1:]) for state in states])
        noisy = truth + noise
        counts, status = quantise(noisy, self.array)
        return [ArraySample(field=counts[i] * self.array.lsb, true_field=truth[i], status=status[i], counts=counts[i])
                for i in range(len(states))]


def quantise(field: np.ndarray, config: MagnetometerArrayConfig) -> tuple[np.ndarray, np.ndarray]:
    """Signed ADC counts clipped to the output word, and per-sensor saturation status."""
    full_scale = 2 ** (config.adc_bits - 1)
    counts = np.clip(np.rint(field / config.lsb), -full_scale, full_scale - 1).astype(np.int64)
    saturated = (np.abs(field) > config.measurement_range).any(axis=-1)
    status = np.where(saturated, STATUS_SATURATED, STATUS_OK).astype(np.uint8)
    return counts, status
