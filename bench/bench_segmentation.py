"""FGA-Net on the held-out synthetic X-ray set: the paper's metrics, speed at 512x512, a PNG.

    make bench-segmentation   (= scripts/env.sh python bench/bench_segmentation.py)

Held-out data: `python -m guidewire.segmentation.synthetic out/segmentation/heldout_large --seed 3000
--poses 16 --frames-per-pose 16` (written here if missing): seed and C-arm/table poses the
training set (seed 1000) never saw. `--heldout out/segmentation/heldout` is the first, smaller
held-out set (seed 2000, 4 poses x 16 frames) that the earlier tables used. Networks are read
from checkpoints: the shipped FGA-Net and the U-Net baseline at its width by default, compared
frame by frame; the speed table compares every backend with the shipped network under
PyTorch, timed in the same run.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HELDOUT = ROOT / "out" / "segmentation" / "heldout_large"
# The U-Net baseline at the shipped network's width, trained by the same recipe
# (scripts/train_shipped_recipe.sh unet; bench/checkpoints/README.md).
SHIPPED_WIDTH_UNET = ROOT / "bench" / "checkpoints" / "unet_shipped_width.pt"
sys.path.insert(0, str(ROOT / "src"))

from guidewire.preprocessing import crop_and_normalise  # noqa: E402
from guidewire.segmentation.centreline import MAX_GAP_FRACTION, extract_centreline  # noqa: E402
from guidewire.segmentation.fganet import PAPER_FGANET, PAPER_UNET, SegmentationNetwork, \
    count_multiply_accumulates  # noqa: E402
from guidewire.segmentation.backends import export_onnx  # noqa: E402
from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS, load_checkpoint, save_checkpoint  # noqa: E402
from guidewire.segmentation.frame import mask_confidence, segment_frame  # noqa: E402
from guidewire.segmentation.inference import Segmenter, fitting_window  # noqa: E402
from guidewire.segmentation.precision import cpu_model, native_bfloat16, resolve_precision  # noqa: E402
from guidewire.segmentation.metrics import FAILED_DICE, HEADER, best_threshold, bootstrap_mean, cldice, dice, \
    evaluate_set, paired_bootstrap, roc_auc, wire_visibility  # noqa: E402
from guidewire.segmentation.synthetic import SyntheticSetConfig, write_folder  # noqa: E402

# 16 poses, so that intervals can resample whole poses (frames of one pose share its anatomy).
DEFAULT_HELDOUT_SET = SyntheticSetConfig(poses=16, frames_per_pose=16, seed=3000)

PAPER_TABLE = {"FGA-Net (paper, TCGSeg)": ["91.61", "85.63", "71.29", "56.59", "55.30", "-", "-", "-", "-"],
               "U-Net (paper, TCGSeg)": ["91.55", "83.37", "66.80", "50.76", "50.68", "-", "-", "-", "-"]}
# Fewer poses than this make a pose-resampling bootstrap too coarse to trust: resample frames then.
MIN_POSES_TO_RESAMPLE = 10
# Bin edges of metrics.wire_visibility's two measures, for the Dice-by-visibility table.
VISIBILITY_BINS = {"wire skeleton in view (px)": (50, 100, 200), "wire contrast-to-noise": (1.5, 3, 6)}
# Cuts on the published confidence the bench reports beside the checkpoint's own.
CONFIDENCE_CUTS = (0.85, 0.88, 0.90, 0.92)


def load_set(folder: Path):
    frames = [json.loads(line) for line in (folder / "frames.jsonl").read_text().splitlines()]
    images = [cv2.imread(str(folder / "images" / f["name"]), cv2.IMREAD_GRAYSCALE) for f in frames]
    masks = [cv2.imread(str(folder / "masks" / f["name"]), cv2.IMREAD_GRAYSCALE) > 0 for f in frames]
    return images, masks, [f["tip"] for f in frames]


def set_record(folder: Path) -> dict | None:
    """The set's configuration (set.json), if the synthetic writer made the set."""
    record = folder / "set.json"
    return json.loads(record.read_text()) if record.is_file() else None


