"""Follow-the-leader: where the tip has been is where the body now lies.

A wire pushed through a vessel follows its tip: the point at arc length s
from the entry sits near where the tip was when the robot had inserted s (the
lumen lets it shift by a millimetre or two). One view leaves each body point's
depth open, but the tip, which carries the strongest magnet, is well placed by
the field; so the tips of earlier fits, binned by the inserted length at which
they were seen and smoothed, are a prior on the body of the current one
(WirePrior.path).

This holds for a wire in a vessel, not for a free rod whose whole shape moves
as it is pushed (the bench twin's pre-curved rod): the reconstruction node
keeps it off unless asked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guidewire.reconstruction.views import arc_lengths, points_at, polyline_length


@dataclass(frozen=True)
class LeaderPath:
    """Positions the tip passed through (bench frame, m), by arc length from the entry, with 1-sigma."""

    along: np.ndarray  # (m,) m, increasing
    positions: np.ndarray  # (m,3) m
    sigma: np.ndarray  # (m,) m, per point, the tip's uncertainty and the lumen's freedom together
    # m: the path's errors at two points d apart correlate by exp(-d / correlation_length) (0: independent)
    correlation_length: float = 0.0

    def correlation(self) -> np.ndarray:
        """(m,m) correlation of the path's errors between its points, per axis."""
        if self.correlation_length <= 0:
            return np.eye(len(self.along))
        return np.exp(-np.abs(self.along[:, None] - self.along[None, :]) / self.correlation_length)


@dataclass(frozen=True)
class LeaderSettings:
    bin_length: float = 0.002  # m of inserted length per bin: the tips seen within it are averaged
    # m, how far a body point may lie from where the tip passed (lumen, relaxation). Chosen on the tuning
    # sequences (bench_reconstruction_sequence.py --generator prefix, seeds 6000-6003, curvature_sigma 30):
    # 1, 1.5, 3 mm gave RMSE 1.48, 1.44, 1.41 mm and |z error| <= 2 sigma at 70, 73, 91 % of points.
    lumen_sigma: float = 0.003
    # m: a body point's departure from where its tip passed (where the lumen let it settle, 2.0-2.3 mm RMS)
    # and the smoothed tips' errors run on along the wire (path z error correlation 0.97 at 4 mm, 0.48 at
    # 20 mm), so neighbouring path points are not independent evidence. The fit still weighs them as
    # independent (whitening its rows for this correlation cost RMSE 1.27 -> 1.35 mm on lumen seeds 6000-6011,
    # 1.34 -> 1.64 on prefix 6000-6003) and reports its 1-sigma for correlated path errors (physics._estimate).
    # |z error| <= 2 sigma with 0 (independent), 3, 5, 6, 7, 9 mm: 86.2, 90.7, 93.7, 94.4, 95.1, 95.9 % of
    # points; with 6 mm 93.9-95.0 % at every distance from 15 to 200 mm behind the tip (lumen generator, tuning
    # seeds 6000-6047, bench/results/leader_calibration.md). Not modelled, as the data did not ask for it: a
    # departure growing with the push since the tip passed (it does not: 2.3 -> 2.0 mm from 15 to 200 mm
    # behind), a sigma growing with the path's curvature (left the points above 50 1/m at 86 -> 87 %).
    correlation_length: float = 0.006
    # m: the pre-shaped distal section (straight, angled or J) is shaped by the wire, not by the vessel, so
    # the tips seen over the last stretch of insertion say nothing about where that section lies now.
    distal_free: float = 0.015
    # 1/m, the spread of the path's curvature about straight: a vessel wire turns at up to about 60 1/m
    curvature_sigma: float = 60.0
    min_sigma: float = 0.0003  # m: a fit's tip sigma is never trusted below this
    placed_sigma: float = 0.002  # m: where a frame's own fit is this certain, it can check the path
    # Mean squared normalised distance between the path and the frames' own well-placed points (averaged
    # over recent frames, a weight of disagreement_memory each) beyond which the wire is taken not to follow
    # its tip. On the tuning insertions single frames reached 3.1 on wires that follow their tip (prefix
    # generator, seeds 6000-6001) and 1-14 on the twin's free rod (seeds 7-8).
    max_disagreement: float = 3.0
    disagreement_memory: float = 0.3


