"""The wire's magnets as point dipoles, for the inverse problems.

A magnetised segment is a thin axially polarised cylinder (0.36-0.89 mm
across, 2-5 mm long) seen from 20-80 mm: a row of point dipoles on its axis
(Gauss-Legendre stations) matches magpylib's exact cylinder field to well
under the sensors' noise at a fraction of its cost, and its derivatives are
plain numpy. magpylib is the forward model of the twin, so the fits here
never invert the model that made their data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MU0 = 4e-7 * np.pi
DIPOLE_STATIONS = 3  # per magnet; the error of 3 stations at 20 mm is < 0.1 % of the field
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(DIPOLE_STATIONS)


@dataclass(frozen=True)
class WireMagnets:
    """Where the magnets sit along the wire and how strong they are (SI units).

    `offsets` are the magnets' centres measured back from the tip along the wire.
    """

    diameter: float  # m
    offsets: tuple  # m from the tip
    lengths: tuple  # m
    polarizations: tuple  # T, along the wire towards the tip

    @classmethod
    def from_layout(cls, diameter: float, tip_length: float, tip_polarization: float, segment_count: int,
                    segment_length: float, segment_spacing: float, segment_polarization: float) -> "WireMagnets":
        """A tip magnet, then `segment_count` segments every `segment_spacing` behind it (the bench's layout)."""
        offsets, lengths, polarizations = [], [], []
        if tip_length > 0:
            offsets.append(tip_length / 2)
            lengths.append(tip_length)
            polarizations.append(tip_polarization)
        for k in range(segment_count):
            offsets.append(tip_length + (k + 1) * segment_spacing)
            lengths.append(segment_length)
            polarizations.append(segment_polarization)
        return cls(diameter, tuple(offsets), tuple(lengths), tuple(polarizations))

    @classmethod
    def of_guidewire(cls, guidewire) -> "WireMagnets":
        """From a guidewire description with the bench YAML's keys (guidewire.twin.config.GuidewireConfig)."""
        return cls.from_layout(guidewire.diameter, guidewire.tip_magnet_length, guidewire.tip_magnet_polarization,
                               guidewire.segment_magnet_count, guidewire.segment_magnet_length,
                               guidewire.segment_magnet_spacing, guidewire.segment_magnet_polarization)

    @property
    def moments(self) -> np.ndarray:
        """Dipole moment magnitude of each magnet, A m^2 (J = mu0 M)."""
        volume = np.pi * (self.diameter / 2) ** 2 * np.asarray(self.lengths, float)
        return np.asarray(self.polarizations, float) * volume / MU0

    def scaled(self, factors) -> "WireMagnets":
        """The same layout with each magnet's polarisation multiplied by `factors`."""
        return WireMagnets(self.diameter, self.offsets, self.lengths,
                           tuple(np.asarray(self.polarizations) * np.asarray(factors, float)))


def dipole_field(sources: np.ndarray, moments: np.ndarray, observers: np.ndarray) -> np.ndarray:
    """Summed flux density (...,n,3) T of point dipoles (...,m,3 positions; ...,m,3 moments) at observers (n,3)."""
    return dipole_fields(sources, moments, observers).sum(axis=-2)


def dipole_fields(sources: np.ndarray, moments: np.ndarray, observers: np.ndarray) -> np.ndarray:
    """Flux density (...,n,m,3) T of each point dipole (...,m,3 positions; ...,m,3 moments) at observers (n,3);
    leading dimensions are a batch of wires (the fit's finite differences)."""
    offsets = observers[:, None, :] - sources[..., None, :, :]  # (...,n,m,3)
    distance2 = np.einsum("...k,...k->...", offsets, offsets)
    inverse = 1.0 / np.sqrt(distance2)
    unit = offsets * inverse[..., None]
    along = np.einsum("...nmk,...mk->...nm", unit, moments)
    field = (3.0 * unit * along[..., None] - moments[..., None, :, :]) * (inverse ** 3)[..., None]
    return 1e-7 * field


def points_behind_tip(points: np.ndarray, distances) -> tuple[np.ndarray, np.ndarray]:
    """Positions (...,m,3) and unit tangents (...,m,3) on polylines (...,p,3) `distances` (m,) metres behind
    their last point."""
    segment = np.diff(points, axis=-2)
    segment_length = np.linalg.norm(segment, axis=-1)
    from_start = np.concatenate([np.zeros(segment_length.shape[:-1] + (1,)), np.cumsum(segment_length, axis=-1)],
                                axis=-1)
    total = from_start[..., -1:]
    along = np.clip(total - np.asarray(distances, float), 0.0, total)
    # The segment each lies on: how many points lie at or before it (np.searchsorted, side="right", batched).
    index = np.clip((from_start[..., None, :] <= along[..., :, None]).sum(axis=-1) - 1, 0, segment.shape[-2] - 1)
    length_there = np.maximum(np.take_along_axis(segment_length, index, axis=-1), 1e-15)
    segment_there = np.take_along_axis(segment, index[..., None], axis=-2)
    fraction = (along - np.take_along_axis(from_start, index, axis=-1)) / length_there
    positions = np.take_along_axis(points, index[..., None], axis=-2) + fraction[..., None] * segment_there
    return positions, segment_there / length_there[..., None]


def wire_dipoles(points: np.ndarray, magnets: WireMagnets) -> tuple[np.ndarray, np.ndarray]:
    """Dipole stations (...,k,3) and their moments (...,k,3) for wire centrelines (...,p,3) ordered entry -> tip."""
    lengths = np.asarray(magnets.lengths, float)
    distances = (np.asarray(magnets.offsets, float)[:, None] - 0.5 * lengths[:, None] * _NODES[None, :]).ravel()
    positions, tangents = points_behind_tip(points, distances)
    strength = (magnets.moments[:, None] * 0.5 * _WEIGHTS[None, :]).ravel()
    return positions, tangents * strength[:, None]


def wire_field(points: np.ndarray, magnets: WireMagnets, observers: np.ndarray) -> np.ndarray:
    """Field (...,n,3) T of the wire's magnets at the observers, for centrelines (...,p,3)."""
    sources, moments = wire_dipoles(points, magnets)
    return dipole_field(sources, moments, observers)


def magnet_fields(points: np.ndarray, magnets: WireMagnets, observers: np.ndarray) -> np.ndarray:
    """Field (magnets, n, 3) T of each of the wire's magnets at the observers."""
    sources, moments = wire_dipoles(points, magnets)
    per_station = dipole_fields(sources, moments, observers)  # stations in magnet order
    return per_station.reshape(len(observers), len(magnets.offsets), DIPOLE_STATIONS, 3).sum(axis=2).transpose(1, 0, 2)
