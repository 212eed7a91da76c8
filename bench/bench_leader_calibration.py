"""Is the leader fit's 1-sigma honest? |z error| <= 2 sigma for several path correlation lengths.

    scripts/env.sh python bench/bench_leader_calibration.py --cases 48 --seed 6000   # tuning seeds only

The insertions, labs and frames of bench_reconstruction_sequence.py (same generator, seeds and order, so
the same images), fed frame by frame through physics.leader_step, as reconstruct_with_leader does, scored
at 120-200 mm inserted. The path's correlation length (LeaderSettings.correlation_length) changes only
the 1-sigma that the fit reports, not the fit (physics._estimate), so each length is scored on the same
wires. Also: the path's own z error (path against the true wire at the same arc length) by distance
behind the tip and its correlation along the wire, and the wire's departure from where its tip really
passed (true wire now against the true tip at that inserted length): what the path's sigma has to cover.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

# First, before numpy loads: it pins the one BLAS thread the recorded numbers were made with.
from bench_reconstruction_sequence import GENERATORS, SCORED_FROM, run_sequences, sequence  # noqa: E402

import numpy as np  # noqa: E402

from guidewire.reconstruction import (ArrayField, PathTrack, WireMagnets, WirePrior, reconstruct,  # noqa: E402
                                      shape_errors)
from guidewire.reconstruction.physics import leader_step  # noqa: E402
from guidewire.reconstruction.metrics import paired_samples  # noqa: E402
from guidewire.reconstruction.views import arc_lengths, points_at  # noqa: E402
from guidewire.twin.lab import Lab, LabErrors, wire_state_from_centreline  # noqa: E402

BEHIND = (0.0, 0.015, 0.05, 0.08, 0.12, 0.2)  # m, bins of distance behind the tip
LAGS = (0.002, 0.004, 0.01, 0.02)  # m, along the path


def run_case(lab: Lab, generator: str, seed: int, magnets: WireMagnets, guidewire, lengths) -> dict:
    """Per scored frame that used the path: z errors and each length's sigma at the fit's points, their
    distance behind the tip, and the path's z error and the departure at each path point."""
    track = PathTrack()
    out = {"points": [], "path": [], "rmse": []}
    centrelines = sequence(generator, seed, guidewire)
    tips = np.array([c[-1] for c in centrelines])
    inserted = np.array([wire_state_from_centreline(c, guidewire.diameter).length for c in centrelines])
    for index, centreline in enumerate(centrelines):
        truth = wire_state_from_centreline(centreline, guidewire.diameter)
        case = lab.case(truth, LabErrors.typical(), seed, frame_seed=seed * 1000 + index)
        array = ArrayField(case.sensor_positions, case.field, case.background, case.noise, case.status == 0)
        prior = WirePrior(inserted_length=truth.length, entry_point=np.asarray(guidewire.entry_point),
                          entry_direction=np.asarray(guidewire.entry_direction), magnets=magnets)
        _, path, _ = leader_step(track, case.top_camera, case.top_centreline, prior, array)
        if path is None:
            continue
        if truth.length < SCORED_FROM - 1e-9:
            continue
        fits = [reconstruct(case.top_camera, case.top_centreline,
                            replace(prior, path=replace(path, correlation_length=length)), array)
                for length in lengths]
        paired, samples, along = paired_samples(fits[0].points, centreline)
        sigmas = [np.interp(along, arc_lengths(fit.points), fit.sigma) for fit in fits]
        out["points"].append(np.column_stack([truth.length - along, paired[:, 2] - samples[:, 2], *sigmas]))
        out["rmse"].append(shape_errors(fits[0].points, centreline).rmse)
        now = points_at(centreline, arc_lengths(centreline), path.along)
        passed = points_at(tips, inserted, path.along)
        out["path"].append((truth.length - path.along, path.positions[:, 2] - now[:, 2],
                            np.linalg.norm(now - passed, axis=1), now[:, 2] - passed[:, 2], path.along))
    return out


