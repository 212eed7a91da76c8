"""The magnetic-fusion paper's learned reconstruction on held-out wires: its Table 1 and Table 2 rows.

    scripts/env.sh python -m guidewire.twin.fusion_set out/fusion/heldout --count 40 --seed 5000 --wires vessel
    scripts/env.sh python bench/bench_reconstruction_learned.py [--data out/fusion/heldout] [--weights DIR]
    (twin wires: fusion_set out/fusion/heldout_twin2 --count 40 --seed 6000, then --data that --out
    bench/results/reconstruction_learned_twin_wires.md)

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
from guidewire.reconstruction.depth import align_disparity
from guidewire.reconstruction.learned import LearnedReconstructor, image_points, sample_camera, station_disparity
from guidewire.reconstruction.metrics import station_errors
from guidewire.reconstruction.train_learned import VARIANTS, load_samples

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = [("image only, aligned on the true station depths (MiDaS's evaluation; no lab has them)", "encdec", "oracle"),
        ("image only (small depth network, aligned on the platform and the entry point)", "encdec", "image"),
        ("magnetic encoder-decoder alone (image x, y)", "encdec", "magnetic"),
        ("+ magnetic encoder-decoder (fusion, no KNN, no attention)", "encdec", "fusion"),
        ("+ KNN", "knn", "fusion"),
        ("+ cross-attention (the paper's full model)", "full", "fusion")]


def oracle_image(model: LearnedReconstructor, sample: dict) -> np.ndarray:
    """The image branch aligned as MiDaS's evaluation aligns: robust scale and shift in disparity against the
    true depth of the wire's own stations. A wire whose stations carry one depth (under MIN_SPREAD) is
    placed at their mean true depth."""
    camera, pixels = sample_camera(sample), np.asarray(sample["pixels"], float)
    shape = tuple(np.asarray(sample["shape"]).astype(int))
    stations = station_disparity(model.relative_disparity(sample["image"]), pixels, shape)
    depth = camera.to_camera(np.asarray(sample["points"], float))[:, 2]
    try:
        scale, shift = align_disparity(stations, depth, np.ones(len(depth), bool))
    except ValueError:
        scale, shift = 0.0, float(np.mean(1.0 / depth))
    return image_points(camera, pixels, 1.0 / np.maximum(scale * stations + shift, 1e-3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("out/fusion/heldout"))
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / "reconstruction_learned.md")
    args = parser.parse_args(argv)
    command = "scripts/env.sh python bench/bench_reconstruction_learned.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    samples = load_samples(args.data)
    seeds = sorted(int(path.stem) for path in args.data.glob("*.npz"))
    models = {variant: LearnedReconstructor(args.weights, variant) for variant in VARIANTS}
    lines = ["# The paper's learned reconstruction on held-out wires (Tables 1 and 2)", "",
             f"Command: `{command.strip()}`", "",
             f"{len(samples)} held-out samples from {args.data}, seeds {seeds[0]}-{seeds[-1]} (made by "
             "guidewire.twin.fusion_set: every lab error on, centrelines from the classical segmenter; never "
             "trained on). Means over wires, mm; errors against the true point of "
             "each centreline station (128 per wire; the paper's pointwise rule and the training loss's); the "
             "last column pairs by arc length instead (metrics.shape_errors, bench/results/reconstruction.md's "
             "rule), which also charges a jittery estimate's extra length as a slip along the wire. Networks: "
             f"{args.weights or 'the shipped ones (src/guidewire/reconstruction/weights, MODEL_CARD.md)'}.", "",
             "| model | RMSE | MAE | MAE_z | Hausdorff | tip | median tip | ms per frame | RMSE, arc-length pairing |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, variant, stage in ROWS:
        rows, seconds, along = [], [], []
        for sample in samples:
            start = time.perf_counter()
            points = oracle_image(models[variant], sample) if stage == "oracle" else \
                models[variant].reconstruct(sample, stage)
            seconds.append(time.perf_counter() - start)
            rows.append(station_errors(points, np.asarray(sample["points"], float)).as_mm())
            along.append(shape_errors(points, np.asarray(sample["points"], float)).as_mm()["rmse"])
        mean = {key: np.mean([row[key] for row in rows]) for key in rows[0]}
        lines.append(f"| {label} | {mean['rmse']:.2f} | {mean['mae']:.2f} | {mean['mae_z']:.2f} | "
                     f"{mean['hausdorff']:.2f} | {mean['tip']:.2f} | {np.median([r['tip'] for r in rows]):.2f} | "
                     f"{1000 * np.median(seconds):.0f} | {np.mean(along):.2f} |")
    lines += ["", "Paper (its own bench and wires): MiDaS v3 image only 2.842 / 2.234 / 1.325 / 8.754 mm "
              "(RMSE / MAE / MAE_z / Hausdorff), fused 2.045 / 1.738 / 0.285 / 7.603 mm. The physics fusion on the "
              "same wires: bench/results/reconstruction.md.", ""]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
