"""Can a controller trust the perception now? One verdict with its reasons, from the ages of the
inputs and of the last fit, how sure the segmentation was, the fit's residual and whether the
reconstructed length agrees with the robot's commanded insertion."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrustBounds:
    max_input_age: float = 1.0  # s, since the newest message of each input
    max_fit_age: float = 2.0  # s, since the last published fit
    max_chi2_per_dof: float = 10.0  # the fit's weighted residual per degree of freedom
    length_tolerance: float = 0.005  # m, |reconstructed - commanded| inserted length


def length_disagreement(reconstructed: float, commanded: float, tolerance: float) -> str:
    """'' when the reconstructed length matches the robot's insertion within tolerance, else why not."""
    error = reconstructed - commanded
    if abs(error) <= tolerance:
        return ""
    return (f"reconstructed length {reconstructed * 1000:.1f} mm vs commanded {commanded * 1000:.1f} mm "
            f"({error * 1000:+.1f} mm, tolerance {tolerance * 1000:.1f} mm)")


def distrust_reasons(input_ages: dict[str, float | None], fit_age: float | None, chi2_per_dof: float,
                     length_problem: str, segmentation_problem: str, bounds: TrustBounds) -> list[str]:
    """Why the perception cannot be trusted now; [] when it can. An age of None: never received."""
    reasons = []
    for name, age in input_ages.items():
        if age is None:
            reasons.append(f"no {name} received")
        elif age > bounds.max_input_age:
            reasons.append(f"{name} stale ({age:.1f} s)")
    if fit_age is None:
        reasons.append("no fit yet")
    elif fit_age > bounds.max_fit_age:
        reasons.append(f"last fit {fit_age:.1f} s ago")
    elif not chi2_per_dof <= bounds.max_chi2_per_dof:  # NaN too
        reasons.append(f"fit residual chi2/dof {chi2_per_dof:.2f} above {bounds.max_chi2_per_dof:g}")
    if segmentation_problem:
        reasons.append(segmentation_problem)
    if length_problem:
        reasons.append(length_problem)
    return reasons