def frame_poses(config: dict | None, frames: int) -> np.ndarray | None:
    """The C-arm/table pose of each of a set's frames, from its set_record."""
    if config is None or config["poses"] * config["frames_per_pose"] != frames:
        return None
    return np.arange(frames) // config["frames_per_pose"]


def describe_set(folder: Path, frames: int) -> tuple[str, np.ndarray | None, str]:
    """The set's seed and poses; the pose of each frame, to resample whole poses in the bootstrap
    when there are enough of them; and which unit the intervals resample."""
    config = set_record(folder)
    poses = frame_poses(config, frames)
    if poses is None:
        return "", None, "frames"
    text = f" (seed {config['seed']}, {config['poses']} poses unseen in training)"
    if config["poses"] < MIN_POSES_TO_RESAMPLE:
        return text, None, "frames"
    return text, poses, "poses"


def scores_for(probabilities, images, masks, tips, threshold):
    predicted_tips = []
    for probability, image in zip(probabilities, images):
        centreline = extract_centreline(probability >= threshold, valid=image != 0,
                                        max_gap_px=MAX_GAP_FRACTION * max(image.shape))
        predicted_tips.append(None if centreline is None else centreline.tip)
    return evaluate_set(probabilities, masks, predicted_tips, tips, threshold)


def ridge_probability(image: np.ndarray, scale: float) -> np.ndarray:
    """Classical baseline: Sato tubeness of dark ridges at the wire's widths, scaled to 0..1."""
    from skimage.filters import sato

    normalised, box = crop_and_normalise(image)
    response = sato(normalised, sigmas=(1.0, 1.5, 2.0), black_ridges=True)
    probability = np.zeros(image.shape, np.float32)
    probability[box] = np.clip(response / scale, 0, 1) * (image[box] != 0)
    return probability


def tune_ridge(train_folder: Path, count: int = 24) -> tuple[float, float]:
    """Scale and threshold of the ridge filter chosen on training frames (best mean Dice)."""
    from skimage.filters import sato

    images, masks, _ = load_set(train_folder)
    images, masks = images[:count], masks[:count]
    scale = float(np.median([np.percentile(sato(crop_and_normalise(i)[0], sigmas=(1.0, 1.5, 2.0),
                                                black_ridges=True), 99.9) for i in images]))
    probabilities = [ridge_probability(i, scale) for i in images]
    return scale, best_threshold(probabilities, masks, np.linspace(0.05, 0.95, 19))[0]


def print_command() -> None:
    print("command: scripts/env.sh python bench/bench_segmentation.py " + shlex.join(sys.argv[1:]))


def interleaved_ms(functions: list, rounds: int) -> list[list[float]]:
    """Milliseconds per call of each function, over `rounds` rounds that each call every function
    once, in an order that rotates: load on this shared machine then falls on all of them alike
    instead of on whichever ran during a spike, so their ratios hold up."""
    for function in functions:
        function()  # first calls pay for lazy initialisation
    samples = [[] for _ in functions]
    for round_number in range(rounds):
        for shift in range(len(functions)):
            index = (round_number + shift) % len(functions)
            start = time.perf_counter()
            functions[index]()
            samples[index].append((time.perf_counter() - start) * 1000)
    return samples


