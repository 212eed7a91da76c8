"""Simulated multi-view registration cases on a CT (the benchmark's and the tests' targets).

Guarding against the inverse crime, targets differ from what the optimiser renders: Siddon ray
tracing (exact radiological path) through the native-resolution CT, not trilinear samples of the
1.4 mm copy; a detector at twice the resolution, binned 2x2; a different bone attenuation (1.3x);
then Beer-Lambert with Poisson quantum noise, detector blur, a small intensity non-linearity
(gamma), a display window/level, and a circular collimator (pixels 0 outside).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from guidewire.registration.geometry import (
    ViewGeometry,
    apply_perturbation,
    random_perturbation,
    to_mm,
)
from guidewire.registration.optimise import XrayView
from guidewire.registration.volume import CTVolume

VIEW_ANGLES = {  # (primary, secondary) degrees: LAO(+)/RAO(-), cranial(+)/caudal(-)
    "ap": (0.0, 0.0),
    "lateral": (90.0, 0.0),
    "oblique": (-40.0, 20.0),
}


def carm_pose(primary_deg: float, secondary_deg: float, source_to_isocentre: float = 0.7,
              isocentre=(0.0, 0.0, 0.06)) -> np.ndarray:
    """The twin's C-arm source frame in the bench frame (metres), guidewire.twin.fluoroscopy.carm_to_bench."""
    from guidewire.twin.config import FluoroscopyConfig
    from guidewire.twin.fluoroscopy import carm_to_bench

    config = replace(FluoroscopyConfig(), primary_angle=np.radians(primary_deg),
                     secondary_angle=np.radians(secondary_deg), source_to_isocentre=source_to_isocentre,
                     isocentre=tuple(isocentre))
    return carm_to_bench(config)


