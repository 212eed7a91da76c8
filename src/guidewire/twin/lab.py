"""A lab session on the twin, for scoring 3D reconstruction: wires, sensors and
the errors a real lab has, each switchable.

The data are made with the twin's richer models (magpylib's exact cylinders,
the AK09940A's noise, quantisation and clipping, rendered and segmented
camera images); the fits invert point-dipole rows on believed (perturbed)
geometry. Wire shapes come from the twin's own generator or from the
independent vessel-following one (guidewire.validation), which the fits
never see in training.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from guidewire.geometry import PinholeCamera
from guidewire.segmentation.centreline import Centreline
from guidewire.reconstruction.views import camera_trace
from guidewire.twin import DigitalTwin
from guidewire.twin.cameras import CameraRenderer, make_camera
from guidewire.twin.config import BenchConfig
from guidewire.twin.magnetics import quantise, sensor_positions, wire_magnet_placements, wire_magnets_fields
from guidewire.twin.wire import WireState

LAB_ERRORS = ("gain", "offset", "array_position", "polarization", "camera_calibration", "earth_drift")


@dataclass(frozen=True)
class LabErrors:
    """1-sigma sizes of the errors of a real bench (each 0 = off)."""

    gain: float = 0.0  # relative, per sensor axis
    offset: float = 0.0  # T, per sensor axis (hard iron, electronics)
    array_position: float = 0.0  # m, per axis: the array is not where it is believed to be
    polarization: float = 0.0  # relative, per magnet
    camera_calibration: float = 0.0  # px: believed principal point / rotation off by about this much
    earth_drift: float = 0.0  # T, per axis, uniform, after the background was recorded

    @classmethod
    def typical(cls, only: str | None = None) -> "LabErrors":
        """The issue's lab: gain 1 %, offsets 2 uT, array 0.3 mm, polarisation 5 %, 0.5 px, drift 0.5 uT."""
        full = cls(gain=0.01, offset=2e-6, array_position=0.0003, polarization=0.05, camera_calibration=0.5,
                   earth_drift=0.5e-6)
        if only is None:
            return full
        return replace(cls(), **{only: getattr(full, only)})


@dataclass
class LabCase:
    truth: WireState
    top_camera: PinholeCamera  # as believed (calibrated)
    side_camera: PinholeCamera
    top_image: np.ndarray
    side_image: np.ndarray
    top_trace: Centreline | None  # the wire in the image, from the segmenter
    side_trace: Centreline | None
    sensor_positions: np.ndarray  # (n,3) m, as believed
    field: np.ndarray  # (n,3) T, measured
    background: np.ndarray  # (n,3) T, recorded without the wire
    status: np.ndarray  # (n,) STATUS_*
    noise: float  # T, per-axis 1-sigma of field - background

    @property
    def top_centreline(self) -> np.ndarray | None:
        """(n,2) px, entry first."""
        return None if self.top_trace is None else self.top_trace.points

    @property
    def side_centreline(self) -> np.ndarray | None:
        return None if self.side_trace is None else self.side_trace.points

    @property
    def side_view(self) -> tuple:
        """The side camera as reconstruct's second view: (camera, centreline, off-path skeleton pixels)."""
        off_path = np.zeros((0, 2)) if self.side_trace is None else self.side_trace.off_path
        return self.side_camera, self.side_centreline, off_path


