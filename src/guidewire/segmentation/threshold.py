"""Choose a checkpoint's wire threshold on training frames and store it in the checkpoint.

    python -m guidewire.segmentation.threshold CHECKPOINT DATA [--every 8] [--backend compiled --precision bfloat16]

DATA is an images/ + masks/ folder the network trained on, never the held-out set: the
threshold is part of the model. The one with the best mean Dice on every N-th frame is
written into the checkpoint's metadata, which the Segmenter and the node read (0.5 for a
checkpoint without one). Patch sampling centred on the wire and whole-frame training see
the wire at different rates, so a network's best cut need not be 0.5. --backend and
--precision choose it under the inference a deployment runs (bf16 rounding moves
probabilities near the cut).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from guidewire.segmentation.inference import BACKENDS, PRECISIONS, Segmenter, fitting_window, load_checkpoint, \
    save_checkpoint
from guidewire.segmentation.metrics import best_threshold
from guidewire.segmentation.train import read_pairs

CANDIDATES = np.round(np.arange(0.2, 0.81, 0.05), 2)


def choose_threshold(checkpoint: str | Path, data: str | Path, every: int = 8, threads: int = 0,
                     backend: str = "torch", precision: str = "float32", device: str = "cpu"
                     ) -> tuple[float, dict[float, float]]:
    """Best threshold on every `every`-th frame of `data`, stored into `checkpoint`; and the sweep."""
    pairs = read_pairs(data, every)  # as training reads them: 16-bit and colour frames included
    # One window of the frames' own size: a compiled model has one static size.
    window = max(fitting_window(*image.shape) for _, image, _ in pairs)
    segmenter = Segmenter(checkpoint, backend=backend, window=window, threads=threads, precision=precision,
                          device=device)
    probabilities = [segmenter.probability(image) for _, image, _ in pairs]
    threshold, sweep = best_threshold(probabilities, [mask for _, _, mask in pairs], CANDIDATES)
    network, meta = load_checkpoint(checkpoint)
    meta.update(threshold=threshold, threshold_chosen_on={"data": str(data), "every": every, "frames": len(pairs),
                                                          "backend": backend, "precision": precision})
    save_checkpoint(checkpoint, network, **meta)
    return threshold, sweep


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="model.pt to update")
    parser.add_argument("data", help="training folder with images/ and masks/")
    parser.add_argument("--every", type=int, default=8, help="use every N-th frame")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--device", default="cpu", help="torch device for the torch backend, e.g. cuda")
    args = parser.parse_args(argv)
    threshold, sweep = choose_threshold(args.checkpoint, args.data, args.every, args.threads, args.backend,
                                        args.precision, args.device)
    print("| threshold | mean Dice % |\n|---|---|")
    for candidate, score in sweep.items():
        print(f"| {candidate:.2f} | {100 * score:.2f} |")
    print(f"{args.checkpoint}: threshold {threshold:.2f}")


if __name__ == "__main__":
    main()