def report(results: dict, args, lengths, command: str, seconds: float) -> str:
    points = np.vstack([p for case in results.values() for p in case["points"]])
    behind, error = points[:, 0], np.abs(points[:, 1])
    covered = [np.mean(error <= 2 * points[:, 2 + i]) for i in range(len(lengths))]
    frames = sum(len(case["rmse"]) for case in results.values())
    lines = [
        "# Leader fit: is its 1-sigma honest? (path correlation length)", "",
        f"Command: `{command}`", "",
        f"{args.cases} insertions (seeds {args.seed}-{args.seed + args.cases - 1}, `{args.generator}` generator: "
        f"{GENERATORS[args.generator]}) as in bench_reconstruction_sequence.py, {frames} frames of 120-200 mm "
        f"that used the path ({len(points)} points, 1 mm apart), every lab error on; {seconds / 60:.0f} min on "
        "this 2-core machine. The correlation length changes the reported sigma only: the fits are the same "
        f"(RMSE {1000 * np.mean([r for c in results.values() for r in c['rmse']]):.2f} mm, mean over frames).", "",
        "## Points with abs z error <= 2 sigma, by correlation length", "",
        "| correlation length mm | all | " + " | ".join(f"{1000 * a:.0f}-{1000 * b:.0f} mm behind the tip"
                                                     for a, b in zip(BEHIND[:-1], BEHIND[1:])) + " |",
        "|---|---|" + "---|" * (len(BEHIND) - 1)]
    for i, length in enumerate(lengths):
        cells = [f"{100 * np.mean(error[m] <= 2 * points[m, 2 + i]):.1f} %"
                 for a, b in zip(BEHIND[:-1], BEHIND[1:]) for m in [(behind >= a) & (behind < b)]]
        lines.append(f"| {1000 * length:g} | {100 * covered[i]:.1f} % | " + " | ".join(cells) + " |")
    paths = [p for case in results.values() for p in case["path"]]
    path_behind = np.concatenate([p[0] for p in paths])
    path_z, departure, departure_z = (np.concatenate([p[i] for p in paths]) for i in (1, 2, 3))
    lines += ["", "## What the path's sigma covers, by distance behind the tip (RMS, mm)", "",
              "| behind the tip mm | path points | path z error | departure (3D) | departure z |",
              "|---|---|---|---|---|"]
    for a, b in zip(BEHIND[1:-1], BEHIND[2:]):
        m = (path_behind >= a) & (path_behind < b)
        lines.append(f"| {1000 * a:.0f}-{1000 * b:.0f} | {m.sum()} | "
                     + " | ".join(f"{1000 * np.sqrt(np.mean(v[m] ** 2)):.2f}" for v in (path_z, departure, departure_z))
                     + " |")
    sums = np.zeros((len(LAGS), 3))
    for p in paths:
        for k, lag in enumerate(LAGS):
            shifted = np.interp(p[4] + lag, p[4], p[1], right=np.nan)
            keep = np.isfinite(shifted)
            sums[k] += (np.sum(p[1][keep] * shifted[keep]), np.sum(p[1][keep] ** 2), np.sum(shifted[keep] ** 2))
    lines += ["", "Correlation of the path's z error between points along the wire (pooled over frames): "
              + ", ".join(f"{s[0] / np.sqrt(s[1] * s[2]):.2f} at {1000 * lag:g} mm" for s, lag in zip(sums, LAGS))
              + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", choices=tuple(GENERATORS), default="lumen")
    parser.add_argument("--cases", type=int, default=48)
    parser.add_argument("--seed", type=int, default=6000)
    parser.add_argument("--lengths-mm", type=float, nargs="+", default=[0.0, 3.0, 6.0, 9.0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "leader_calibration.md")
    args = parser.parse_args(argv)
    command = "scripts/env.sh python bench/bench_leader_calibration.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    lengths = [mm / 1000 for mm in args.lengths_mm]
    return run_sequences(args, lambda lab, seed, magnets, guidewire: run_case(lab, args.generator, seed, magnets,
                                                                              guidewire, lengths),
                         lambda results, seconds: report(results, args, lengths, command, seconds))


if __name__ == "__main__":
    sys.exit(main())
