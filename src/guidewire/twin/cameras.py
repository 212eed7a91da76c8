"""Rendering the wire in the orthogonal binocular camera pair.

The wire is a dark tube on the lit platform (as in the magnetic-fusion
paper's bench, where a threshold on low grey levels finds it). Drawn with
OpenCV's anti-aliased polylines at sub-pixel precision, with the tube's
projected width following its depth.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from guidewire.twin.wire import WireState, noise_key_of
from guidewire.twin.config import CameraConfig
from guidewire.geometry import PinholeCamera, look_at_rotation

_SUBPIXEL_BITS = 4


def make_camera(config: CameraConfig) -> PinholeCamera:
    intrinsics = np.array([[config.fx, 0.0, config.cx], [0.0, config.fy, config.cy], [0.0, 0.0, 1.0]])
    return PinholeCamera(
        width=config.width, height=config.height, intrinsics=intrinsics,
        distortion=np.asarray(config.distortion, float),
        rotation=look_at_rotation(config.position, config.look_at, config.up),
        position=np.asarray(config.position, float))


class CameraRenderer:
    """Renders mono8 images of one camera; the platform background is made once,
    and each frame shades only the wire's bounding box."""

    def __init__(self, config: CameraConfig, seed: int):
        self.config = config
        self.camera = make_camera(config)
        v, u = np.mgrid[0:config.height, 0:config.width].astype(np.float32)
        # Uneven illumination: brighter in the middle, as under a ring light.
        radius2 = ((u - config.cx) / config.width) ** 2 + ((v - config.cy) / config.height) ** 2
        self.background = (config.background_level * (1.0 - 0.25 * radius2)).astype(np.float32)
        self._frame = np.empty_like(self.background)
        self._noise_root = [seed, 0xCA, sum(config.name.encode())]

    def _coverage_u8(self, state: WireState) -> tuple[np.ndarray, tuple[slice, slice]]:
        """Wire coverage 0..255 of each pixel, and the bounding box it lies in."""
        config = self.config
        coverage = np.zeros((config.height, config.width), np.uint8)
        pixels = self.camera.project(state.centreline)
        depth = self.camera.to_camera(state.centreline)[:, 2]
        widths = config.fx * state.diameter / np.maximum(depth, 1e-6)
        scale = 1 << _SUBPIXEL_BITS
        fixed = np.rint(pixels * scale).astype(np.int32)
        # Segments of equal rounded width are drawn together (widths change slowly along the wire).
        thickness = np.maximum(1, np.rint(0.5 * (widths[:-1] + widths[1:]))).astype(int)
        start = 0
        for end in range(1, len(thickness) + 1):
            if end == len(thickness) or thickness[end] != thickness[start]:
                cv2.polylines(coverage, [fixed[start:end + 1]], False, 255, int(thickness[start]),
                              cv2.LINE_AA, _SUBPIXEL_BITS)
                start = end
        margin = int(thickness.max(initial=1)) + 2
        left, top = np.clip(np.floor(pixels.min(0)).astype(int) - margin, 0, [config.width, config.height])
        right, bottom = np.clip(np.ceil(pixels.max(0)).astype(int) + margin + 1, 0, [config.width, config.height])
        return coverage, (slice(top, bottom), slice(left, right))

    def wire_coverage(self, state: WireState) -> np.ndarray:
        """Fraction (0..1, float32) of each pixel covered by the wire."""
        return self._coverage_u8(state)[0].astype(np.float32) / 255.0

    def render(self, state: WireState, noise_key: Sequence[int] | None = None) -> np.ndarray:
        """A mono8 image of the wire with sensor noise. The noise is a function of this camera's seed
        and `noise_key` (non-negative integers naming the frame, such as a case and a frame number),
        by default the state's time in ns: the same frame renders the same wherever and in whatever
        order it is asked for."""
        coverage, box = self._coverage_u8(state)
        # Sensor noise from OpenCV's generator: numpy's takes about 60 ms for a 2048x1536
        # frame here, too slow for 15 Hz stereo. cv2's generator is per thread, so it is
        # seeded on every frame, whichever thread renders it.
        key = noise_key_of(state) if noise_key is None else list(noise_key)
        cv2.setRNGSeed(int(np.random.default_rng(self._noise_root + key).integers(1 << 31)))
        frame = cv2.randn(self._frame, 0.0, self.config.noise_rms)
        frame += self.background
        shading = self.background[box] * (self.config.wire_contrast / 255.0) * coverage[box]
        frame[box] -= shading
        np.clip(frame, 0, 255, out=frame)
        return frame.astype(np.uint8)