def overlay_png(path: Path, images, masks, probabilities, threshold: float, count: int = 8) -> None:
    """Held-out frames: ground truth in blue, prediction in green, both in cyan; tip in red."""
    tiles = []
    for image, truth, probability in list(zip(images, masks, probabilities))[:count]:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        predicted = probability >= threshold
        marked = rgb.copy()
        marked[truth & ~predicted] = (255, 0, 0)
        marked[predicted & ~truth] = (0, 200, 0)
        marked[predicted & truth] = (255, 255, 0)
        centreline = extract_centreline(predicted, valid=image != 0, max_gap_px=MAX_GAP_FRACTION * max(image.shape))
        if centreline is not None:
            cv2.circle(marked, tuple(int(v) for v in np.rint(centreline.tip)), 5, (0, 0, 255), 1)
        tiles.append(np.hstack([rgb, marked]))
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles) - 1, 2)]
    cv2.imwrite(str(path), np.vstack(rows))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT,
                        help="held-out images/, masks/, frames.jsonl (and set.json) from the synthetic writer")
    parser.add_argument("--train", type=Path, default=ROOT / "out" / "segmentation" / "train",
                        help="training set, used only to tune the classical baseline")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="extra networks to evaluate (e.g. 'U-Net=out/segmentation/unet_small/model.pt')")
    parser.add_argument("--png", type=Path, default=ROOT / "out" / "segmentation" / "heldout_overlays.png")
    parser.add_argument("--speed-rounds", type=int, default=15,
                        help="timing rounds; each runs every backend once (2 for the paper-width networks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paired", action="append", default=[], metavar="NAME=NAME",
                        help="two evaluated networks to compare frame by frame (Dice and clDice difference, "
                        "95%% bootstrap interval); default 'FGA-Net (shipped)=U-Net (shipped width)'")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--accuracy-only", action="store_true", help="skip the speed table (and its compiles)")
    only.add_argument("--speed-only", action="store_true", help="only the speed table")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    networks = {"FGA-Net (shipped)": DEFAULT_WEIGHTS, "U-Net (shipped width)": SHIPPED_WIDTH_UNET}
    networks.update(dict(item.split("=", 1) for item in args.model))
    if args.speed_only:
        print_speed_table(networks, args.threads, args.speed_rounds)
        print_command()
        return
    if not (args.heldout / "frames.jsonl").is_file():
        if args.heldout != DEFAULT_HELDOUT:
            parser.error(f"no held-out set in {args.heldout}; write one with python -m "
                         "guidewire.segmentation.synthetic FOLDER --seed SEED --poses N --frames-per-pose M")
        write_folder(DEFAULT_HELDOUT_SET, args.heldout)
    images, masks, tips = load_set(args.heldout)
    set_text, poses, resampled = describe_set(args.heldout, len(images))

    rows, per_frame, shipped_probabilities, shipped_threshold, shipped_cut = [], {}, None, None, 0.0
    evaluated = [(name, checkpoint, "torch", "float32") for name, checkpoint in networks.items()]
    # The deployed inference (the pipeline's compiled backend at precision auto), and bfloat16 where it is
    # native; elsewhere it is emulated at 13-20x the time and not what any default runs.
    deployed = resolve_precision("auto")
    evaluated[1:1] = [(f"FGA-Net (shipped, compiled, {deployed})", DEFAULT_WEIGHTS, "compiled", deployed)]
    if deployed == "bfloat16":
        evaluated[1:1] = [("FGA-Net (shipped, bfloat16 inference)", DEFAULT_WEIGHTS, "torch", "bfloat16")]
    pairs = [item.split("=", 1) for item in args.paired or ["FGA-Net (shipped)=U-Net (shipped width)"]]
    unknown = {name for pair in pairs for name in pair} - {name for name, *_ in evaluated}
    if unknown or any(len(pair) != 2 for pair in pairs):
        parser.error(f"--paired takes NAME=NAME of evaluated networks; unknown: {sorted(unknown)}")
    # The frames' own size: eager windows shrink to it anyway, and a compiled model, which has one
    # static size, would otherwise see a 256-px frame padded into 512 px of zeros.
    window = fitting_window(*images[0].shape)
    for name, checkpoint, backend, precision in evaluated:
        segmenter = Segmenter(checkpoint, backend=backend, window=window, threads=args.threads, precision=precision)
        probabilities = [segmenter.probability(image) for image in images]
        if shipped_probabilities is None:
            shipped_probabilities, shipped_threshold, shipped_cut = probabilities, segmenter.threshold, \
                segmenter.confidence_cut
        scores = scores_for(probabilities, images, masks, tips, segmenter.threshold)
        rows.append((name, scores.as_percent_row() + [dice_interval(scores.dice_per_image, poses)]))
        per_frame[name] = {"Dice": scores.dice_per_image, "clDice": scores.cldice_per_image}
    if (args.train / "frames.jsonl").is_file():
        scale, threshold = tune_ridge(args.train)
        probabilities = [ridge_probability(image, scale) for image in images]
        scores = scores_for(probabilities, images, masks, tips, threshold)
        rows.append((f"Sato ridge filter (threshold {threshold:.2f})",
                     scores.as_percent_row() + [dice_interval(scores.dice_per_image, poses)]))
    rows += list(PAPER_TABLE.items())

    print(f"Held-out synthetic X-ray set: {len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]}, "
          f"{args.heldout}{set_text}; metrics in %; Dice interval: 95 % bootstrap over {resampled} "
          "(10,000 resamples, seed 0)")
    header = HEADER + ["Dice interval"]
    print("| model | " + " | ".join(header) + " |")
    print("|" + "---|" * (len(header) + 1))
    for name, values in rows:
        print(f"| {name} | " + " | ".join(values) + " |")

    if pairs:
        print_paired_table(pairs, per_frame, poses, resampled)
    print_visibility_table(images, masks, {name: per_frame[name]["Dice"] for name in networks})
    print_confidence_table(shipped_probabilities, shipped_threshold, shipped_cut,
                           per_frame["FGA-Net (shipped)"]["Dice"])
    print_pipeline_bench_table(Segmenter(DEFAULT_WEIGHTS, threads=args.threads, precision="auto"))
    overlay_png(args.png, images, masks, shipped_probabilities, shipped_threshold)
    print(f"\noverlays: {args.png}")
    if not args.accuracy_only:
        print_speed_table(networks, args.threads, args.speed_rounds)
    print_command()