def wire_state_from_centreline(centreline: np.ndarray, diameter: float) -> WireState:
    tangents = np.gradient(centreline, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    length = float(np.linalg.norm(np.diff(centreline, axis=0), axis=1).sum())
    return WireState(time=0.0, inserted_length=length, rotation=0.0, centreline=centreline, tangents=tangents,
                     diameter=diameter)


def _believed_camera(camera: PinholeCamera, error_px: float, rng: np.random.Generator) -> PinholeCamera:
    """A calibration about `error_px` off: principal point and a small rotation."""
    if error_px == 0:
        return camera
    intrinsics = camera.intrinsics.copy()
    intrinsics[:2, 2] += rng.normal(0.0, error_px, 2)
    focal = float(np.mean(np.diag(intrinsics)[:2]))
    tilt = Rotation.from_rotvec(rng.normal(0.0, error_px / focal, 3)).as_matrix()
    return replace(camera, intrinsics=intrinsics, rotation=camera.rotation @ tilt)


class Lab:
    """Makes cases for one bench configuration; `case(state, errors, seed)` is deterministic."""

    def __init__(self, config: BenchConfig):
        self.config = config
        self.twin = DigitalTwin(config)
        cameras = {c.name: c for c in config.stereo}
        self.renderers = {name: CameraRenderer(camera, config.seed) for name, camera in cameras.items()}
        self.cameras = {name: make_camera(camera) for name, camera in cameras.items()}
        self.array = config.magnetometer_array
        self.positions = sensor_positions(self.array)
        self.static_field = self.twin.magnetometer.background

    def case(self, truth: WireState, errors: LabErrors, seed: int, background_samples: int = 50,
             images: dict | None = None, frame_seed: int | None = None) -> LabCase:
        """`images` may carry already segmented images of this wire ({name: (image, Centreline or None)}).
        `frame_seed`: one frame of a sequence in the lab of `seed` (its errors, calibration and background),
        with this frame's own sensor noise."""
        rng = np.random.default_rng([seed, 0x1AB])
        frame_rng = rng if frame_seed is None else np.random.default_rng([frame_seed, 0x1AC])
        array = self.array
        count = len(self.positions)
        gain = 1.0 + rng.normal(0.0, errors.gain, (count, 3))
        offset = rng.normal(0.0, errors.offset, (count, 3))
        shift = rng.normal(0.0, errors.array_position, 3)
        polarization = 1.0 + rng.normal(0.0, errors.polarization, 16)
        drift = rng.normal(0.0, errors.earth_drift, 3)
        true_positions = self.positions + shift

        placements = wire_magnet_placements(truth, self.config.guidewire)
        placements = replace(placements, polarizations=placements.polarizations
                             * polarization[:len(placements.polarizations)])
        wire = wire_magnets_fields([placements], true_positions)[0]
        # The static field at the shifted array: its gradient is what a mispositioned array sees.
        static = self.static_field if errors.array_position == 0 else self._static_at(true_positions)

        def read(true_field, samples, noise_rng):
            noisy = true_field[None] + noise_rng.normal(0.0, array.noise_rms, (samples, count, 3))
            counts, status = quantise(gain * noisy + offset, array)
            return counts * array.lsb, status

        background_reads, _ = read(static, background_samples, rng)
        field, status = read(static + drift + wire, 1, frame_rng)
        noise = array.noise_rms * np.sqrt(1.0 + 1.0 / background_samples)

        images = dict(images or {})
        # Each case's (and frame's) own camera noise, whatever else the lab rendered before it.
        noise_key = [seed, 0 if frame_seed is None else frame_seed + 1]
        for name in ("camera_top", "camera_side"):
            if name not in images:
                image = self.renderers[name].render(truth, noise_key)
                images[name] = (image, camera_trace(image))
        return LabCase(
            truth=truth,
            top_camera=_believed_camera(self.cameras["camera_top"], errors.camera_calibration, rng),
            side_camera=_believed_camera(self.cameras["camera_side"], errors.camera_calibration, rng),
            top_image=images["camera_top"][0], side_image=images["camera_side"][0],
            top_trace=images["camera_top"][1], side_trace=images["camera_side"][1],
            sensor_positions=self.positions.copy(), field=field[0], background=background_reads.mean(axis=0),
            status=status[0], noise=noise)

    def _static_at(self, positions: np.ndarray) -> np.ndarray:
        import magpylib

        from guidewire.twin.magnetics import static_source

        return magpylib.getB(static_source(self.config.static_source), positions) + np.asarray(
            self.config.earth_field, float)
