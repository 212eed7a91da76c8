"""Tip within 10 px with and without bridging gaps in the mask (guidewire.segmentation.centreline):
the shipped FGA-Net's masks on the first COUNT frames of A (own generator, held out), B and D (never
seen), each centreline extracted with max_gap_px = fraction x the image's larger side.

    scripts/env.sh python bench/bench_tip_gap.py --count 64 --sets A,B,D
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_segmentation_cross import SETS, TIP_RADIUS_PX, ensure_set, load_frames  # noqa: E402
from guidewire.preprocessing import field_of_view  # noqa: E402
from guidewire.segmentation.centreline import MAX_GAP_FRACTION, extract_centreline  # noqa: E402
from guidewire.segmentation.inference import Segmenter  # noqa: E402

FRACTIONS = (0.0, 0.15, MAX_GAP_FRACTION, 0.5)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--sets", default="A,B,D")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    segmenter = Segmenter()
    print(f"`scripts/env.sh python bench/bench_tip_gap.py {shlex.join(argv or sys.argv[1:])}`\n")
    print("| set | frames | " + " | ".join(f"gap {f:.2f}" for f in FRACTIONS) + " |")
    print("|---|---|" + "---|" * len(FRACTIONS))
    for name in args.sets.split(","):
        ensure_set(name, SETS[name])
        images, _, tips, _ = load_frames(SETS[name], args.count)
        masks = [segmenter.probability(image) >= segmenter.threshold for image in images]
        rates = []
        for fraction in FRACTIONS:
            within = []
            for mask, image, tip in zip(masks, images, tips):
                line = extract_centreline(mask, valid=field_of_view(image, segmenter.preprocessing),
                                          max_gap_px=fraction * max(image.shape))
                within.append(line is not None and np.hypot(*(line.tip - np.asarray(tip))) <= TIP_RADIUS_PX)
            rates.append(100 * np.mean(within))
        print(f"| {name} | {len(images)} | " + " | ".join(f"{r:.1f} %" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
