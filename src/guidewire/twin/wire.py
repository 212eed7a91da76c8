"""Guidewire shapes and the insertion robot's motion.

The wire is an inextensible rod with an intrinsic (material) curvature
profile: a gently curved shaft and a pre-shaped distal tip, as a clinical
angled guidewire. The robot at the entry point advances it (inserted length)
and rolls it (rotation angle); the free wire keeps its intrinsic shape, so the
centreline is the integral of the curvature rotated by the roll angle. The
state is a pure function of time, so separate processes agree on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.twin.config import GuidewireConfig


@dataclass(frozen=True)
class WireState:
    """Ground-truth wire at one instant, bench frame, metres."""

    time: float  # s
    inserted_length: float  # m
    rotation: float  # rad, roll applied at the entry point
    centreline: np.ndarray  # (N,3) from the entry point to the tip
    tangents: np.ndarray  # (N,3) unit tangents (towards the tip)
    diameter: float  # m

    @property
    def tip(self) -> np.ndarray:
        return self.centreline[-1]

    @property
    def tip_direction(self) -> np.ndarray:
        return self.tangents[-1]

    @property
    def length(self) -> float:
        return float(np.linalg.norm(np.diff(self.centreline, axis=0), axis=1).sum())


def noise_key_of(state: WireState | None) -> list[int]:
    """A rendered frame's default noise key: the state's time in ns (0 without a state), so that
    simulated sensor noise, like the rest of the bench, is a function of time."""
    return [0 if state is None else int(round(state.time * 1e9)) % (1 << 64)]  # a seed takes no negatives


def _smooth_profile(rng: np.random.Generator, sigma: np.ndarray, period: float, harmonics: int) -> np.ndarray:
    """A random smooth function of the material coordinate: a short Fourier series."""
    value = np.zeros_like(sigma)
    for k in range(1, harmonics + 1):
        amplitude = rng.normal() / k
        phase = rng.uniform(0, 2 * np.pi)
        value += amplitude * np.sin(2 * np.pi * k * sigma / period + phase)
    return value


class GuidewireModel:
    """A wire of fixed intrinsic shape (from the seed) moved by the robot."""

    def __init__(self, config: GuidewireConfig, seed: int):
        self.config = config
        rng = np.random.default_rng([seed, 0x6D1])  # own stream: other bench parts do not shift it
        spacing = config.point_spacing
        # Material coordinate measured from the tip; the profile covers the longest inserted length.
        self.material = np.arange(0.0, config.max_inserted_length + spacing, spacing)
        shaft = np.stack([_smooth_profile(rng, self.material, config.max_inserted_length, 3) for _ in range(2)], 1)
        shaft *= config.body_max_curvature / max(np.abs(shaft).max(), 1e-12)
        # Pre-shaped tip: curvature that fades in over the distal section, in a random bending plane.
        bend_angle = rng.uniform(0, 2 * np.pi)
        bend = rng.uniform(0.5, 1.0) * config.tip_max_curvature
        fade = np.clip(1.0 - self.material / config.tip_shape_length, 0.0, 1.0)
        tip = np.outer(np.sin(np.pi * fade / 2) * bend, [np.cos(bend_angle), np.sin(bend_angle)])
        curvature = shaft + tip
        magnitude = np.linalg.norm(curvature, axis=1, keepdims=True)
        limit = config.tip_max_curvature
        self.curvature = np.where(magnitude > limit, curvature * limit / np.maximum(magnitude, 1e-12), curvature)
        entry = np.asarray(config.entry_direction, float)
        entry /= np.linalg.norm(entry)
        self.entry_frame = _frame_with_tangent(entry)
        self.cycle_period = 2 * (config.max_inserted_length - config.min_inserted_length) / config.insertion_speed \
            if config.insertion_speed > 0 else float("inf")

    def inserted_length(self, time: float) -> float:
        """Triangle wave between min and max inserted length at the insertion speed."""
        c = self.config
        span = c.max_inserted_length - c.min_inserted_length
        if span == 0 or c.insertion_speed == 0:
            return c.min_inserted_length
        phase = (time % self.cycle_period) / self.cycle_period
        return c.min_inserted_length + span * (1.0 - abs(2.0 * phase - 1.0))

    def rotation(self, time: float) -> float:
        return float((self.config.rotation_speed * time) % (2 * np.pi))

    def state(self, time: float) -> WireState:
        return self.shape(self.inserted_length(time), self.rotation(time), time)

    def shape(self, inserted_length: float, rotation: float, time: float = 0.0) -> WireState:
        """Integrate the centreline from the entry point for a given inserted length and roll."""
        spacing = self.config.point_spacing
        count = int(round(inserted_length / spacing))
        # Spatial arc length s from the entry point; material coordinate from the tip is L - s.
        material = inserted_length - spacing * np.arange(count + 1)
        kappa = np.stack([np.interp(material, self.material, self.curvature[:, i]) for i in range(2)], 1)
        cos_r, sin_r = np.cos(rotation), np.sin(rotation)
        kappa = np.stack([cos_r * kappa[:, 0] - sin_r * kappa[:, 1], sin_r * kappa[:, 0] + cos_r * kappa[:, 1]], 1)
        # Bishop frame: d(frame)/ds = frame @ skew(w) with body angular rate w = (0, -k2, k1).
        rates = np.column_stack([np.zeros(count), -kappa[:-1, 1], kappa[:-1, 0]]) * spacing
        steps = Rotation.from_rotvec(rates).as_matrix()
        frames = np.empty((count + 1, 3, 3))
        frames[0] = self.entry_frame
        frames[1:] = self.entry_frame @ _running_products(steps)
        tangents = frames[:, :, 0]
        points = np.empty((count + 1, 3))
        points[0] = self.config.entry_point
        points[1:] = points[0] + np.cumsum(0.5 * (tangents[:-1] + tangents[1:]) * spacing, axis=0)
        return WireState(time=time, inserted_length=inserted_length, rotation=rotation, centreline=points,
                         tangents=tangents, diameter=self.config.diameter)


def _running_products(matrices: np.ndarray) -> np.ndarray:
    """(n,3,3) running products M0, M0 M1, ..., M0 ... Mn-1 as a parallel prefix scan:
    log2(n) batched matmuls instead of n Python-level ones (the 400 Hz driver builds
    a wire state per sample)."""
    products = matrices.copy()
    stride = 1
    while stride < len(products):
        products[stride:] = products[:-stride] @ products[stride:]  # right side is evaluated first: old values
        stride *= 2
    return products


def _frame_with_tangent(tangent: np.ndarray) -> np.ndarray:
    """An orthonormal frame whose first column is `tangent`."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(tangent[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    normal = np.cross(helper, tangent)
    normal /= np.linalg.norm(normal)
    return np.column_stack([tangent, normal, np.cross(tangent, normal)])


def discrete_curvature(points: np.ndarray) -> np.ndarray:
    """Curvature (1/m) at interior points of a polyline from the turning angle per unit length."""
    segments = np.diff(points, axis=0)
    lengths = np.linalg.norm(segments, axis=1)
    unit = segments / lengths[:, None]
    cosine = np.clip(np.einsum("ij,ij->i", unit[:-1], unit[1:]), -1.0, 1.0)
    return np.arccos(cosine) / (0.5 * (lengths[:-1] + lengths[1:]))