def nominal_ct_pose(position=(0.0, 0.0, 0.06), rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
    """The twin's supine CT pose (head to bench +x), metres."""
    from guidewire.twin.config import FluoroscopyConfig
    from guidewire.twin.fluoroscopy import ct_to_bench

    return ct_to_bench(replace(FluoroscopyConfig(), ct_position=tuple(position), ct_rotation=tuple(rotation)))


def view_geometry(pose: np.ndarray, pixels: int = 128, detector_m: float = 0.3,
                  source_to_detector: float = 1.0) -> ViewGeometry:
    spacing = detector_m / pixels
    return ViewGeometry(source_to_detector, pixels, pixels, (spacing, spacing), pose)


@dataclass
class ImagingChain:
    peak_attenuation: float = 3.5  # mu*L at the 99.5th percentile of the anatomy
    photons: float = 20000.0  # unattenuated quanta per (binned) pixel
    blur_px: float = 0.6
    gamma: float = 0.85  # measured attenuation ** gamma: a small non-linearity
    window_center: float = 0.55  # on normalised attenuation
    window_width: float = 1.0
    collimation: float = 0.92  # collimator radius / half detector
    bits: int = 8

    def apply(self, line_integral: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import cv2

        scale = self.peak_attenuation / max(float(np.percentile(line_integral, 99.5)), 1e-6)
        expected = self.photons * np.exp(-scale * line_integral)
        if self.blur_px > 0:
            expected = cv2.GaussianBlur(expected.astype(np.float32), (0, 0), self.blur_px)
        quanta = np.maximum(rng.poisson(expected), 0.5)
        measured = np.maximum(-np.log(quanta / self.photons), 0) / self.peak_attenuation
        measured = measured ** self.gamma
        display = 1.0 - np.clip((measured - (self.window_center - self.window_width / 2)) / self.window_width, 0, 1)
        top = 255 if self.bits == 8 else 65535
        image = np.rint(1 + (top - 1) * display).astype(np.uint8 if self.bits == 8 else np.uint16)
        h, w = image.shape
        v, u = np.mgrid[0:h, 0:w]
        image[np.hypot(u - (w - 1) / 2, v - (h - 1) / 2) > self.collimation * min(h, w) / 2] = 0
        return image


def render_line_integrals(ct: CTVolume, ct_pose: np.ndarray, geometries: list[ViewGeometry], oversample: int = 2,
                          renderer: str = "siddon") -> list[np.ndarray]:
    """Noise-free line integrals of each view, rendered `oversample` times finer and binned."""
    out = []
    inv = np.linalg.inv(to_mm(ct_pose))
    for g in geometries:
        intr = g.intrinsics_mm(1.0 / oversample)
        cam = torch.tensor(inv @ g.pose_mm(), dtype=torch.float32)[None]
        with torch.no_grad():
            image = ct.render(cam, intr, renderer, n_points=512, patch_size=64 if intr[1] * intr[2] > 4096 else None)
            image = F.avg_pool2d(image, oversample)
        out.append(image[0, 0].numpy())
    return out


def detector_geometry(g: ViewGeometry):
    """The twin's DetectorGeometry (bench frame, m) of a view: pixel (u, v) at the detector point
    (-(u - cu) * column spacing, -(v - cv) * row spacing, sdd) of the source frame (the twin's
    CameraInfo has negative focal lengths)."""
    from guidewire.twin.fluoroscopy import DetectorGeometry

    R, source = g.pose[:3, :3], g.pose[:3, 3]
    row, col = g.pixel_spacing
    centre = source + g.source_to_detector * R[:, 2] + R[:, 0] * g.principal_point[0] + R[:, 1] * g.principal_point[1]
    origin = centre + R[:, 0] * col * (g.width - 1) / 2 + R[:, 1] * row * (g.height - 1) / 2
    return DetectorGeometry(source=source, origin=origin, column_step=-col * R[:, 0], row_step=-row * R[:, 1],
                            width=g.width, height=g.height)


def wire_line_integrals(geometries: list[ViewGeometry], time: float, bench_config=None) -> list[np.ndarray]:
    """The bench's guidewire at `time` (guidewire.twin) in each view, in the CT line integral's unit
    (density x mm): its chord lengths times its attenuation over the tissue's, as the twin composites it."""
    from guidewire.twin import DigitalTwin
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.fluoroscopy import wire_chord_lengths

    config = load_bench_config(bench_config)
    state = DigitalTwin(config).state(time)
    ratio = config.fluoroscopy.wire_attenuation / config.fluoroscopy.tissue_attenuation
    return [ratio * wire_chord_lengths(state, detector_geometry(g)) for g in geometries]


@dataclass
class Case:
    name: str
    views: list  # XrayView
    true_pose: np.ndarray  # CT-to-world, m
    initial_pose: np.ndarray  # perturbed, m


def sample_truth(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A held-out patient pose (a few cm and degrees about the twin's nominal supine CT) and C-arm
    angle jitter (a few degrees about AP / lateral / oblique)."""
    position = (rng.uniform(-0.03, 0.03), rng.uniform(-0.02, 0.02), 0.06 + rng.uniform(-0.02, 0.02))
    rotation = tuple(np.radians(rng.uniform(-5, 5, 3)))
    jitter = {name: (p + rng.uniform(-8, 8), s + rng.uniform(-5, 5)) for name, (p, s) in VIEW_ANGLES.items()}
    return nominal_ct_pose(position, rotation), jitter


def make_case(target_ct: CTVolume, rng: np.random.Generator, view_names=("ap", "lateral", "oblique"),
              pixels: int = 128, max_rotation_deg: float = 15.0, max_translation_mm: float = 30.0,
              chain: ImagingChain | None = None, name: str = "case", wire_time: float | None = None) -> Case:
    """wire_time: the bench's guidewire at this time (s) of its insertion over the anatomy (the
    truth and C-arm angles are those of the same rng without it; the noise and start differ)."""
    truth, jitter = sample_truth(rng)
    geometries = [view_geometry(carm_pose(*jitter[v]), pixels) for v in view_names]
    integrals = render_line_integrals(target_ct, truth, geometries)
    if wire_time is not None:
        integrals = [li + w for li, w in zip(integrals, wire_line_integrals(geometries, wire_time))]
    chain = chain or ImagingChain()
    views = []
    for v, g, li in zip(view_names, geometries, integrals):
        c = replace(chain, window_center=chain.window_center + rng.uniform(-0.05, 0.05),
                    window_width=chain.window_width * rng.uniform(0.9, 1.1))
        views.append(XrayView(c.apply(li, rng), g, name=v))
    initial = apply_perturbation(truth, random_perturbation(rng, max_rotation_deg, max_translation_mm))
    return Case(name, views, truth, initial)
