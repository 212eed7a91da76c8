"""Two trained learned reconstructions on the same held-out wires, wire by wire: the paired difference of
each station-pairing error with its 95 % interval over wires (1.96 sd / sqrt(n)), so two training regimes
can be told apart from the wire-to-wire spread (bench_reconstruction_learned.py gives only the means).

    scripts/env.sh python bench/compare_learned_models.py --b out/fusion/model_large [--a DIR] [--data DIR]

--a defaults to the shipped networks. The interval covers the choice of wires, not the training run's
own randomness (one run per regime).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from guidewire.reconstruction.learned import LearnedReconstructor
from guidewire.reconstruction.metrics import station_errors
from guidewire.reconstruction.train_learned import VARIANTS, load_samples

ROWS = [("image only", "encdec", "image"), ("magnetic alone", "encdec", "magnetic"),
        ("encoder-decoder fusion", "encdec", "fusion"), ("+ KNN", "knn", "fusion"),
        ("full model", "full", "fusion")]
KEYS = ("rmse", "mae_z", "hausdorff", "tip")


def per_wire(weights, samples) -> dict:
    """{row: {metric: array over wires}} in mm."""
    models = {variant: LearnedReconstructor(weights, variant) for variant in VARIANTS}
    out = {}
    for label, variant, stage in ROWS:
        errors = [station_errors(models[variant].reconstruct(s, stage), np.asarray(s["points"], float)).as_mm()
                  for s in samples]
        out[label] = {key: np.array([e[key] for e in errors]) for key in KEYS}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, help="model folder A (default: the shipped networks)")
    parser.add_argument("--b", type=Path, required=True, help="model folder B")
    parser.add_argument("--data", type=Path, default=Path("out/fusion/heldout"))
    args = parser.parse_args(argv)
    samples = load_samples(args.data)
    a, b = per_wire(args.a, samples), per_wire(args.b, samples)
    n = len(samples)
    print(f"{n} wires from {args.data}; A = {args.a or 'shipped'}, B = {args.b}; mm, B - A with 95 % interval; "
          "tip: medians A / B, mean difference")
    print("| model | " + " | ".join(f"{key} A | {key} B | B - A" for key in KEYS) + " | B better on |")
    print("|---|" + "---|---|---|" * len(KEYS) + "---|")
    for label, _, _ in ROWS:
        cells = []
        for key in KEYS:
            centre = np.median if key == "tip" else np.mean
            difference = b[label][key] - a[label][key]
            half = 1.96 * difference.std(ddof=1) / np.sqrt(n)
            cells.append(f"{centre(a[label][key]):.2f} | {centre(b[label][key]):.2f} | "
                         f"{difference.mean():+.2f} ± {half:.2f}")
        better = int(np.sum(b[label]["rmse"] < a[label]["rmse"]))
        print(f"| {label} | " + " | ".join(cells) + f" | {better}/{n} (RMSE) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
