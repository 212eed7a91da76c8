"""Synthetic X-ray guidewire data from the bench's fluoroscopy.

Real-CT anatomy (diffdrr DRRs of the bench's CT, many C-arm and table poses,
cached) with a guidewire composited as exact chord lengths, then the
confounders the FGA-Net paper names (bone edges come with the CT; stents,
fixation devices, contrast-filled vessels) and thin distractors (ECG leads
with electrodes, collimator and shutter borders, window/level and dose
changes). Everything is added as attenuation before the imaging chain, so
noise and blur act on it as on the wire. Each frame is a pure function of
(seed, index); training and held-out sets use disjoint seeds and poses.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from guidewire.twin.fluoroscopy import AnatomyRenderer, DetectorGeometry, carm_to_bench, ct_to_bench, \
    wire_footprint
from guidewire.twin.wire import WireState
from guidewire.twin.config import FluoroscopyConfig

SUBPIXEL_BITS = 4  # cv2 drawing with 1/16 px coordinates
SUBPIXEL = 1 << SUBPIXEL_BITS


@dataclass(frozen=True)
class SyntheticSetConfig:
    size: int = 256  # frame side, px
    poses: int = 16  # anatomy renders (C-arm angles, table shift, zoom)
    frames_per_pose: int = 24
    seed: int = 1000
    wire_width_px: tuple = (2.0, 4.0)  # projected wire diameter range
    pixel_spacings: tuple = (0.0004, 0.0006, 0.0008)  # m, detector zoom modes
    base: FluoroscopyConfig = dataclasses.field(default_factory=FluoroscopyConfig)

    @property
    def frames(self) -> int:
        return self.poses * self.frames_per_pose


@dataclass
class SyntheticFrame:
    image: np.ndarray  # uint8, 0 outside the collimator
    mask: np.ndarray  # uint8 0/1 wire pixels
    centreline: np.ndarray  # (N,2) pixel (u, v) from the insertion end to the tip, inside the frame
    tip: np.ndarray  # (2,) pixel (u, v)


def pose_configs(config: SyntheticSetConfig) -> list[FluoroscopyConfig]:
    """C-arm and table poses of this set, drawn from its own seed."""
    rng = np.random.default_rng([config.seed, 0xA7])
    poses = []
    for _ in range(config.poses):
        shift = rng.uniform(-0.08, 0.08, 2)
        base = np.asarray(config.base.ct_position, float)
        poses.append(dataclasses.replace(
            config.base, detector_pixels=config.size, pixel_spacing=float(rng.choice(config.pixel_spacings)),
            primary_angle=float(rng.uniform(-0.6, 0.6)), secondary_angle=float(rng.uniform(-0.35, 0.35)),
            ct_position=(float(base[0] + shift[0]), float(base[1] + shift[1]), float(base[2]))))
    return poses


def _smooth_path(rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
                 curvature_scale: float, step: float = 1.0) -> np.ndarray:
    """A 2D curve with slowly varying random curvature (px^-1), sampled every `step` px."""
    count = max(int(length / step), 2)
    kappa = np.cumsum(rng.normal(0.0, curvature_scale * 0.15, count))
    kappa = np.clip(kappa * 0.2 + rng.normal(0, curvature_scale), -3 * curvature_scale, 3 * curvature_scale)
    kappa = cv2.GaussianBlur(kappa.reshape(-1, 1), (0, 0), 15).ravel()
    angles = heading + np.cumsum(kappa) * step
    steps = np.column_stack([np.cos(angles), np.sin(angles)]) * step
    return start + np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])


def wire_path(rng: np.random.Generator, size: int, valid: np.ndarray) -> np.ndarray:
    """Pixel path from outside the frame (insertion side) to a tip inside the valid
    field of view, with a J-shaped distal end."""
    inner = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(size // 16, 1))
    candidates = np.argwhere(inner if inner.any() else valid)
    tip = candidates[rng.integers(len(candidates))][::-1] + rng.uniform(-0.5, 0.5, 2)
    heading = rng.uniform(0, 2 * np.pi)
    hook = _smooth_path(rng, tip, heading, rng.uniform(0.03, 0.08) * size,
                        curvature_scale=0.0)
    # The distal hook: a constant bend over the last few millimetres.
    bend = rng.choice([-1, 1]) * rng.uniform(0.5, 2.5) / len(hook)
    angles = heading + bend * np.arange(len(hook))
    hook = tip + np.vstack([[0, 0], np.cumsum(np.column_stack([np.cos(angles), np.sin(angles)]), 0)])[:-1]
    shaft = _smooth_path(rng, hook[-1], float(angles[-1]), 3.0 * size, curvature_scale=rng.uniform(0.0005, 0.004))
    path = np.vstack([hook, shaft[1:]])[::-1]  # insertion end first
    inside = np.all((path > -0.1 * size) & (path < 1.1 * size), axis=1)
    first_inside_run = np.flatnonzero(~inside[::-1])
    start = len(path) - first_inside_run[0] if first_inside_run.size else 0
    return path[start:]


def _backproject(path: np.ndarray, geometry: DetectorGeometry, depth_fraction: np.ndarray) -> np.ndarray:
    """Bench points on the rays of pixel coordinates, at a fraction of the source-detector distance."""
    hits = geometry.origin + path[:, :1] * geometry.column_step + path[:, 1:] * geometry.row_step
    return geometry.source + (hits - geometry.source) * depth_fraction[:, None]


def _polyline(image: np.ndarray, points: np.ndarray, value: float, thickness: int, closed: bool = False) -> None:
    cv2.polylines(image, [np.rint(points * SUBPIXEL).astype(np.int32)], closed, value, max(int(thickness), 1),
                  cv2.LINE_AA, SUBPIXEL_BITS)


def _stent(rng, size) -> np.ndarray:
    layer = np.zeros((size, size), np.float32)
    centre = rng.uniform(0.1, 0.9, 2) * size
    length, width = rng.uniform(0.15, 0.4) * size, rng.uniform(0.03, 0.07) * size
    axis = rng.uniform(0, np.pi)
    along, across = np.array([np.cos(axis), np.sin(axis)]), np.array([-np.sin(axis), np.cos(axis)])
    cells = int(rng.integers(6, 14))
    t = np.linspace(-length / 2, length / 2, 2 * cells + 1)
    zigzag = np.where(np.arange(t.size) % 2 == 0, -width / 2, width / 2)
    for phase in (1, -1):
        points = centre + t[:, None] * along + (phase * zigzag)[:, None] * across
        _polyline(layer, points, 1.0, 1)
    return layer * rng.uniform(0.3, 0.9)


def _fixation(rng, size) -> np.ndarray:
    """A screw (threaded dense rectangle) or a surgical clip."""
    layer = np.zeros((size, size), np.float32)
    centre = rng.uniform(0.1, 0.9, 2) * size
    angle = rng.uniform(0, 180)
    if rng.random() < 0.5:
        length, width = rng.uniform(0.08, 0.2) * size, rng.uniform(0.02, 0.05) * size
        box = cv2.boxPoints((tuple(centre), (length, width), angle))
        cv2.fillConvexPoly(layer, np.rint(box * SUBPIXEL).astype(np.int32), 1.0, cv2.LINE_AA, SUBPIXEL_BITS)
        threads = np.linspace(-0.5, 0.5, 12)[:, None] * length * np.array([np.cos(np.radians(angle)),
                                                                           np.sin(np.radians(angle))])
        for offset in threads:
            cv2.circle(layer, tuple(np.rint((centre + offset) * SUBPIXEL).astype(int)),
                       int(width * 0.7 * SUBPIXEL), 0.6, -1, cv2.LINE_AA, SUBPIXEL_BITS)
        return np.minimum(layer, 1.0) * rng.uniform(1.5, 3.0)
    arm = rng.uniform(0.02, 0.05) * size
    a = np.radians(angle)
    d, n = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    clip = np.array([centre + arm * n + arm * 1.5 * d, centre + arm * n, centre - arm * n,
                     centre - arm * n + arm * 1.5 * d])
    _polyline(layer, clip, 1.0, int(rng.integers(2, 4)))
    return layer * rng.uniform(1.0, 2.5)


def _vessels(rng, size) -> np.ndarray:
    """Contrast-filled vessel tree: wide, tapering, soft-edged branches."""
    layer = np.zeros((size, size), np.float32)
    branches = [(rng.uniform(0, 1, 2) * size, rng.uniform(0, 2 * np.pi), rng.uniform(0.03, 0.06) * size)]
    for _ in range(int(rng.integers(3, 9))):
        if not branches:
            break
        start, heading, width = branches.pop(0)
        path = _smooth_path(rng, start, heading, rng.uniform(0.2, 0.6) * size, rng.uniform(0.002, 0.01))
        _polyline(layer, path, 1.0, int(max(width, 2)))
        if width > 4:
            split = path[int(rng.integers(len(path) // 3, len(path) - 1))]
            branches.append((split, heading + rng.uniform(-1.2, 1.2), width * 0.7))
            branches.append((path[-1], heading + rng.uniform(-0.5, 0.5), width * 0.8))
    return cv2.GaussianBlur(layer, (0, 0), 1.5) * rng.uniform(0.15, 0.5)


def _ecg_lead(rng, size) -> np.ndarray:
    """A lead crossing the field to an electrode (ring with a snap)."""
    layer = np.zeros((size, size), np.float32)
    electrode = rng.uniform(0.1, 0.9, 2) * size
    path = _smooth_path(rng, electrode, rng.uniform(0, 2 * np.pi), 2.0 * size, rng.uniform(0.0005, 0.004))
    _polyline(layer, path, 1.0, int(rng.integers(2, 5)))
    radius = rng.uniform(0.03, 0.07) * size
    cv2.circle(layer, tuple(np.rint(electrode * SUBPIXEL).astype(int)), int(radius * SUBPIXEL), 0.8, 2,
               cv2.LINE_AA, SUBPIXEL_BITS)
    cv2.circle(layer, tuple(np.rint(electrode * SUBPIXEL).astype(int)), int(radius * 0.3 * SUBPIXEL), 1.5, -1,
               cv2.LINE_AA, SUBPIXEL_BITS)
    return layer * rng.uniform(0.1, 0.35)


def _field_of_view(rng, size) -> np.ndarray:
    """Collimator circle, sometimes with straight shutter blades."""
    v, u = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2 + rng.normal(0, 0.03 * size, 2)
    valid = np.hypot(u - centre[0], v - centre[1]) <= rng.uniform(0.42, 0.75) * size
    if rng.random() < 0.4:
        angle = rng.uniform(0, np.pi)
        distance = (u - size / 2) * np.cos(angle) + (v - size / 2) * np.sin(angle)
        limit = rng.uniform(0.2, 0.45) * size
        valid &= np.abs(distance) <= limit
    return valid


class SyntheticFluoroscopy:
    """Frames of one synthetic set; anatomy is rendered once per pose (disk cache)."""

    def __init__(self, config: SyntheticSetConfig):
        self.config = config
        self.poses = pose_configs(config)
        self._anatomy: dict[int, tuple[np.ndarray, DetectorGeometry]] = {}
        self._renderers: dict[float, AnatomyRenderer] = {}

    def anatomy(self, pose_index: int) -> tuple[np.ndarray, DetectorGeometry]:
        if pose_index not in self._anatomy:
            pose = self.poses[pose_index]
            renderer = self._renderers.setdefault(pose.pixel_spacing, AnatomyRenderer(pose))
            self._anatomy[pose_index] = renderer.render(ct_to_bench(pose), carm_to_bench(pose))
        return self._anatomy[pose_index]

    def frame(self, index: int) -> SyntheticFrame:
        c = self.config
        pose_index = index // c.frames_per_pose
        pose = self.poses[pose_index]
        line_integral, geometry = self.anatomy(pose_index)
        rng = np.random.default_rng([c.seed, index])
        size = c.size
        attenuation = pose.tissue_attenuation * rng.uniform(0.7, 1.4) * line_integral

        valid = _field_of_view(rng, size)
        path = wire_path(rng, size, valid)
        depth = pose.source_to_isocentre / pose.source_to_detector + rng.normal(0, 0.01) + \
            0.01 * np.sin(np.linspace(0, rng.uniform(1, 6), len(path)))
        centreline = _backproject(path, geometry, depth)
        magnification = 1.0 / depth.mean()
        width_px = rng.uniform(*c.wire_width_px)
        diameter = width_px * pose.pixel_spacing / magnification
        tangents = np.gradient(centreline, axis=0)
        tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
        footprint = wire_footprint(WireState(0.0, 0.0, 0.0, centreline, tangents, diameter), geometry)
        # Contrast from barely visible to clear: the paper's low-SNR regime.
        attenuation = attenuation + rng.uniform(0.25, 1.0) * pose.wire_attenuation * footprint.chord_lengths()

        for probability, draw in ((0.35, _stent), (0.4, _fixation), (0.3, _vessels), (0.5, _ecg_lead)):
            while rng.random() < probability:
                attenuation = attenuation + draw(rng, size)
                probability *= 0.4

        photons = rng.uniform(2000, 30000)
        expected = photons * np.exp(-attenuation)
        expected = cv2.GaussianBlur(expected.astype(np.float32), (0, 0), rng.uniform(0.4, 1.0))
        measured = -np.log(np.maximum(rng.poisson(expected), 0.5) / photons)
        low, high = np.percentile(measured[valid], [rng.uniform(0, 5), rng.uniform(95, 100)])
        gamma = rng.uniform(0.7, 1.4)
        display = 1.0 - np.clip((measured - low) / max(high - low, 1e-6), 0, 1) ** gamma
        image = np.rint(1 + 254 * display).astype(np.uint8)
        image[~valid] = 0

        mask = footprint.mask() & valid
        visible = (path >= 0).all(1) & (path <= size - 1).all(1)
        visible &= valid[np.clip(np.rint(path[:, 1]).astype(int), 0, size - 1),
                         np.clip(np.rint(path[:, 0]).astype(int), 0, size - 1)]
        centreline_px = path[visible]
        return SyntheticFrame(image, mask, centreline_px, path[-1])


def write_frame(folder: Path, index: int, frame, index_file) -> None:
    """One frame of a training folder: images/NNNNN.png, masks/NNNNN.png (0/255) and its line
    of frames.jsonl (tip, every 4th centreline point); shared by the generators."""
    name = f"{index:05d}.png"
    cv2.imwrite(str(folder / "images" / name), frame.image)
    cv2.imwrite(str(folder / "masks" / name), frame.mask * 255)
    index_file.write(json.dumps({"name": name, "tip": frame.tip.round(2).tolist(),
                                 "centreline": frame.centreline[::4].round(2).tolist()}) + "\n")


def write_folder(config: SyntheticSetConfig, folder: str | Path, progress: bool = True) -> Path:
    """Write images/NNNNN.png, masks/NNNNN.png (0/255) and frames.jsonl (tip, centreline)."""
    from tqdm import tqdm

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    source = SyntheticFluoroscopy(config)
    with open(folder / "frames.jsonl", "w") as index_file:
        for index in tqdm(range(config.frames), desc=f"synthetic seed {config.seed}", disable=not progress):
            write_frame(folder, index, source.frame(index), index_file)
    (folder / "set.json").write_text(json.dumps(dataclasses.asdict(config), indent=1, default=str))
    return folder


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a synthetic X-ray guidewire set (images/, masks/).")
    parser.add_argument("output", help="folder to write")
    defaults = SyntheticSetConfig()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--poses", type=int, default=defaults.poses)
    parser.add_argument("--frames-per-pose", type=int, default=defaults.frames_per_pose)
    parser.add_argument("--size", type=int, default=defaults.size)
    args = parser.parse_args(argv)
    config = SyntheticSetConfig(size=args.size, poses=args.poses, frames_per_pose=args.frames_per_pose,
                                seed=args.seed)
    print(write_folder(config, args.output))


if __name__ == "__main__":
    main()