def dice_interval(dice_per_image: list[float], poses: np.ndarray | None) -> str:
    _, low, high = bootstrap_mean(dice_per_image, poses)
    return f"{100 * low:.2f} .. {100 * high:.2f}"


def print_paired_table(pairs: list[list[str]], per_frame: dict, poses: np.ndarray | None, resampled: str) -> None:
    print(f"\nPaired per frame, first minus second network (points of %); 95 % bootstrap interval over {resampled}"
          " (10,000 resamples, seed 0)")
    print("| first - second | Dice | Dice interval | clDice | clDice interval | frames with higher Dice |")
    print("|---|---|---|---|---|---|")
    for first, second in pairs:
        cells = []
        for metric in ("Dice", "clDice"):
            mean, low, high = paired_bootstrap(per_frame[first][metric], per_frame[second][metric], poses)
            cells += [f"{100 * mean:+.2f}", f"{100 * low:+.2f} .. {100 * high:+.2f}"]
        better = sum(a > b for a, b in zip(per_frame[first]["Dice"], per_frame[second]["Dice"]))
        print(f"| {first} - {second} | " + " | ".join(cells) + f" | {better} of {len(per_frame[first]['Dice'])} |")


def print_visibility_table(images, masks, dice_by_network: dict) -> None:
    """Mean Dice of each network over frames binned by how much wire they show and how well it
    stands out: where a network starts to miss the wire."""
    measures = np.array([wire_visibility(image, mask) for image, mask in zip(images, masks)])
    print("\nDice by wire visibility (metrics.wire_visibility: skeleton of the true mask inside the collimated "
          "field; contrast-to-noise against the background 2-6 px from the wire)")
    print("| frames with | frames | " + " | ".join(f"{name} Dice" for name in dice_by_network) + " |")
    print("|---|---|" + "---|" * len(dice_by_network))
    for column, (measure, edges) in enumerate(VISIBILITY_BINS.items()):
        bounds = (-np.inf, *edges, np.inf)
        for low, high in zip(bounds[:-1], bounds[1:]):
            chosen = (measures[:, column] >= low) & (measures[:, column] < high)  # NaN contrast: no bin
            span = f"< {high:g}" if low == -np.inf else f">= {low:g}" if high == np.inf else f"{low:g} .. {high:g}"
            cells = [f"{100 * np.mean(np.asarray(dice)[chosen]):.2f}" if chosen.any() else "-"
                     for dice in dice_by_network.values()]
            print(f"| {measure} {span} | {np.count_nonzero(chosen)} | " + " | ".join(cells) + " |")


