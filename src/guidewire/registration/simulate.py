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


REFERENCE_PIXELS = 128  # the detector size ImagingChain's per-pixel defaults are given for


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

    def for_pixels(self, pixels: int) -> "ImagingChain":
        """The same dose per detector area and blur width on a detector of `pixels` instead of
        REFERENCE_PIXELS across: finer pixels catch fewer quanta each, and the blur spans more of them."""
        ratio = pixels / REFERENCE_PIXELS
        return replace(self, photons=self.photons / ratio ** 2, blur_px=self.blur_px * ratio)

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
class CathLabDevices:
    """What else a cath lab's views show over the patient, none of it in the CT: the guidewire's
    catheter and ECG leads with electrode snaps on the chest. Attenuations are multiples of the
    CT's line-integral unit per mm of path (soft tissue is about 0.19 of it; the twin's wire 50)."""
    ecg_leads: int = 3
    lead_core_mm: float = 0.5  # the lead's conductor (copper); the insulation is close to tissue
    lead_attenuation: float = 30.0
    snap_mm: float = 4.0  # electrode snap: a metal stud, drawn as a 4 mm blob
    snap_attenuation: float = 30.0
    catheter_outer_mm: float = 2.0  # 6 F
    catheter_inner_mm: float = 1.6
    catheter_attenuation: float = 10.0  # braided, barium-loaded polymer wall
    catheter_short_of_tip_mm: float = 40.0  # the wire leads the catheter by this much


def _anterior_surface(ct: CTVolume, cell_mm: float = 5.0):
    """The patient's anterior skin height (CT frame, mm: the largest y of the body) as a function of
    (x, z), from the voxels above a fifth of the 90th percentile of density (air is 0)."""
    from scipy.interpolate import RegularGridInterpolator
    from scipy.ndimage import maximum_filter

    density = ct.density.numpy()
    body = np.argwhere(density > 0.2 * np.percentile(density, 90))
    points = body @ ct.affine[:3, :3].T + ct.affine[:3, 3]
    x_edges = np.arange(points[:, 0].min(), points[:, 0].max() + cell_mm, cell_mm)
    z_edges = np.arange(points[:, 2].min(), points[:, 2].max() + cell_mm, cell_mm)
    ix, iz = np.digitize(points[:, 0], x_edges) - 1, np.digitize(points[:, 2], z_edges) - 1
    height = np.full((len(x_edges), len(z_edges)), -np.inf)
    np.maximum.at(height, (ix, iz), points[:, 1])
    height = maximum_filter(height, 3)  # close one-cell gaps
    floor = np.percentile(height[np.isfinite(height)], 5)
    height[~np.isfinite(height)] = floor
    centres = (x_edges + cell_mm / 2, z_edges + cell_mm / 2)
    return RegularGridInterpolator(centres, height, bounds_error=False, fill_value=floor), centres


def device_line_integrals(target_ct: CTVolume, ct_pose: np.ndarray, geometries: list[ViewGeometry],
                          rng: np.random.Generator, wire_time: float | None = None,
                          devices: CathLabDevices | None = None, bench_config=None) -> list[np.ndarray]:
    """Line integrals (the CT's unit) of ECG leads lying on the patient's chest, each a gently
    wandering 400 mm path from an electrode snap (off the body it drops to the body's lowest
    heights, as a lead hanging down the side), and, with `wire_time`, a catheter over the bench's
    guidewire at that time. 3D objects, so every view sees the same ones."""
    from guidewire.twin.fluoroscopy import wire_chord_lengths
    from guidewire.twin.lab import wire_state_from_centreline as tube

    devices = devices or CathLabDevices()
    surface, (x_centres, z_centres) = _anterior_surface(target_ct)
    to_bench = to_mm(ct_pose)
    tubes = []  # (state in the bench frame, m; attenuation per mm, negative for a lumen)
    for _ in range(devices.ecg_leads):
        start = np.array([rng.uniform(*np.percentile(x_centres, [20, 80])), 0.0,
                          rng.uniform(*np.percentile(z_centres, [15, 85]))])
        heading = rng.uniform(0, 2 * np.pi)
        path = [start]
        for _ in range(80):  # 5 mm steps, a gently wandering lead, 400 mm
            heading += rng.normal(0, 0.12)
            path.append(path[-1] + 5.0 * np.array([np.cos(heading), 0.0, np.sin(heading)]))
        path = np.array(path)
        path[:, 1] = surface(path[:, [0, 2]]) + devices.lead_core_mm
        bench = (path @ to_bench[:3, :3].T + to_bench[:3, 3]) / 1000.0
        tubes.append((tube(bench, devices.lead_core_mm / 1000), devices.lead_attenuation))
        snap = bench[0] + np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5e-3]])
        tubes.append((tube(snap, devices.snap_mm / 1000), devices.snap_attenuation))
    if wire_time is not None:
        from guidewire.twin import DigitalTwin
        from guidewire.twin.config import load_bench_config

        wire = DigitalTwin(load_bench_config(bench_config)).state(wire_time).centreline
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(wire, axis=0), axis=1))])
        body = wire[along <= along[-1] - devices.catheter_short_of_tip_mm / 1000]
        if len(body) >= 2:  # the hollow catheter: its outer tube less its lumen
            tubes.append((tube(body, devices.catheter_outer_mm / 1000), devices.catheter_attenuation))
            tubes.append((tube(body, devices.catheter_inner_mm / 1000), -devices.catheter_attenuation))
    integrals = []
    for g in geometries:
        detector = detector_geometry(g)
        integral = np.zeros((g.height, g.width), np.float32)
        for state, attenuation in tubes:
            integral += attenuation * wire_chord_lengths(state, detector)
        integrals.append(integral)
    return integrals


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
              chain: ImagingChain | None = None, name: str = "case", wire_time: float | None = None,
              devices_rng: np.random.Generator | None = None) -> Case:
    """wire_time: the bench's guidewire at this time (s) of its insertion over the anatomy;
    devices_rng: also ECG leads and (with the wire) its catheter, placed by this generator
    (device_line_integrals). The truth and C-arm angles are those of the same rng without either;
    the noise and start differ."""
    truth, jitter = sample_truth(rng)
    geometries = [view_geometry(carm_pose(*jitter[v]), pixels) for v in view_names]
    # At least 256 rays across, binned: a 128 px pixel spans about two native voxels at the isocentre (1.6 mm); a 512 px
    # one less than one, and oversampling it would quadruple a 30 s render per view.
    integrals = render_line_integrals(target_ct, truth, geometries, oversample=max(1, round(256 / pixels)))
    if wire_time is not None:
        integrals = [li + w for li, w in zip(integrals, wire_line_integrals(geometries, wire_time))]
    if devices_rng is not None:
        integrals = [li + d for li, d in zip(integrals, device_line_integrals(
            target_ct, truth, geometries, devices_rng, wire_time))]
    chain = chain or ImagingChain().for_pixels(pixels)
    views = []
    for v, g, li in zip(view_names, geometries, integrals):
        c = replace(chain, window_center=chain.window_center + rng.uniform(-0.05, 0.05),
                    window_width=chain.window_width * rng.uniform(0.9, 1.1))
        views.append(XrayView(c.apply(li, rng), g, name=v))
    initial = apply_perturbation(truth, random_perturbation(rng, max_rotation_deg, max_translation_mm))
    return Case(name, views, truth, initial)