class PathTrack:
    """Tips of earlier fits by inserted length: the body prior of the current fit.

    Each frame's own fit (without this prior, so that nothing is counted twice) adds its tip, weighted by
    its inverse variance: the tip carries the strongest magnet and is the best placed point of a one-view
    fit. Adding its body points as well, or those at the other magnets, did worse on the tuning sequences
    (RMSE 1.4 -> 2.4 and 1.6 mm, unsmoothed, lumen_sigma 1.5 mm): their sigmas understate their errors."""

    def __init__(self, settings: LeaderSettings = LeaderSettings()):
        self.settings = settings
        # bin -> weighted sums of the tip positions and of their inserted lengths, and the sum of the weights
        self._bins: dict[int, tuple[np.ndarray, float, float]] = {}
        self.recent_disagreement = 0.0

    def __len__(self) -> int:
        return len(self._bins)

    def clear(self) -> None:
        self._bins.clear()
        self.recent_disagreement = 0.0

    def add(self, inserted_length: float, tip_position, tip_sigma: float) -> None:
        """Record a fit's tip (m, 1-sigma m) seen with the wire inserted `inserted_length` m."""
        position = np.asarray(tip_position, float).reshape(3)
        if not (np.isfinite(position).all() and np.isfinite(tip_sigma) and np.isfinite(inserted_length)
                and inserted_length > 0):
            raise ValueError("a tip for the track needs a finite position and sigma and a positive inserted length")
        weight = max(float(tip_sigma), self.settings.min_sigma) ** -2.0
        key = int(inserted_length // self.settings.bin_length)
        positions, lengths, weights = self._bins.get(key, (np.zeros(3), 0.0, 0.0))
        self._bins[key] = (positions + weight * position, lengths + weight * inserted_length, weights + weight)

    def follows(self, path: LeaderPath, points, sigma, inserted_length: float) -> bool:
        """Whether the wire still follows its tip: this frame's disagreement with the path folded into the
        recent ones, within max_disagreement. A spike of one frame does not refuse the path; a wire whose
        shape moves away from it (a free rod) does within a few frames."""
        memory = self.settings.disagreement_memory
        now = self.disagreement(path, points, sigma, inserted_length)
        self.recent_disagreement = (1 - memory) * self.recent_disagreement + memory * now
        return self.recent_disagreement <= self.settings.max_disagreement

    def disagreement(self, path: LeaderPath, points, sigma, inserted_length: float) -> float:
        """Mean squared distance, in units of the combined 1-sigma, between `path` and a fit's points (entry
        -> tip, arc lengths scaled to `inserted_length`) where the fit is within placed_sigma; 0 when none is."""
        points, sigma = np.asarray(points, float), np.asarray(sigma, float)
        along = arc_lengths(points) * (inserted_length / polyline_length(points))
        placed = (sigma <= self.settings.placed_sigma) & (along >= path.along[0]) & (along <= path.along[-1])
        if not placed.any():
            return 0.0
        on_path = points_at(path.positions, path.along, along[placed])
        combined = np.hypot(sigma[placed], np.interp(along[placed], path.along, path.sigma))
        return float(np.mean((np.linalg.norm(points[placed] - on_path, axis=1) / combined) ** 2))

    def path(self, inserted_length: float) -> LeaderPath | None:
        """The prior for a wire inserted `inserted_length` m: the bins short of its distal section; None when
        none is there."""
        settings = self.settings
        reach = inserted_length - settings.distal_free
        keys = sorted(k for k in self._bins if (k + 1) * settings.bin_length <= reach)
        if not keys:
            return None
        positions, lengths, weights = (np.array([self._bins[k][i] for k in keys]) for i in range(3))
        along, seen, seen_sigma = lengths / weights, positions / weights[:, None], weights ** -0.5
        smooth, smooth_sigma = _robust_smooth(along, seen, seen_sigma, settings.curvature_sigma,
                                              settings.bin_length / 2)
        return LeaderPath(along=along, positions=smooth, sigma=np.hypot(smooth_sigma, settings.lumen_sigma),
                          correlation_length=settings.correlation_length)


def _robust_smooth(along, seen, sigma, curvature_sigma, min_spacing, rounds: int = 5, huber: float = 2.0):
    """The path through the binned sightings that a wire can take: weighted least squares with a prior on
    its curvature (second differences over arc length), the sightings' weights cut by Huber's rule so
    a fit that went wrong (a far tip misplaced by centimetres) does not bend it. (m, m): positions, 1-sigma."""
    count = len(along)
    if count < 3:
        return seen, sigma
    # Second differences of unevenly spaced points, each scaled to curvature (1/m) and then by its prior;
    # spacings floored at `min_spacing` (two bins' means can lie a hair apart, which would make it stiff).
    rows = np.zeros((count - 2, count))
    for j in range(count - 2):
        left, right = max(along[j + 1] - along[j], min_spacing), max(along[j + 2] - along[j + 1], min_spacing)
        rows[j, j:j + 3] = np.array([2 / (left * (left + right)), -2 / (left * right), 2 / (right * (left + right))])
    smoothness = rows.T @ rows / curvature_sigma ** 2
    weights = sigma ** -2.0
    for _ in range(rounds):
        normal = smoothness + np.diag(weights)
        smooth = np.linalg.solve(normal, weights[:, None] * seen)
        scaled = np.linalg.norm(seen - smooth, axis=1) / sigma
        weights = sigma ** -2.0 * np.minimum(1.0, huber / np.maximum(scaled, 1e-12))
    return smooth, np.sqrt(np.diag(np.linalg.inv(normal)))
