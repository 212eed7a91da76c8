"""The magnetic-fusion paper's learned reconstruction on held-out wires: its Table 1 and Table 2 rows.

    scripts/env.sh python -m guidewire.twin.fusion_set out/fusion/heldout --count 40 --seed 5000 --wires vessel
    scripts/env.sh python bench/bench_reconstruction_learned.py [--data out/fusion/heldout] [--weights DIR]

The held-out samples are the same 40 vessel wires, seeds and lab errors as
bench/bench_reconstruction.py's (every lab error on, classical segmenter).
The networks are the shipped ones (src/guidewire/reconstruction/weights, trained on
the twin's rod-model wires; MODEL_CARD.md there says how).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from guidewire.reconstruction import shape_errors
from guidewire.reconstruction.learned import LearnedReconstructor
from guidewire.reconstruction.train_learned import VARIANTS, load_samples

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = [("image only (small depth network, aligned on the platform)", "encdec", "image"),
        ("magnetic encoder-decoder alone (image x, y)", "encdec", "magnetic"),
        ("+ magnetic encoder-decoder (fusion, no KNN, no attention)", "encdec", "fusion"),
        ("+ KNN", "knn", "fusion"),
        ("+ cross-attention (the paper's full model)", "full", "fusion")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("out/fusion/heldout"))
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "reconstruction_learned.md")
    args = parser.parse_args(argv)
    command = "scripts/env.sh python bench/bench_reconstruction_learned.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    samples = load_samples(args.data)
    models = {variant: LearnedReconstructor(args.weights, variant) for variant in VARIANTS}
    lines = ["# The paper's learned reconstruction on held-out wires (Tables 1 and 2)", "",
             f"Command: `{command.strip()}`", "",
             f"{len(samples)} held-out samples from {args.data} (vessel-following wires, every lab error on, "
             "centrelines from the classical segmenter). Means over wires, mm; errors against the true point of "
             "each centreline station (128 per wire).", "",
             "| model | RMSE | MAE | MAE_z | Hausdorff | tip | median tip | ms per frame |",
             "|---|---|---|---|---|---|---|---|"]
    for label, variant, stage in ROWS:
        rows, seconds = [], []
        for sample in samples:
            start = time.perf_counter()
            points = models[variant].reconstruct(sample, stage)
            seconds.append(time.perf_counter() - start)
            rows.append(shape_errors(points, np.asarray(sample["points"], float)).as_mm())
        mean = {key: np.mean([row[key] for row in rows]) for key in rows[0]}
        lines.append(f"| {label} | {mean['rmse']:.2f} | {mean['mae']:.2f} | {mean['mae_z']:.2f} | "
                     f"{mean['hausdorff']:.2f} | {mean['tip']:.2f} | {np.median([r['tip'] for r in rows]):.2f} | "
                     f"{1000 * np.median(seconds):.0f} |")
    lines += ["", "Paper (its own bench and wires): MiDaS v3 image only 2.842 / 2.234 / 1.325 / 8.754 mm "
              "(RMSE / MAE / MAE_z / Hausdorff), fused 2.045 / 1.738 / 0.285 / 7.603 mm. The physics fusion on the "
              "same wires: bench/results/reconstruction.md.", ""]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
