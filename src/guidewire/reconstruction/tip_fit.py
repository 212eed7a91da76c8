"""Baseline: the tip magnet's pose from the array alone (Levenberg-Marquardt).

The classic magnetic-tracking fit: one magnet (a row of dipoles, magnets.py)
with known strength, unknown centre (3) and axis (2 angles), and a uniform
field offset (3) for drift. Starts from a coarse grid over the volume above
the array, so it needs no camera; the wire's other magnets are unmodelled,
which is this baseline's weakness and the reason for the fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from guidewire.reconstruction.magnets import dipole_field
from guidewire.reconstruction.physics import ArrayField, ReconstructionError


@dataclass(frozen=True)
class TipPose:
    position: np.ndarray  # (3,) m, the tip (the magnet's distal end)
    direction: np.ndarray  # (3,) unit, towards the tip
    field_rms: float  # T
    converged: bool


def _axis(angles) -> np.ndarray:
    polar, azimuth = angles
    return np.array([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)])


def fit_tip_magnet(array: ArrayField, moment: float, magnet_length: float,
                   search_box=((-0.08, 0.08), (-0.08, 0.08), (0.005, 0.08))) -> TipPose:
    valid = np.asarray(array.valid, bool)
    if valid.sum() < 3:
        raise ReconstructionError("fewer than 3 usable magnetometers for the tip fit")
    observers = array.positions[valid]
    measured = array.wire_component()[valid]
    stations = np.array([-1.0, 0.0, 1.0]) * magnet_length / 3

    def model(x):
        axis = _axis(x[3:5])
        sources = x[:3] + stations[:, None] * axis
        return dipole_field(sources, np.tile(axis * moment / 3, (3, 1)), observers) + x[5:8]

    def residuals(x):
        return ((model(x) - measured) / array.noise).ravel()

    # Coarse start: the grid point and axis whose field correlates best with the measurement.
    grid = np.stack(np.meshgrid(*[np.linspace(low, high, 5) for low, high in search_box], indexing="ij"),
                    -1).reshape(-1, 3)
    axes = [(np.pi / 2, a) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)] + [(0.3, 0.0), (np.pi - 0.3, 0.0)]
    best_start, best_cost = None, np.inf
    for position in grid:
        for angles in axes:
            x = np.concatenate([position, angles, np.zeros(3)])
            cost = float(np.sum(residuals(x) ** 2))
            if cost < best_cost:
                best_start, best_cost = x, cost
    result = least_squares(residuals, best_start, method="lm", x_scale="jac", max_nfev=400)
    axis = _axis(result.x[3:5])
    field_rms = float(np.sqrt(np.mean(result.fun ** 2))) * array.noise
    return TipPose(position=result.x[:3] + axis * magnet_length / 2, direction=axis, field_rms=field_rms,
                   converged=bool(result.success))
