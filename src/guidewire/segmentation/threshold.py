"""Choose a checkpoint's wire threshold on training frames and store it in the checkpoint.

    python -m guidewire.segmentation.threshold CHECKPOINT DATA [--every 8]

DATA is an images/ + masks/ folder the network trained on, never the held-out set: the
threshold is part of the model. The one with the best mean Dice on every N-th frame is
written into the checkpoint's metadata, which the Segmenter and the node read (0.5 for a
checkpoint without one). Patch sampling centred on the wire and whole-frame training see
the wire at different rates, so a network's best cut need not be 0.5.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from guidewire.segmentation.inference import Segmenter, load_checkpoint, save_checkpoint
from guidewire.segmentation.metrics import best_threshold

CANDIDATES = np.round(np.arange(0.2, 0.81, 0.05), 2)


def choose_threshold(checkpoint: str | Path, data: str | Path, every: int = 8,
                     threads: int = 0) -> tuple[float, dict[float, float]]:
    """Best threshold on every `every`-th frame of `data`, stored into `checkpoint`; and the sweep."""
    image_paths = sorted((Path(data) / "images").glob("*.png"))[::every]
    if not image_paths:
        raise FileNotFoundError(f"no images/*.png under {data}")
    segmenter = Segmenter(checkpoint, threads=threads)
    probabilities, masks = [], []
    for image_path in image_paths:
        image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(Path(data) / "masks" / image_path.name), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise ValueError(f"unreadable image or missing mask: {image_path}")
        probabilities.append(segmenter.probability(image))
        masks.append(mask > 0)
    threshold, sweep = best_threshold(probabilities, masks, CANDIDATES)
    network, meta = load_checkpoint(checkpoint)
    meta.update(threshold=threshold, threshold_chosen_on={"data": str(data), "every": every,
                                                          "frames": len(image_paths)})
    save_checkpoint(checkpoint, network, **meta)
    return threshold, sweep


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="model.pt to update")
    parser.add_argument("data", help="training folder with images/ and masks/")
    parser.add_argument("--every", type=int, default=8, help="use every N-th frame")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    threshold, sweep = choose_threshold(args.checkpoint, args.data, args.every, args.threads)
    print("| threshold | mean Dice % |\n|---|---|")
    for candidate, score in sweep.items():
        print(f"| {candidate:.2f} | {100 * score:.2f} |")
    print(f"{args.checkpoint}: threshold {threshold:.2f}")


if __name__ == "__main__":
    main()
