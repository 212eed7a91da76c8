"""Train FGA-Net (or the U-Net baseline) on an images/ + masks/ folder.

    python -m guidewire.segmentation.train DATA OUT --network shipped --epochs 30

DATA holds images/NAME.png and masks/NAME.png (non-zero = wire), such as
`python -m guidewire.segmentation.synthetic` writes, or a user's own frames.
Every epoch writes OUT/last.pt (network, optimiser, schedule, epoch), so an
interrupted run continues with --resume; the end writes OUT/model.pt, the
inference checkpoint with its training record.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from guidewire.preprocessing import PREPROCESSING
from guidewire.segmentation.fganet import PAPER_FGANET, PAPER_UNET, SHIPPED_FGANET, SHIPPED_UNET, NetworkConfig, \
    SegmentationNetwork, widen
from guidewire.segmentation.checkpoint import load_checkpoint, save_checkpoint
from guidewire.segmentation.inference import Segmenter, fitting_window
from guidewire.segmentation.losses import deep_supervision_loss, distillation_loss, soft_dice_per_image

NETWORKS = {"shipped": SHIPPED_FGANET, "paper": PAPER_FGANET, "unet": SHIPPED_UNET, "paper-unet": PAPER_UNET}
OUTSIDE_LOGIT = -20.0


def read_pairs(folder: str | Path, every: int = 1) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, mono image as stored, bool mask) for every `every`-th image with a mask of the same name."""
    folder = Path(folder)
    images = sorted((folder / "images").glob("*.png"))[::every]
    if not images:
        raise FileNotFoundError(f"no images/*.png under {folder}")
    pairs = []
    for image_path in images:
        mask_path = folder / "masks" / image_path.name
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None or mask is None:
            raise ValueError(f"unreadable image or missing mask: {image_path}")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if mask.shape != image.shape:
            raise ValueError(f"mask {mask_path} is {mask.shape}, image is {image.shape}")
        pairs.append((image_path.name, image, mask > 0))
    return pairs


