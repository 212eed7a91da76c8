"""Train the paper's learned reconstruction: the small depth network, the magnetic encoder-decoder and
the fusion networks of its ablation (encoder-decoder only, + KNN, + cross-attention).

    python -m guidewire.reconstruction.train_learned DATA_DIR OUT_DIR [--resume]

DATA_DIR holds .npz samples (python -m guidewire.twin.fusion_set, or your own in that layout).
Writes OUT_DIR/depth.pt, magnetic.pt and fusion_{encdec,knn,full}.pt, each after every epoch
(--resume continues from them). Fusion training follows the paper: Adam, batch 4, learning rate
1e-4, weight decay 1e-4, weighted MAE (1, 1, 5); augmentation by rotations about the vertical axis
through the array and mirror images (the paper's flips and rotations; its scaling would change
the field's physics, so it is left out).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from guidewire.reconstruction.depth import SmallDepthNet
from guidewire.reconstruction.learned import (FusionConfig, FusionNet, MagneticDepth, branch_inputs,
                                              chamfer, fusion_state, image_branch, weighted_mae)

VARIANTS = {"encdec": FusionConfig(knn=0, attention=False), "knn": FusionConfig(knn=8, attention=False),
            "full": FusionConfig(knn=8, attention=True)}


def load_samples(folder: Path) -> list[dict]:
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"no .npz samples in {folder}")
    return [dict(np.load(file)) for file in files]


def _standardised(disparity: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    values = disparity[valid]
    return (disparity - values.mean()) / values.std().clamp_min(1e-6)


def train_depth(samples, out: Path, epochs: int, resume: bool, seed: int = 0) -> SmallDepthNet:
    """Scale-and-shift-invariant loss on disparity, wire pixels weighted 20x (they are 0.2 % of the image)."""
    torch.manual_seed(seed)
    network, path = SmallDepthNet(), out / "depth.pt"
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    start = 0
    if resume and path.exists():
        state = torch.load(path, weights_only=False)
        network.load_state_dict(state["state"])
        optimiser.load_state_dict(state["optimiser"])
        start = state["epoch"] + 1
    images = torch.stack([torch.from_numpy(s["image"].astype(np.float32)) for s in samples])[:, None]
    images = (images - images.mean(dim=(2, 3), keepdim=True)) / images.std(dim=(2, 3), keepdim=True)
    targets = torch.stack([torch.from_numpy(s["disparity"]) for s in samples])
    for epoch in range(start, epochs):
        network.train()
        order = torch.randperm(len(samples))
        bar = tqdm(range(0, len(order), 4), desc=f"depth epoch {epoch + 1}/{epochs}")
        for first in bar:
            batch = order[first:first + 4]
            prediction = network(images[batch])
            loss = 0.0
            for p, t in zip(prediction, targets[batch]):
                valid = t > 0
                weight = 1.0 + 19.0 * (t > t[valid].median() * 1.02).float()
                loss = loss + (weight * (_standardised(p, valid) - _standardised(t, valid)).abs())[valid].mean()
            optimiser.zero_grad()
            (loss / len(batch)).backward()
            optimiser.step()
            bar.set_postfix(loss=f"{loss.item() / len(batch):.3f}")
        torch.save({"state": network.state_dict(), "optimiser": optimiser.state_dict(), "epoch": epoch}, path)
    return network.eval()


def depth_predictions(network: SmallDepthNet, samples) -> list[np.ndarray]:
    with torch.no_grad():
        out = []
        for sample in samples:
            image = torch.from_numpy(sample["image"].astype(np.float32))[None, None]
            image = (image - image.mean()) / image.std().clamp_min(1e-6)
            out.append(network(image)[0].numpy())
        return out


def branch_tensors(samples, disparities) -> dict:
    image_points, xy, field, truth = [], [], [], []
    for sample, disparity in zip(samples, disparities):
        points = image_branch(sample, disparity)
        sample_xy, features = branch_inputs(sample, points)
        image_points.append(points)
        xy.append(sample_xy)
        field.append(features)
        truth.append(sample["points"])
    return {key: torch.tensor(np.stack(value), dtype=torch.float32) for key, value in
            (("image", image_points), ("xy", xy), ("field", field), ("truth", truth))}


def augment(data: dict, index: torch.Tensor, generator: torch.Generator) -> dict:
    """Rotation about the vertical axis through the array centre, and a mirror y -> -y, applied to every
    point and field vector alike (physically consistent)."""
    angle = torch.rand(len(index), generator=generator) * 2 * np.pi
    mirror = torch.where(torch.rand(len(index), generator=generator) < 0.5, -1.0, 1.0)
    c, s = torch.cos(angle)[:, None], torch.sin(angle)[:, None]

    def planar(x, y):
        y = y * mirror[:, None]
        return c * x - s * y, s * x + c * y

    out = {}
    for key in ("image", "truth"):
        points = data[key][index].clone()
        points[..., 0], points[..., 1] = planar(points[..., 0], points[..., 1])
        out[key] = points
    xy = data["xy"][index].clone()
    xy[..., 0], xy[..., 1] = planar(xy[..., 0], xy[..., 1])
    field = data["field"][index].clone()
    field[..., 0], field[..., 1] = planar(field[..., 0], field[..., 1])
    out["xy"], out["field"] = xy, field
    return out


def train_networks(data: dict, out: Path, epochs: int, resume: bool, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    magnetic, path = MagneticDepth(), out / "magnetic.pt"
    fusions = {name: FusionNet(config) for name, config in VARIANTS.items()}
    optimisers = {name: torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-4)
                  for name, net in [("magnetic", magnetic), *fusions.items()]}
    start = 0
    if resume and path.exists():
        state = torch.load(path, weights_only=False)
        magnetic.load_state_dict(state["state"])
        optimisers["magnetic"].load_state_dict(state["optimiser"])
        for name, net in fusions.items():
            saved = torch.load(out / f"fusion_{name}.pt", weights_only=False)
            net.load_state_dict(saved["state"])
            optimisers[name].load_state_dict(saved["optimiser"])
        start = state["epoch"] + 1
    count = len(data["truth"])
    for epoch in range(start, epochs):
        order = torch.randperm(count, generator=generator)
        totals = {name: 0.0 for name in optimisers}
        for net in [magnetic, *fusions.values()]:
            net.train()
        for first in tqdm(range(0, count - 1, 4), desc=f"fusion epoch {epoch + 1}/{epochs}", leave=False):
            index = order[first:first + 4]
            if len(index) < 2:  # BatchNorm needs two
                continue
            batch = augment(data, index, generator)
            height = magnetic(batch["xy"], batch["field"])
            magnetic_points = torch.cat([batch["xy"], height[..., None]], -1)
            losses = {"magnetic": chamfer(magnetic_points, batch["truth"])}
            for name, net in fusions.items():
                losses[name] = weighted_mae(net(batch["image"], magnetic_points.detach(), batch["field"]),
                                            batch["truth"])
            for name, loss in losses.items():
                optimisers[name].zero_grad()
                loss.backward()
                optimisers[name].step()
                totals[name] += loss.item()
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v * 4 / count:.5f}" for k, v in totals.items()))
        torch.save({"state": magnetic.state_dict(), "optimiser": optimisers["magnetic"].state_dict(),
                    "epoch": epoch}, path)
        for name, net in fusions.items():
            torch.save({**fusion_state(net), "optimiser": optimisers[name].state_dict(), "epoch": epoch},
                       out / f"fusion_{name}.pt")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--depth-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=200, help="fusion epochs (the paper: 200)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    samples = load_samples(args.data)
    depth = train_depth(samples, args.out, args.depth_epochs, args.resume)
    data = branch_tensors(samples, depth_predictions(depth, samples))
    train_networks(data, args.out, args.epochs, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
