"""Cross-generator segmentation: networks trained on one generator, scored on frames of another.

    scripts/env.sh python bench/bench_segmentation_cross.py

Generator A is the project's own (guidewire.segmentation.synthetic: diffdrr DRRs of the bench's CT);
generator B is the independent validation renderer (guidewire.validation.fluoro_frames: procedural
anatomy, its own wire model, catheters, leads, soft shutters, display processing), written without
reading A. The shipped FGA-Net and the U-Net baseline were trained on A only; the ridge filter's scale
and threshold are chosen on A's training frames (seed 1000) for the A -> B direction and on B frames
of other seeds (20000+) for B -> A (`--ridge-filter frangi-elongated`, guidewire.segmentation.ridge: Frangi at
the wire's scales after a 3x3 median, then only long thin components; its threshold and minimum length are both
chosen there). Frames from a generator a model never saw are the number to
improve (issue 22), the own-generator row is the check that nothing was lost there.

Sets (written here if missing, into out/segmentation/):
- B: `python -m guidewire.validation.fluoro_frames out/segmentation/fluoro_b --seed 9000 --count 200`
- A held-out: `python -m guidewire.segmentation.synthetic out/segmentation/heldout_large --seed 3000
  --poses 16 --frames-per-pose 16` (the bench_segmentation.py set)
- A tuning (ridge filter only): seed 1000, 4 poses x 8 frames (the training set's first poses).
- D: a fourth generator, `guidewire.validation.cathlab_frames` (written independently of A, B and C), seed 70000,
  200 frames in out/segmentation/d22/score_d; only scored, never trained on or used for a choice.

The reverse direction for the networks (trained on B, scored on A): scripts/train_cross_b_recipe.sh trains on
B frames of other seeds (30000+) and scores with `--model NAME=CHECKPOINT --trained-on B`.

`--component-filter LENGTH,WIDTH` scores every network a second time, on the same probabilities, with only the
long thin components of its mask kept (Segmenter's min_component_length, a fraction of the frame's larger side,
and max_component_width_px); `--component-grid FOLDER` chooses the two on a folder of images/ and masks/ (mean
Dice over a small grid) and stops.

Columns: the paper's (AUC, Macro-F1, Dice, MIoU, OIoU) and clDice in %, the tip error (median px over
frames with a tip), tip within 10 px (% of all frames; a frame without a predicted tip counts as a
miss), frames where nothing was segmented, and 95 % bootstrap intervals of the mean Dice and clDice
(over frames for B, over poses for A).
"""
from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from guidewire.segmentation.centreline import MAX_GAP_FRACTION, extract_centreline  # noqa: E402
from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS  # noqa: E402
from guidewire.segmentation.inference import Segmenter, fitting_window  # noqa: E402
from guidewire.segmentation.metrics import (HEADER, best_threshold, bootstrap_mean, dice, evaluate_set,  # noqa: E402
                                            paired_bootstrap)
from guidewire.segmentation.ridge import frame_scale, frangi_dark_ridges, ridge_wire_map  # noqa: E402
from guidewire.preprocessing import PREPROCESSING, field_of_view  # noqa: E402

OUT = ROOT / "out" / "segmentation"
SETS = {"B": OUT / "fluoro_b", "A": OUT / "heldout_large", "D": OUT / "d22" / "score_d"}
RIDGE_TUNING = {"A": OUT / "tune_a", "B": OUT / "tune_b"}
SHIPPED_WIDTH_UNET = ROOT / "bench" / "checkpoints" / "unet_shipped_width.pt"
TIP_RADIUS_PX = 10.0
RIDGE_SIGMAS = (1.0, 1.5, 2.0)
# frangi-elongated: thresholds on Frangi's output over its scale (low ones too: with the set's scale the
# wire's response is far below the 99.9th percentile in most frames), and the minimum component length as a
# fraction of the frame's larger side (A is 256 px, B and D 512 px).
ELONGATED_THRESHOLDS = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ELONGATED_MIN_LENGTHS = (0.02, 0.04, 0.08, 0.16, 0.24, 0.32)
# The network's mask: minimum component length (fraction of the larger side; 0: none) and maximum mean width
# in px around the ridge baseline's 7 px (0: none; (0, 0) is the unfiltered mask).
COMPONENT_LENGTHS = (0.0, 0.04, 0.08, 0.16)
COMPONENT_WIDTHS = (0.0, 5.0, 7.0, 9.0)


