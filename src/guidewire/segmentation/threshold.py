"""Choose a checkpoint's wire threshold and confidence cut on training frames; store both in it.

    python -m guidewire.segmentation.threshold CHECKPOINT DATA [--every 8] [--backend compiled --precision bfloat16]

DATA is an images/ + masks/ folder the network trained on, never the held-out set: the
threshold is part of the model. The one with the best mean Dice on every N-th frame is
written into the checkpoint's metadata, which the Segmenter and the node read (0.5 for a
checkpoint without one). Patch sampling centred on the wire and whole-frame training see
the wire at different rates, so a network's best cut need not be 0.5. --backend and
--precision choose it under the inference a deployment runs (bf16 rounding moves
probabilities near the cut).

The confidence cut is chosen on the same frames at that threshold: the one that best tells
frames whose mask failed (Dice < metrics.FAILED_DICE) from the rest. The node flags a frame
whose confidence falls below it (GuidewireSegmentation.low_confidence); 0 flags nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from guidewire.segmentation.backends import BACKENDS
from guidewire.segmentation.checkpoint import load_checkpoint, save_checkpoint
from guidewire.segmentation.frame import mask_confidence
from guidewire.segmentation.inference import Segmenter, fitting_window
from guidewire.segmentation.precision import PRECISIONS
from guidewire.segmentation.metrics import FAILED_DICE, best_threshold, dice, failure_cut
from guidewire.segmentation.train import read_pairs

CANDIDATES = np.round(np.arange(0.2, 0.81, 0.05), 2)
CONFIDENCE_CANDIDATES = np.round(np.arange(0.5, 0.991, 0.01), 2)


def choose_threshold(checkpoint: str | Path, data: str | Path, every: int = 8, threads: int = 0,
                     backend: str = "torch", precision: str = "float32", device: str = "cpu"
                     ) -> tuple[float, dict[float, float], dict]:
    """Best threshold on every `every`-th frame of `data`, its sweep, and the confidence cut at that
    threshold with how it splits those frames; threshold and cut are stored into `checkpoint`."""
    pairs = read_pairs(data, every)  # as training reads them: 16-bit and colour frames included
    # One window of the frames' own size: a compiled model has one static size.
    window = max(fitting_window(*image.shape) for _, image, _ in pairs)
    segmenter = Segmenter(checkpoint, backend=backend, window=window, threads=threads, precision=precision,
                          device=device)
    probabilities = [segmenter.probability(image) for _, image, _ in pairs]
    truths = [mask for _, _, mask in pairs]
    threshold, sweep = best_threshold(probabilities, truths, CANDIDATES)
    wires = [probability >= threshold for probability in probabilities]
    confidence = np.array([mask_confidence(p, wire) for p, wire in zip(probabilities, wires)])
    failed = np.array([dice(wire, truth) for wire, truth in zip(wires, truths)]) < FAILED_DICE
    cut = failure_cut(confidence, failed, CONFIDENCE_CANDIDATES)
    flagged = confidence < cut
    split = {"failed_dice": FAILED_DICE, "failed_frames": int(failed.sum()),
             "failed_frames_flagged": int((flagged & failed).sum()),
             "other_frames_flagged": int((flagged & ~failed).sum())}
    network, meta = load_checkpoint(checkpoint)
    meta.update(threshold=threshold, confidence_cut=cut, confidence_cut_split=split,
                threshold_chosen_on={"data": str(data), "every": every, "frames": len(pairs),
                                     "backend": backend, "precision": segmenter.precision})
    save_checkpoint(checkpoint, network, **meta)
    return threshold, sweep, {"confidence_cut": cut, **split}


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
    threshold, sweep, cut = choose_threshold(args.checkpoint, args.data, args.every, args.threads, args.backend,
                                             args.precision, args.device)
    print("| threshold | mean Dice % |\n|---|---|")
    for candidate, score in sweep.items():
        print(f"| {candidate:.2f} | {100 * score:.2f} |")
    print(f"{args.checkpoint}: threshold {threshold:.2f}; confidence cut {cut['confidence_cut']:.2f}, which flags "
          f"{cut['failed_frames_flagged']} of the {cut['failed_frames']} frames with Dice < "
          f"{100 * cut['failed_dice']:.0f} % and {cut['other_frames_flagged']} of the others")


if __name__ == "__main__":
    main()