def print_confidence_table(probabilities, threshold: float, model_cut: float, dice_per_image) -> None:
    """How well the published confidence tells a robot which frames to distrust; model_cut, the
    checkpoint's own (chosen on training frames), is the one the node flags low_confidence at."""
    confidence = np.array([mask_confidence(probability, probability >= threshold) for probability in probabilities])
    dice = np.asarray(dice_per_image)
    failed = dice < FAILED_DICE
    print(f"\nConfidence (GuidewireSegmentation.confidence, shipped network) as a check on each frame: "
          f"{np.count_nonzero(failed)} of {len(dice)} frames have Dice < {100 * FAILED_DICE:.0f} %; "
          f"AUROC of confidence for the others {roc_auc(confidence, ~failed):.3f}")
    print("| confidence below | frames flagged | failed frames flagged | Dice of the frames kept |")
    print("|---|---|---|---|")
    for cut in sorted({*CONFIDENCE_CUTS, model_cut}):
        flagged = confidence < cut
        kept = f"{100 * dice[~flagged].mean():.2f}" if (~flagged).any() else "-"
        name = f"{cut:.2f} (the checkpoint's cut)" if cut == model_cut else f"{cut:.2f}"
        print(f"| {name} | {np.count_nonzero(flagged)} | {np.count_nonzero(flagged & failed)} | {kept} |")


def print_pipeline_bench_table(segmenter: Segmenter, seconds: float = 8.0, step: float = 0.5) -> None:
    """The network on the frames `make run` segments: the default bench's C-arm as the wire is
    inserted, against the bench's own projection of the wire (the synthetic set's definition)."""
    from guidewire.twin import DigitalTwin
    from guidewire.twin.fluoroscopy import wire_footprint
    from guidewire.twin.config import load_bench_config

    bench = DigitalTwin(load_bench_config(None))
    renderer = bench.fluoroscopy
    rows = []
    for time_s in np.arange(0.0, seconds, step):
        state = bench.state(time_s)
        image = renderer.render(state)
        truth = wire_footprint(state, renderer.geometry).mask().astype(bool) & renderer.collimator
        result = segment_frame(segmenter, image)
        wire = result.mask > 0
        rows.append((dice(wire, truth), cldice(wire, truth), *wire_visibility(image, truth), result.confidence,
                     result.low_confidence))
    dices, cldices, lengths, contrasts, confidences, flagged = np.array(rows, float).T
    size = bench.config.fluoroscopy.detector_pixels
    print(f"\nThe pipeline's own C-arm (default bench, {size}x{size}, the frames `make run` segments): "
          f"{len(rows)} frames, t = 0 .. {seconds - step:g} s, shipped network (eager, precision auto)")
    print("| frames | Dice | clDice | wire in view (px) | wire contrast-to-noise | confidence | flagged "
          "low_confidence |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(rows)} | {100 * dices.mean():.2f} ({100 * dices.min():.1f} .. {100 * dices.max():.1f}) | "
          f"{100 * cldices.mean():.2f} | {lengths.min():.0f} .. {lengths.max():.0f} | "
          f"{contrasts.min():.2f} .. {contrasts.max():.2f} | {confidences.mean():.3f} | {int(flagged.sum())} |")