def ensure_set(name: str, folder: Path) -> None:
    if (folder / "frames.json").is_file() or (folder / "frames.jsonl").is_file():
        return
    if name == "B" or folder == RIDGE_TUNING["B"]:
        from guidewire.validation.fluoro_frames import write_set

        write_set(folder, 9000 if name == "B" else 20000, 200 if name == "B" else 32)
        return
    if name == "D":
        from guidewire.validation.cathlab_frames import write_set

        write_set(folder, 70000, 200)
        return
    from guidewire.segmentation.synthetic import SyntheticSetConfig, write_folder

    config = SyntheticSetConfig(poses=16, frames_per_pose=16, seed=3000) if name == "A" else \
        SyntheticSetConfig(poses=4, frames_per_pose=8, seed=1000)
    write_folder(config, folder)


def load_frames(folder: Path, count: int | None = None):
    """Images, masks, tips (u, v) and a group label per frame (the pose for A's sets, else None),
    from either generator's folder layout."""
    if (folder / "frames.json").is_file():  # generator B
        frames = json.loads((folder / "frames.json").read_text())["frames"][:count]
        names = [(f["image"], f["mask"]) for f in frames]
        groups = None
    else:
        frames = [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]
        record = json.loads((folder / "set.json").read_text()) if (folder / "set.json").is_file() else None
        groups = np.arange(len(frames)) // record["frames_per_pose"] if record else None
        if count is not None and count < len(frames):  # spread over every pose
            chosen = np.linspace(0, len(frames) - 1, count).round().astype(int)
            frames = [frames[i] for i in chosen]
            groups = None if groups is None else groups[chosen]
        names = [("images/" + f["name"], "masks/" + f["name"]) for f in frames]
    images = [cv2.imread(str(folder / image), cv2.IMREAD_GRAYSCALE) for image, _ in names]
    masks = [cv2.imread(str(folder / mask), cv2.IMREAD_GRAYSCALE) > 0 for _, mask in names]
    return images, masks, [f["tip"] for f in frames], groups


def table_row(trained: str, label: str, scores, within, empty: int, groups, seconds: float) -> str:
    """One row of a set's table, in the header's columns."""
    return (f"| {trained} | {label} | " + " | ".join(scores.as_percent_row())
            + f" | {100 * within.mean():.1f} | {empty} | {interval(scores.dice_per_image, groups)} | "
            f"{interval(scores.cldice_per_image, groups)} | {seconds:.2f} |")


def test_time(args) -> dict:
    """The Segmenter's test-time augmentation of the command line."""
    return {"test_time_scales": tuple(float(v) for v in args.tta_scales.split(",")), "test_time_flips": args.tta_flips}


