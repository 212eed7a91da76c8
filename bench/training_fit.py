"""Do the networks underfit? Mean Dice and clDice of checkpoints on training frames, beside
the held-out set's, each at its own threshold (0.5 unless the checkpoint stores one).

    scripts/env.sh python bench/training_fit.py CHECKPOINT [CHECKPOINT ...]

A checkpoint that scores about the same on frames it trained on as on held-out
ones is limited by its capacity, not by the data; one far better on the
training frames overfits. With several checkpoints, each later one is compared
with the first frame by frame over all held-out sets together, with a 95 %
bootstrap interval over their poses: does a change carry over to every pose
the training never saw, not just to one set's? (Fewer than about ten poses
make that interval coarse and too narrow: pool sets.)
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

from bench_segmentation import DEFAULT_HELDOUT, frame_poses, load_set, set_record  # noqa: E402
from guidewire.segmentation.inference import Segmenter  # noqa: E402
from guidewire.segmentation.metrics import cldice, dice, paired_bootstrap  # noqa: E402


def frame_scores(segmenter: Segmenter, images, masks) -> tuple[list[float], list[float]]:
    """Dice and clDice of each frame."""
    predictions = [segmenter.probability(image) >= segmenter.threshold for image in images]
    return [dice(p, m) for p, m in zip(predictions, masks)], [cldice(p, m) for p, m in zip(predictions, masks)]


def pooled_groups(folders, sets) -> np.ndarray:
    """One label per held-out frame of all sets together: its set and pose (its own frame where a
    set records no poses), so that the bootstrap resamples the poses of every set at once."""
    labels = []
    for number, (folder, (images, _)) in enumerate(zip(folders, sets)):
        poses = frame_poses(set_record(folder), len(images))
        labels += [f"{number}:{pose}" for pose in (np.arange(len(images)) if poses is None else poses)]
    return np.unique(labels, return_inverse=True)[1]


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
    arguments = sys.argv[1:] if argv is None else argv
    print("    scripts/env.sh python bench/training_fit.py " + shlex.join(arguments) + "\n")
    print(f"Every {args.every}th frame of {args.train} ({len(train_images)}) and all of "
          + ", ".join(f"{folder} ({len(images)})" for folder, (images, _) in zip(args.heldout, heldout_sets))
          + "; mean per frame, %")
    columns = ["train"] + [folder.name for folder in args.heldout]
    print("| checkpoint | threshold | " + " | ".join(f"{c} Dice | {c} clDice" for c in columns) + " |")
    print("|---|---|" + "---|---|" * len(columns))
    pooled_dice = []
    for checkpoint in args.checkpoints:
        segmenter = Segmenter(checkpoint, threads=2)
        scores = [frame_scores(segmenter, images, masks)
                  for images, masks in [(train_images, train_masks), *heldout_sets]]
        print(f"| {checkpoint} | {segmenter.threshold:.2f} | "
              + " | ".join(f"{100 * np.mean(dices):.2f} | {100 * np.mean(cldices):.2f}" for dices, cldices in scores)
              + " |")
        pooled_dice.append(np.concatenate([dices for dices, _ in scores[1:]]))
    if len(args.checkpoints) > 1:
        groups = pooled_groups(args.heldout, heldout_sets)
        print(f"\nEach checkpoint minus the first, Dice per frame over all {len(groups)} held-out frames together "
              f"(points of %); 95 % bootstrap interval over their {groups.max() + 1} poses (a set without pose "
              "records counts each frame as one; 10,000 resamples, seed 0)")
        print("| checkpoint | Dice difference | interval |")
        print("|---|---|---|")
        for checkpoint, dices in zip(args.checkpoints[1:], pooled_dice[1:]):
            mean, low, high = paired_bootstrap(dices, pooled_dice[0], groups)
            print(f"| {checkpoint} | {100 * mean:+.2f} | {100 * low:+.2f} .. {100 * high:+.2f} |")


if __name__ == "__main__":
    main()
