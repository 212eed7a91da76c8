"""Do the networks underfit? Mean Dice and clDice of checkpoints on training frames, beside
the held-out set's, each at its own threshold (0.5 unless the checkpoint stores one).

    scripts/env.sh python bench/training_fit.py CHECKPOINT [CHECKPOINT ...]

A checkpoint that scores about the same on frames it trained on as on held-out
ones is limited by its capacity, not by the data; one far better on the
training frames overfits.
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

from bench_segmentation import DEFAULT_HELDOUT, load_set  # noqa: E402
from guidewire.segmentation.inference import Segmenter  # noqa: E402
from guidewire.segmentation.metrics import cldice, dice  # noqa: E402


def mean_scores(segmenter: Segmenter, images, masks) -> tuple[float, float]:
    predictions = [segmenter.probability(image) >= segmenter.threshold for image in images]
    return (100 * float(np.mean([dice(p, m) for p, m in zip(predictions, masks)])),
            100 * float(np.mean([cldice(p, m) for p, m in zip(predictions, masks)])))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--train", type=Path, default=ROOT / "out" / "segmentation" / "train_large")
    parser.add_argument("--heldout", type=Path, nargs="+", default=[DEFAULT_HELDOUT],
                        help="one or more held-out sets, each scored in its own columns")
    parser.add_argument("--every", type=int, default=8, help="use every N-th training frame (all poses)")
    args = parser.parse_args(argv)
    for folder in (args.train, *args.heldout):
        if not (folder / "frames.jsonl").is_file():
            parser.error(f"{folder} holds no data set: write it with the command in the model card "
                         "(src/guidewire/segmentation/weights/MODEL_CARD.md)")
    train_images, train_masks, _ = load_set(args.train)
    train_images, train_masks = train_images[::args.every], train_masks[::args.every]
    heldout_sets = [load_set(folder)[:2] for folder in args.heldout]
    print("    scripts/env.sh python bench/training_fit.py " + shlex.join(sys.argv[1:] if argv is None else argv) + "\n")
    print(f"Every {args.every}th frame of {args.train} ({len(train_images)}) and all of "
          + ", ".join(f"{folder} ({len(images)})" for folder, (images, _) in zip(args.heldout, heldout_sets))
          + "; mean per frame, %")
    columns = ["train"] + [folder.name for folder in args.heldout]
    print("| checkpoint | threshold | " + " | ".join(f"{c} Dice | {c} clDice" for c in columns) + " |")
    print("|---|---|" + "---|---|" * len(columns))
    for checkpoint in args.checkpoints:
        segmenter = Segmenter(checkpoint, threads=2)
        scores = [mean_scores(segmenter, images, masks)
                  for images, masks in [(train_images, train_masks), *heldout_sets]]
        print(f"| {checkpoint} | {segmenter.threshold:.2f} | "
              + " | ".join(f"{dice_score:.2f} | {cldice_score:.2f}" for dice_score, cldice_score in scores) + " |")


if __name__ == "__main__":
    main()