def component_grid(folder: Path, networks: dict, args) -> None:
    """Mean Dice on a folder of images/ and masks/ (same names) of each network's mask, unfiltered and
    through every (length, width) of the grid."""
    names = sorted(path.name for path in (folder / "images").glob("*.png"))
    images = [cv2.imread(str(folder / "images" / name), cv2.IMREAD_GRAYSCALE) for name in names]
    masks = [cv2.imread(str(folder / "masks" / name), cv2.IMREAD_GRAYSCALE) > 0 for name in names]
    print(f"\nComponent filter on the network's mask: mean Dice % on {len(images)} frames of "
          f"{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}")
    for name, checkpoint in networks.items():
        segmenter = Segmenter(checkpoint, threads=args.threads, preprocessing=args.preprocessing,
                              wire_width_px=args.wire_width or None, **test_time(args))
        maps = [segmenter.probability(image) for image in images]
        print(f"\n{name}: rows minimum length (of the larger side), columns maximum mean width px (0: no bound); "
              "in brackets the frames whose mask the filter changed")
        print("| length \\ width | " + " | ".join(f"{w:g}" for w in COMPONENT_WIDTHS) + " |")
        print("|" + "---|" * (len(COMPONENT_WIDTHS) + 1))
        sweep, changed = {}, {}
        unfiltered = [p >= segmenter.threshold for p in maps]
        for length in COMPONENT_LENGTHS:
            for width in COMPONENT_WIDTHS:
                segmenter.min_component_length, segmenter.max_component_width_px = length, width
                wires = [segmenter.wire_mask(p) for p in maps]
                sweep[length, width] = 100 * np.mean([dice(w, m) for w, m in zip(wires, masks)])
                changed[length, width] = sum((w != u).any() for w, u in zip(wires, unfiltered))
            print(f"| {length:g} | " + " | ".join(f"{sweep[length, w]:.2f} ({changed[length, w]})"
                                                 for w in COMPONENT_WIDTHS) + " |")
        best = max(sweep, key=sweep.get)
        print(f"best: --component-filter {best[0]:g},{best[1]:g} ({sweep[best]:.2f}; unfiltered {sweep[0.0, 0.0]:.2f})")


def ridge_response(image: np.ndarray, preprocessing: str, ridge_filter: str = "sato") -> np.ndarray:
    """Tubeness of dark ridges at the wire's widths inside the field: Sato on the frame normalised as the
    networks see it, or Frangi on the frame's own grey levels (scaled to 0..1 by its type's range), whose
    blob and background terms suppress the edges and letters that Sato answers on a z-scored field;
    frangi-elongated: the library's baseline (guidewire.segmentation.ridge) on the whole frame's field."""
    from skimage.filters import frangi, sato

    if ridge_filter == "frangi-elongated":
        return frangi_dark_ridges(image, field_of_view(image, preprocessing), RIDGE_SIGMAS)
    normalised, box, valid = PREPROCESSING[preprocessing](image)
    response = np.zeros(image.shape, np.float32)
    if ridge_filter == "frangi":
        grey = image[box].astype(np.float32) / (np.iinfo(image.dtype).max if image.dtype.kind in "ui" else 1.0)
        response[box] = frangi(grey, sigmas=RIDGE_SIGMAS, black_ridges=True) * valid
    else:
        response[box] = sato(normalised, sigmas=RIDGE_SIGMAS, black_ridges=True) * valid
    return response


def scales_of(responses, scale: float | None) -> list[float]:
    """The set's scale for every frame, or (None) each frame's own."""
    return [scale or frame_scale(r) for r in responses]


@functools.cache
def tune_ridge(folder: Path, preprocessing: str, ridge_filter: str = "sato",
               ridge_scale: str = "set") -> tuple[float | None, float, float | None]:
    """Scale (median 99.9th percentile of the response; None for each frame's own), the threshold with the
    best mean Dice and, for frangi-elongated, with it the minimum component length (fraction of the frame's
    larger side)."""
    images, masks, _, _ = load_frames(folder)
    responses = [ridge_response(image, preprocessing, ridge_filter) for image in images]
    scale = float(np.median([np.percentile(r, 99.9) for r in responses])) if ridge_scale == "set" else None
    if ridge_filter == "frangi-elongated":
        sweep = {(threshold, length): np.mean([
            dice(ridge_wire_map(r, s, threshold, length * max(r.shape)) >= threshold, m)
            for r, s, m in zip(responses, scales_of(responses, scale), masks)])
            for threshold in ELONGATED_THRESHOLDS for length in ELONGATED_MIN_LENGTHS}
        threshold, length = max(sweep, key=sweep.get)
        return scale, threshold, length
    probabilities = [np.clip(r / scale, 0, 1) for r in responses]
    return scale, best_threshold(probabilities, masks, np.linspace(0.05, 0.95, 19))[0], None