def read_folder(folder: str | Path, preprocessing: str = "paper") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, normalised cropped image, cropped mask) for every image with a mask of the same name,
    cropped and normalised as guidewire.preprocessing.PREPROCESSING[preprocessing] does at inference."""
    samples = []
    for name, image, mask in read_pairs(folder):
        normalised, box, _ = PREPROCESSING[preprocessing](image)
        samples.append((name, normalised, mask[box].astype(np.float32)))
    return samples


class PatchSampler:
    """Random patches with flips and 90-degree turns; half of them centred on the wire
    (nnU-Net's foreground oversampling: the wire covers about 1% of the pixels). With a teacher's
    logits per sample, its patch is cut and turned with the image's."""

    def __init__(self, samples, patch: int, seed: int, foreground_fraction: float = 0.5,
                 teacher_logits: list[np.ndarray] | None = None):
        self.samples, self.patch, self.foreground_fraction = samples, patch, foreground_fraction
        self.teacher_logits = teacher_logits
        self.rng = np.random.default_rng(seed)

    def patch_planes(self, index: int) -> np.ndarray:
        """(image, mask[, teacher logits]) of one patch, stacked."""
        _, image, mask = self.samples[index]
        planes = [image, mask] + ([self.teacher_logits[index]] if self.teacher_logits is not None else [])
        p = self.patch
        height, width = image.shape
        pad = ((0, max(p - height, 0)), (0, max(p - width, 0)))
        # Beyond the frame the teacher is told "background" as surely as a float16 logit can say it.
        planes = np.stack([np.pad(plane, pad, constant_values=fill)
                           for plane, fill in zip(planes, (0.0, 0.0, OUTSIDE_LOGIT))])
        height, width = planes.shape[1:]
        wire = np.argwhere(planes[1] > 0)
        if wire.size and self.rng.random() < self.foreground_fraction:
            centre = wire[self.rng.integers(len(wire))]
            top = int(np.clip(centre[0] - p // 2 + self.rng.integers(-p // 4, p // 4 + 1), 0, height - p))
            left = int(np.clip(centre[1] - p // 2 + self.rng.integers(-p // 4, p // 4 + 1), 0, width - p))
        else:
            top, left = int(self.rng.integers(0, height - p + 1)), int(self.rng.integers(0, width - p + 1))
        planes = np.rot90(planes[:, top:top + p, left:left + p], int(self.rng.integers(4)), axes=(1, 2))
        if self.rng.random() < 0.5:
            planes = planes[:, :, ::-1]
        return np.ascontiguousarray(planes, dtype=np.float32)

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Images and masks (B,1,p,p), and the teacher's logits (B,1,p,p) or None."""
        planes = torch.from_numpy(np.stack([self.patch_planes(i) for i in indices]))
        teacher = planes[:, 2:3] if self.teacher_logits is not None else None
        return planes[:, 0:1].contiguous(memory_format=torch.channels_last), planes[:, 1:2].contiguous(), teacher


def epoch_order(rng: np.random.Generator, difficulty: np.ndarray, hard_fraction: float) -> np.ndarray:
    """One epoch's frame indices. hard_fraction 0: a permutation, every frame once. Otherwise as many
    draws with replacement, a hard_fraction share of the probability spread in proportion to each
    frame's last measured difficulty and the rest evenly, so that frames the network still gets wrong
    (an ECG lead taken for the wire) come back more often and every frame still comes back."""
    count = len(difficulty)
    if not hard_fraction:
        return rng.permutation(count)
    probability = (1 - hard_fraction) / count + hard_fraction * difficulty / difficulty.sum()
    return rng.choice(count, size=count, p=probability / probability.sum())


def compute_teacher_logits(teacher: str, samples, cache: Path, device: str = "cpu") -> list[np.ndarray]:
    """The teacher network's logits on every (cropped, normalised) training sample, in float16;
    computed once under bfloat16 autocast on the training device and kept in `cache`, keyed by
    the teacher's content, so that --resume does not compute them again."""
    from tqdm import tqdm

    digest = hashlib.sha256(Path(teacher).read_bytes()).hexdigest()[:16]
    names = [name for name, _, _ in samples]
    if cache.is_file():
        stored = np.load(cache)
        if str(stored["teacher_digest"]) == digest and list(stored["names"]) == names:
            return [stored[f"logits_{i}"] for i in range(len(names))]
    segmenter = Segmenter(teacher, precision="bfloat16", device=device)
    logits = []
    for _, image, _ in tqdm(samples, desc="teacher", file=sys.stdout):
        height, width = image.shape
        window = fitting_window(height, width)
        padded = np.zeros((1, 1, window, window), np.float32)
        padded[0, 0, :height, :width] = image
        logits.append(segmenter.logits(padded)[0, 0, :height, :width].astype(np.float16))
    np.savez(cache.with_suffix(".tmp.npz"), teacher_digest=digest, names=np.array(names),
             **{f"logits_{i}": value for i, value in enumerate(logits)})
    cache.with_suffix(".tmp.npz").replace(cache)
    return logits


def train(data: str, output: str, network_config: NetworkConfig, epochs: int, batch_size: int, patch: int,
          learning_rate: float, seed: int, resume: bool, threads: int, cldice_outputs: int, command: str,
          init: str | None = None, bfloat16: bool = False, device: str = "cpu", teacher: str | None = None,
          distill_weight: float = 1.0, distill_temperature: float = 2.0, hard_fraction: float = 0.0,
          preprocessing: str = "paper", stop_after: int | None = None) -> Path:
    from tqdm import tqdm

    output_dir = Path(output)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    samples = read_folder(data, preprocessing)
    teacher_logits = compute_teacher_logits(teacher, samples, output_dir / "teacher_logits.npz",
                                            device) if teacher else None
    sampler = PatchSampler(samples, patch, seed, teacher_logits=teacher_logits)
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # every batch has the same shape
    # channels_last: oneDNN's fast layout for these narrow convolutions (about 1.4x per step on this CPU),
    # and cuDNN's for bf16 tensor cores.
    network = SegmentationNetwork(network_config).train().to(memory_format=torch.channels_last)
    if init:  # fine-tune: start from a checkpoint's weights, with a fresh optimiser and schedule
        initial, _ = load_checkpoint(init)
        if replace(initial.config, widths=network_config.widths) != network_config:
            raise ValueError(f"--init {init} is a {initial.config} network, not {network_config}")
        if initial.config.widths != network_config.widths:
            print(f"widening {init} from {initial.config.widths} to {network_config.widths} (same function)")
            initial = widen(initial, network_config.widths, seed)
        network.load_state_dict(initial.state_dict())
    network.to(device)
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=5e-5)
    steps_per_epoch = max(len(samples) // batch_size, 1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs * steps_per_epoch)
    state_file = output_dir / "last.pt"
    first_epoch, elapsed, history = 0, 0.0, []
    # 1 - soft Dice of the main output the last time each frame was drawn; all alike until then.
    difficulty = np.ones(len(samples))
    if resume and state_file.is_file():
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        first_epoch, elapsed, history = state["epoch"] + 1, state["elapsed_s"], state["history"]
        difficulty = state.get("difficulty", difficulty)
        print(f"resuming after epoch {first_epoch} ({elapsed / 60:.1f} min trained)")
    for epoch in range(first_epoch, min(epochs, stop_after or epochs)):
        started = time.perf_counter()
        order = epoch_order(sampler.rng, difficulty, hard_fraction)
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", file=sys.stdout)
        for step in bar:
            indices = order[step * batch_size:(step + 1) * batch_size]
            images, masks, teacher_batch = sampler.batch(indices)
            images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
            # bfloat16 autocast runs the convolutions on AMX/AVX512-BF16 (1.45x per step for the paper
            # width here) or on tensor cores; the loss and its soft skeleton stay float32.
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
                outputs = network(images)
            outputs = [o.float() for o in outputs]
            loss = deep_supervision_loss(outputs, masks, cldice_outputs)
            if hard_fraction:
                with torch.no_grad():
                    dice = soft_dice_per_image(torch.sigmoid(outputs[0]), masks).cpu().numpy()
                difficulty[indices] = 1 - dice
            if teacher_batch is not None:
                loss = loss + distill_weight * distillation_loss(outputs[0], teacher_batch.to(device),
                                                                 distill_temperature)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        elapsed += time.perf_counter() - started
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "elapsed_s": round(elapsed, 1)})
        torch.save({"network": network.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "sampler_rng": sampler.rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "epoch": epoch, "elapsed_s": elapsed,
                    "history": history, "difficulty": difficulty}, state_file.with_suffix(".tmp"))
        state_file.with_suffix(".tmp").replace(state_file)
    data_record = Path(data) / "set.json"
    meta = {"command": command, "epochs": epochs, "stopped_after": len(history), "batch_size": batch_size,
            "patch": patch, "learning_rate": learning_rate, "seed": seed, "init": init,
            "cldice_outputs": cldice_outputs,
            "bfloat16": bfloat16, "teacher": teacher, "hard_fraction": hard_fraction, "preprocessing": preprocessing,
            "distillation": {"weight": distill_weight, "temperature": distill_temperature} if teacher else None,
            "training_time_s": round(elapsed, 1),
            "threads": torch.get_num_threads(), "device": _device_name(device), "history": history,
            "data": str(data),
            "data_set": json.loads(data_record.read_text()) if data_record.is_file() else None}
    model_file = output_dir / "model.pt"
    save_checkpoint(model_file, network.cpu().eval(), **meta)
    return model_file


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="folder with images/ and masks/")
    parser.add_argument("output", help="folder for last.pt (resumable state) and model.pt")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="shipped")
    parser.add_argument("--widths", type=int, nargs=6, help="override the network's six encoder widths")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch", type=int, default=192, help="training patch side (multiple of 32)")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--cldice-outputs", type=int, default=6,
                        help="how many outputs (main first) get the soft-clDice term; 6 = all, as the authors")
    parser.add_argument("--init", help="checkpoint to start from (fine-tuning), e.g. the shipped weights; with "
                        "--widths that double some of its stages, it is widened first (same function)")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast for the network (fast on CPUs with AMX or AVX512-BF16)")
    parser.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt")
    parser.add_argument("--stop-after", type=int, metavar="EPOCHS",
                        help="end (writing model.pt) after this many epochs of the --epochs schedule, e.g. for a "
                        "time budget; with --resume after them, model.pt of the saved state")
    parser.add_argument("--teacher", help="checkpoint of a larger trained network to distil into this one: its "
                        "logits on the training frames become a second target of the main output")
    parser.add_argument("--distill-weight", type=float, default=1.0, help="weight of the distillation term")
    parser.add_argument("--distill-temperature", type=float, default=2.0,
                        help="temperature that softens student and teacher logits in the distillation term")
    parser.add_argument("--hard-frames", type=float, default=0.0, metavar="FRACTION",
                        help="share of each epoch's draws given to frames in proportion to how badly the network "
                        "last segmented them (0: every frame once per epoch)")
    parser.add_argument("--preprocessing", choices=sorted(PREPROCESSING), default="paper",
                        help="how frames are cropped and normalised (stored in the checkpoint; inference uses it)")
    args = parser.parse_args(argv)
    if not 0 <= args.hard_frames < 1:
        parser.error("--hard-frames is a fraction in [0, 1)")
    config = NETWORKS[args.network]
    if args.widths:
        config = NetworkConfig(widths=tuple(args.widths), gated_attention=config.gated_attention,
                               bilateral_fusion=config.bilateral_fusion)
    command = "python -m guidewire.segmentation.train " + " ".join(sys.argv[1:] if argv is None else argv)
    print(train(args.data, args.output, config, args.epochs, args.batch_size, args.patch, args.learning_rate,
                args.seed, args.resume, args.threads, args.cldice_outputs, command, args.init, args.bf16,
                args.device, args.teacher, args.distill_weight, args.distill_temperature, args.hard_frames,
                args.preprocessing, args.stop_after))


if __name__ == "__main__":
    main()
