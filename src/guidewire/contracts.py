"""The ground floor: what every source of data promises, and the factories that open one.

This module imports numpy and the standard library only. The digital twin
(guidewire.twin) and the hardware drivers (guidewire.hardware) stand side by
side on it; the factories import the backend they are asked for, and nothing
else, so a hardware driver never pulls in magpylib, OpenCV or torch.

    array = open_array("i2c", ArraySettings(rate_hz=400))       # or "sim", "serial"
    frames = open_frames("folder", FrameSettings(location="run/"))

A new sensor backend is a module with an `open_array(settings)` (or
`open_frames(settings)`) function, registered in ARRAY_BACKENDS (FRAME_SOURCES).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# Per-sensor status of a magnetometer-array reading; equal to MagnetometerArray.msg's constants
# (test_contracts ties the message, the AK09940A decoding and these together).
STATUS_OK = 0  # a new conversion within range
STATUS_SATURATED = 1  # at least one axis outside the measurement range
STATUS_STALE = 2  # no new conversion, or one the sensor flagged invalid (NaN field)
STATUS_MISSING = 3  # the sensor did not answer; NaN field and temperature
STATUS_NAMES = {STATUS_OK: "ok", STATUS_SATURATED: "saturated", STATUS_STALE: "stale", STATUS_MISSING: "missing"}


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key or file."""


class FrameError(RuntimeError):
    """One frame could not be read or has the wrong size; later frames may be fine."""


class EndOfStream(RuntimeError):
    """A finite source has no more frames."""


@dataclass(frozen=True)
class ArrayReading:
    """One synchronous sample of a magnetometer array, sensors row-major."""

    field: np.ndarray  # (n,3) T in the array frame; NaN rows for missing sensors
    status: np.ndarray  # (n,) uint8 STATUS_*
    temperature: np.ndarray  # (n,) degrees Celsius, NaN where unknown


def grid_positions(rows: int, cols: int, pitch: float, height: float = 0.0) -> np.ndarray:
    """Centres (rows*cols, 3) of a sensor grid, row-major, centred on the origin, rows along y."""
    row_offsets = (np.arange(rows) - (rows - 1) / 2) * pitch
    col_offsets = (np.arange(cols) - (cols - 1) / 2) * pitch
    y, x = np.meshgrid(row_offsets, col_offsets, indexing="ij")
    return np.column_stack([x.ravel(), y.ravel(), np.full(x.size, height)])


@dataclass(frozen=True)
class CameraCalibration:
    """A camera's calibration in the ROS camera_info convention (plumb_bob distortion)."""

    width: int
    height: int
    intrinsics: np.ndarray  # K, 3x3
    distortion: np.ndarray  # D, (5,)
    projection: np.ndarray  # P, 3x4
    rectification: np.ndarray = field(default_factory=lambda: np.eye(3))  # R, 3x3
    distortion_model: str = "plumb_bob"


class ArraySource(Protocol):
    """A magnetometer array: its layout, and one reading per call."""

    rows: int
    cols: int
    positions: np.ndarray  # (rows*cols, 3) sensor centres in the array frame, m
    noise_rms: float  # T, per axis
    dropped: int  # frames lost before they reached the reader (counted by the source)
    bus_errors: int  # transfers that failed (no acknowledge, CRC)
    # A source that is a pure function of time (the twin) reads blocks of upcoming samples at
    # once: read_ahead(times) -> [ArrayReading]. None for hardware, which is read when a slot comes.
    read_ahead: object | None

    def read(self, time: float) -> ArrayReading: ...

    def close(self) -> None: ...


class FrameSource(Protocol):
    """Cameras that are read together: grab(time) returns {camera name: image}."""

    names: list[str]

    def grab(self, time: float) -> dict[str, np.ndarray]: ...

    def calibration(self, name: str) -> CameraCalibration | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ArraySettings:
    """Everything a magnetometer-array backend may need; each reads its own fields."""

    rate_hz: float = 100.0
    rows: int = 4  # hardware layout (the twin's comes from its configuration)
    cols: int = 4
    pitch: float = 0.025  # m
    bench_config: str = ""  # twin: YAML path, '' = embedded defaults
    i2c_bus: int = 1
    multiplexer_address: int = 0x70
    serial_port: str = "/dev/ttyACM0"
    baudrate: int = 2_000_000


@dataclass(frozen=True)
class FrameSettings:
    """Everything a frame source may need; each reads its own fields."""

    location: str = ""  # device index, video file, image folder or DICOM file
    camera_name: str = "camera"  # single-camera sources
    loop: bool = False  # restart a file or folder at its end
    bench_config: str = ""  # twin sources
    camera_info_url: str = ""  # hardware cameras: camera_calibration YAML (file:// or a path); '' = none
    view: str = ""  # sim_xray: a named C-arm view (guidewire.twin.fluoroscopy.CARM_VIEWS); '' = the bench's angles
    detector_pixels: int = 0  # sim_xray: bin the detector to this many pixels a side (same field); 0 = the bench's


# backend name -> "module:function"; the module is imported only when that backend is opened.
ARRAY_BACKENDS = {
    "sim": "guidewire.twin.sources:open_array",
    "i2c": "guidewire.hardware.i2c_array:open_array",
    "serial": "guidewire.hardware.serial_array:open_array",
}
FRAME_SOURCES = {
    "sim_stereo": "guidewire.twin.sources:open_stereo",
    "sim_xray": "guidewire.twin.sources:open_fluoroscopy",
    "device": "guidewire.hardware.cameras:open_video",
    "video": "guidewire.hardware.cameras:open_video",
    "folder": "guidewire.hardware.cameras:open_folder",
    "dicom": "guidewire.hardware.cameras:open_dicom",
}


def _opener(registry: dict, kind: str, name: str):
    if name not in registry:
        raise ValueError(f"unknown {kind} '{name}' (choose from {', '.join(registry)})")
    module, _, function = registry[name].partition(":")
    return getattr(importlib.import_module(module), function)


def open_array(backend: str, settings: ArraySettings = ArraySettings()) -> ArraySource:
    """The magnetometer array of a backend (ARRAY_BACKENDS); ValueError names an unknown one."""
    return _opener(ARRAY_BACKENDS, "backend", backend)(settings)


def open_frames(source: str, settings: FrameSettings = FrameSettings()) -> FrameSource:
    """The frame source of a name (FRAME_SOURCES); ValueError names an unknown one."""
    return _opener(FRAME_SOURCES, "source", source)(settings)