def score(probabilities, images, masks, tips, threshold, preprocessing):
    predicted = []
    for probability, image in zip(probabilities, images):
        centreline = extract_centreline(probability >= threshold, valid=field_of_view(image, preprocessing),
                                        max_gap_px=MAX_GAP_FRACTION * max(image.shape))
        predicted.append(None if centreline is None else centreline.tip)
    scores = evaluate_set(probabilities, masks, predicted, tips, threshold)
    within = [p is not None and np.hypot(*(np.asarray(p) - np.asarray(t))) <= TIP_RADIUS_PX
              for p, t in zip(predicted, tips)]
    empty = sum(not (p >= threshold).any() for p in probabilities)
    return scores, np.asarray(within, float), empty


def interval(values, groups) -> str:
    _, low, high = bootstrap_mean(values, groups)
    return f"{100 * low:.1f} .. {100 * high:.1f}"


def overlay_hardest(path: Path, images, masks, probabilities: dict, thresholds: dict, dice: list, count: int = 6,
                    preprocessing: str = "paper") -> None:
    """The `count` frames with the lowest Dice of the first network: input, then each model's mask
    (truth only blue, prediction only green, both cyan; predicted tip circled red, true tip not drawn)."""
    order = np.argsort(dice)[:count]
    rows = []
    for index in order:
        image, truth = images[index], masks[index]
        tiles = [cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)]
        for name, maps in probabilities.items():
            predicted = maps[index] >= thresholds[name]
            tile = tiles[0].copy()
            tile[truth & ~predicted] = (255, 0, 0)
            tile[predicted & ~truth] = (0, 200, 0)
            tile[predicted & truth] = (255, 255, 0)
            centreline = extract_centreline(predicted, valid=field_of_view(image, preprocessing),
                                            max_gap_px=MAX_GAP_FRACTION * max(image.shape))
            if centreline is not None:
                cv2.circle(tile, tuple(int(v) for v in np.rint(centreline.tip)), 7, (0, 0, 255), 2)
            cv2.putText(tile, name, (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
            tiles.append(tile)
        rows.append(np.hstack([cv2.resize(t, (256, 256), interpolation=cv2.INTER_AREA) for t in tiles]))
    cv2.imwrite(str(path), np.vstack(rows))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="frames of each set (A: spread over its poses)")
    parser.add_argument("--sets", default="B,A", help="which test sets, comma separated")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="networks to score (default: the shipped FGA-Net and the shipped-width U-Net)")
    parser.add_argument("--trained-on", default="see name", metavar="LABEL",
                        help="the 'trained on' column of --model checkpoints other than the shipped ones, "
                        "e.g. B for a network trained on generator B only")
    parser.add_argument("--preprocessing", default="paper", choices=sorted(PREPROCESSING))
    parser.add_argument("--wire-width", type=float, default=0.0,
                        help="the frames' wire width in px, for the segmenter to resample (0: as they are)")
    parser.add_argument("--tta-scales", default="1", metavar="F,F,...",
                        help="test-time augmentation: mean probability over the frame resampled by these factors")
    parser.add_argument("--tta-flips", action="store_true",
                        help="test-time augmentation: mean probability over the frame's four mirror images")
    parser.add_argument("--paired-plain", action="store_true",
                        help="also score each network without the test-time augmentation on the same frames, "
                        "and print the paired differences")
    parser.add_argument("--threads", type=int, default=1,
                        help="inference threads (1: on a loaded 2-core machine two threads ran 10x slower)")
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "results" / "segmentation_cross_hardest.png")
    parser.add_argument("--no-ridge", action="store_true", help="networks only")
    parser.add_argument("--ridge-only", action="store_true", help="the ridge filter only")
    parser.add_argument("--ridge-filter", choices=("sato", "frangi", "frangi-elongated"), default="sato",
                        help="sato: on the normalised frame; frangi: on the frame's grey levels; frangi-elongated: "
                        "Frangi after a 3x3 median, only long thin components kept (minimum length chosen with "
                        "the threshold)")
    parser.add_argument("--ridge-scale", choices=("set", "frame"), default="set",
                        help="frangi-elongated's threshold is over the tuning set's scale (median 99.9th "
                        "percentile) or over each frame's own (its 99.5th percentile)")
    parser.add_argument("--component-filter", action="append", default=[], metavar="LENGTH,WIDTH",
                        help="also score each network with only its mask's components at least LENGTH (fraction "
                        "of the frame's larger side) long and at most WIDTH px wide on average (0: no bound); "
                        "repeat for more settings")
    parser.add_argument("--component-grid", type=Path, metavar="FOLDER",
                        help="print each network's mean Dice over the component filter's grid on FOLDER "
                        "(images/, masks/) and stop")
    args = parser.parse_args(argv)
    component_filters = []
    for text in args.component_filter:
        try:
            length, width = (float(v) for v in text.split(","))
        except ValueError:
            parser.error(f"--component-filter takes LENGTH,WIDTH, got {text!r}")
        component_filters.append((length, width))
    if args.ridge_scale == "frame" and args.ridge_filter != "frangi-elongated":
        parser.error("--ridge-scale frame is for --ridge-filter frangi-elongated")
    import torch

    torch.set_num_threads(args.threads)
    networks = dict(item.split("=", 1) for item in args.model) or {
        "FGA-Net (shipped)": str(DEFAULT_WEIGHTS), "U-Net (shipped width)": str(SHIPPED_WIDTH_UNET)}
    print(f"Cross-generator segmentation, preprocessing '{args.preprocessing}'"
          + (f", frames' wire width {args.wire_width:g} px" if args.wire_width else "")
          + (f", test-time scales {args.tta_scales}" if args.tta_scales != "1" else "")
          + (", test-time mirrors" if args.tta_flips else "")
          + "; metrics in %; intervals: 95 % bootstrap (10,000 resamples, seed 0)")
    if args.component_grid:
        component_grid(args.component_grid, networks, args)
        print("\ncommand: scripts/env.sh python bench/bench_segmentation_cross.py " + shlex.join(sys.argv[1:]))
        return
    header = ["trained on", "model"] + HEADER + [f"tip <= {TIP_RADIUS_PX:g} px %", "no wire found",
                                                 "Dice interval", "clDice interval", "s per frame"]
    for set_name in args.sets.split(","):
        folder = SETS[set_name]
        ensure_set(set_name, folder)
        images, masks, tips, groups = load_frames(folder, args.count)
        unit = "poses" if groups is not None else "frames"
        print(f"\nScored on generator {set_name}: {len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]} "
              f"({folder.relative_to(ROOT)}); intervals over {unit}")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        probabilities, thresholds, dice = {}, {}, None
        window = fitting_window(*images[0].shape)
        paired = []
        for name, checkpoint in ({} if args.ridge_only else networks).items():
            trained = "A (shipped)" if Path(checkpoint).resolve() in (DEFAULT_WEIGHTS.resolve(),
                                                                      SHIPPED_WIDTH_UNET.resolve()) else args.trained_on
            runs = [(name, test_time(args))]
            if args.paired_plain:
                runs.append((f"{name}, without test-time augmentation", {}))
            per_frame = []
            for label, augmentation in runs:
                segmenter = Segmenter(checkpoint, window=window, threads=args.threads,
                                      preprocessing=args.preprocessing, wire_width_px=args.wire_width or None,
                                      **augmentation)
                started = time.perf_counter()
                maps = [segmenter.probability(image) for image in images]
                seconds = (time.perf_counter() - started) / len(images)
                scores, within, empty = score(maps, images, masks, tips, segmenter.threshold, args.preprocessing)
                print(table_row(trained, label, scores, within, empty, groups, seconds))
                per_frame.append((scores, within, maps, segmenter, seconds))
            if args.paired_plain:
                (augmented, augmented_tips, *_), (plain, plain_tips, *_) = per_frame
                paired.append(f"{name} minus without: " + "; ".join(
                    f"{what} {100 * mean:+.2f} ({100 * low:+.2f} .. {100 * high:+.2f})" for what, (mean, low, high) in (
                        ("Dice", paired_bootstrap(augmented.dice_per_image, plain.dice_per_image, groups)),
                        ("clDice", paired_bootstrap(augmented.cldice_per_image, plain.cldice_per_image, groups)),
                        ("tip <= 10 px", paired_bootstrap(augmented_tips, plain_tips, groups)))))
            scores, within, maps, segmenter, seconds = per_frame[0]
            probabilities[name], thresholds[name] = maps, segmenter.threshold
            dice = scores.dice_per_image if dice is None else dice
            for component_filter in component_filters:
                # The same probabilities, zero off the kept components: at the threshold, the filtered mask.
                segmenter.min_component_length, segmenter.max_component_width_px = component_filter
                filtered = [p * segmenter.wire_mask(p) for p in maps]
                scores, within, empty = score(filtered, images, masks, tips, segmenter.threshold, args.preprocessing)
                label = (f"{name} + components >= {component_filter[0]:g} of the side, "
                         f"<= {component_filter[1]:g} px wide")
                print(table_row(trained, label, scores, within, empty, groups, seconds))
                probabilities[label], thresholds[label] = filtered, segmenter.threshold
        dice_of_first = dice
        if paired:
            print("\nPaired differences on the same frames (percentage points; 95 % bootstrap over "
                  f"{unit}):\n" + "\n".join(f"- {line}" for line in paired))
        if not args.no_ridge:
            started = time.perf_counter()
            responses = [ridge_response(image, args.preprocessing, args.ridge_filter) for image in images]
            seconds = (time.perf_counter() - started) / len(images)
            for tuned_on in ("A", "B"):
                tuning = RIDGE_TUNING[tuned_on]
                ensure_set(tuned_on + "-tuning", tuning)
                scale, threshold, length = tune_ridge(tuning, args.preprocessing, args.ridge_filter, args.ridge_scale)
                if length is None:
                    maps = [np.clip(response / scale, 0, 1) for response in responses]
                else:
                    maps = [ridge_wire_map(r, s, threshold, length * max(r.shape))
                            for r, s in zip(responses, scales_of(responses, scale))]
                scores, within, empty = score(maps, images, masks, tips, threshold, args.preprocessing)
                scale_text = "each frame's 99.5th percentile" if scale is None else f"scale {scale:.3g}"
                name = (f"{args.ridge_filter.capitalize()} ridge filter (threshold {threshold:g}"
                        + ("" if length is None else f" x {scale_text}, components >= {length:g} of the side")
                        + f" on {tuning.relative_to(ROOT)})")
                print(table_row(tuned_on, name, scores, within, empty, groups, seconds))
                if tuned_on == "A":
                    label = f"{args.ridge_filter.capitalize()} (tuned on A)"
                    probabilities[label], thresholds[label] = maps, threshold
                    dice_of_first = dice_of_first or scores.dice_per_image
        if set_name == "B" and args.png:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            overlay_hardest(args.png, images, masks, probabilities, thresholds, dice_of_first,
                            preprocessing=args.preprocessing)
            print(f"\nhardest frames of B (lowest Dice of {next(iter(probabilities))}): {args.png}")
    print("\ncommand: scripts/env.sh python bench/bench_segmentation_cross.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
