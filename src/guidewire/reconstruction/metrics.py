"""Errors of a reconstructed wire against the true one, in metres.

Correspondence: both centrelines are ordered entry -> tip. The true wire is
sampled every 1 mm of arc length; each sample is paired with the estimate's
point at the same arc length from the entry (the estimate's last point when
it is shorter). RMSE and MAE are over the paired 3D distances, MAE_z over
their |dz| (bench z, away from the array), Hausdorff is the symmetric
Hausdorff distance between the two point sets (no pairing), tip error the
distance between the two last points. station_errors is the pointwise rule of
a network that regresses one point per labelled station (the learned
reconstruction's, and its paper's): each point against its own label.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import directed_hausdorff

from guidewire.reconstruction.views import arc_lengths, points_at, resample_by_spacing


@dataclass(frozen=True)
class ShapeErrors:
    rmse: float
    mae: float
    mae_z: float
    hausdorff: float
    tip: float

    def as_mm(self) -> dict:
        return {key: 1000.0 * value for key, value in asdict(self).items()}


def paired_samples(estimate: np.ndarray, truth: np.ndarray, spacing: float = 0.001):
    """The correspondence rule: (estimate points paired, truth samples every `spacing`, arc length of
    each pair from the entry along the estimate, clamped to its length)."""
    truth_samples = resample_by_spacing(np.asarray(truth, float), spacing)
    estimate = np.asarray(estimate, float)
    cumulative = arc_lengths(estimate)
    clamped = np.clip(arc_lengths(truth_samples), 0.0, cumulative[-1])
    return points_at(estimate, cumulative, clamped), truth_samples, clamped


def z_coverage(estimate: np.ndarray, sigma: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of the paired points (paired_samples) whose |z error| is within 2 of the estimate's
    1-sigma there: about 95 % for an honest sigma."""
    paired, samples, along = paired_samples(estimate, truth)
    sigma_there = np.interp(along, arc_lengths(np.asarray(estimate, float)), sigma)
    return float(np.mean(np.abs(paired[:, 2] - samples[:, 2]) <= 2 * sigma_there))


def shape_errors(estimate: np.ndarray, truth: np.ndarray, spacing: float = 0.001) -> ShapeErrors:
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    paired, truth_samples, _ = paired_samples(estimate, truth, spacing)
    difference = paired - truth_samples
    distance = np.linalg.norm(difference, axis=1)
    estimate_samples = resample_by_spacing(estimate, spacing)
    hausdorff = max(directed_hausdorff(estimate_samples, truth_samples)[0],
                    directed_hausdorff(truth_samples, estimate_samples)[0])
    return ShapeErrors(rmse=float(np.sqrt(np.mean(distance ** 2))), mae=float(distance.mean()),
                       mae_z=float(np.abs(difference[:, 2]).mean()), hausdorff=float(hausdorff),
                       tip=float(np.linalg.norm(estimate[-1] - truth[-1])))


def station_errors(estimate: np.ndarray, truth: np.ndarray, spacing: float = 0.001) -> ShapeErrors:
    """Errors with point i of the estimate paired with point i of the truth (same count, same order):
    arc-length pairing would charge a jittery estimate (longer than the wire) with an along-wire slip
    as well. Hausdorff (1 mm resampling) and tip as shape_errors."""
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    if estimate.shape != truth.shape:
        raise ValueError(f"station errors need one estimate per station: {estimate.shape} vs {truth.shape}")
    difference = estimate - truth
    distance = np.linalg.norm(difference, axis=1)
    a, b = resample_by_spacing(estimate, spacing), resample_by_spacing(truth, spacing)
    hausdorff = max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])
    return ShapeErrors(rmse=float(np.sqrt(np.mean(distance ** 2))), mae=float(distance.mean()),
                       mae_z=float(np.abs(difference[:, 2]).mean()), hausdorff=float(hausdorff),
                       tip=float(np.linalg.norm(estimate[-1] - truth[-1])))