def print_speed_table(networks: dict, threads: int, rounds: int) -> None:
    import torch

    # bfloat16's speed depends on the CPU more than anything else here: name it. Where it is not native,
    # oneDNN emulates it 13-20x slower than float32 (bench/results/segmentation.md); that is not timed again.
    native = native_bfloat16()
    print("\nSpeed at 512x512, one frame, "
          f"{threads} threads, median of {rounds} rounds (2 for the paper-width networks) that each run every "
          "backend once, interleaved; ratio to the shipped network under PyTorch. "
          "Compiled = AOTInductor, built once into the user cache (build time not included). "
          f"CPU: {cpu_model().split(':')[-1].strip()}, {torch.backends.cpu.get_cpu_capability()}, native bfloat16: "
          f"{'yes' if native else 'no (bf16 not timed)'}")
    backends = (("PyTorch", "torch", "float32"), ("PyTorch bf16", "torch", "bfloat16"),
                ("compiled", "compiled", "float32"), ("compiled bf16", "compiled", "bfloat16"),
                ("ONNX Runtime", "onnx", "float32"))
    print("| network | G MACs (with DCN) | G MACs (without) | " + " | ".join(f"{b[0]} ms" for b in backends)
          + " | " + " | ".join(f"ratio {b[0]}" for b in backends) + " |")
    print("|---|---|---|" + "---|" * 2 * len(backends))
    frame = np.random.default_rng(0).integers(1, 255, (512, 512)).astype(np.uint8)
    speed_networks = dict(networks)
    timed_configs = {load_checkpoint(checkpoint)[0].config for checkpoint in networks.values()}
    work = ROOT / "out" / "segmentation" / "speed"
    for name, config in (("FGA-Net (paper width, untrained)", PAPER_FGANET),
                         ("U-Net (paper width, untrained)", PAPER_UNET)):
        if config in timed_configs:
            continue
        checkpoint = work / f"{config.widths[0]}_{config.gated_attention}.pt"
        if not checkpoint.is_file():  # speed does not depend on the weights' values
            save_checkpoint(checkpoint, SegmentationNetwork(config).eval())
        speed_networks[name] = checkpoint
    baseline, shipped_rates = None, []
    for name, checkpoint in speed_networks.items():
        network = Segmenter(checkpoint, window=512, threads=threads).network
        # Exported afresh for every network (one file, overwritten): the timing is of this code's graph.
        onnx_file = export_onnx(network, work / "timed.onnx")
        segmenters = [Segmenter(checkpoint, backend=backend, window=512, threads=threads, precision=precision,
                                onnx_file=onnx_file) if native or precision != "bfloat16" else None
                      for _, backend, precision in backends]
        timed = [(label, segmenter) for (label, _, _), segmenter in zip(backends, segmenters) if segmenter]
        samples = interleaved_ms([lambda s=segmenter: s.probability(frame) for _, segmenter in timed],
                                 rounds if sum(network.config.widths) < 1000 else 2)
        by_label = {label: ms for (label, _), ms in zip(timed, samples)}
        times = [statistics.median(by_label[label]) if label in by_label else None for label, _, _ in backends]
        if baseline is None:
            baseline = times[0]
            shipped_rates = [(name, label, 1000 / np.percentile(ms, [50, 75, 25])) for label, ms in by_label.items()]
        macs = count_multiply_accumulates(network, 512)
        print(f"| {name} | {macs['total'] / 1e9:.2f} | {macs['without_deformable'] / 1e9:.2f} | "
              + " | ".join("-" if ms is None else f"{ms:.0f}" for ms in times) + " | "
              + " | ".join("-" if ms is None else f"{ms / baseline:.2f}" for ms in times) + " |")
    print("| paper (RTX 4090): FGA-Net 75.36 G, 17.18 ms; U-Net 54.98 G, 4.06 ms |" + " |" * (2 + 2 * len(backends)))
    print(f"Frames per second of {shipped_rates[0][0]}, median (middle half of the rounds): "
          + "; ".join(f"{label} {median:.1f} ({slow:.1f} .. {fast:.1f})" for _, label, (median, slow, fast)
                      in shipped_rates))


if __name__ == "__main__":
    main()
