"""Per-sensor magnetometer calibration and background field.

    calibration:
      sensors:                  # row-major, one entry per sensor (or one for all)
        - hard_iron: [0, 0, 0]  # T, sensor axes: offset subtracted first
          soft_iron: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]  # then this matrix
          axes: ["+x", "+y", "+z"]  # sensor axis that gives array x, y, z
      background: [[bx, by, bz], ...]  # optional, T, array frame, one row per sensor

field_array = remap @ soft_iron @ (raw - hard_iron) - background
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from guidewire.contracts import ConfigError

AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


def axis_remap(axes) -> np.ndarray:
    """3x3 signed permutation from entries like '+y' or '-x'."""
    if len(axes) != 3:
        raise ConfigError(f"axes needs three entries such as ['+x', '+y', '+z'], got {axes}")
    matrix = np.zeros((3, 3))
    for row, entry in enumerate(axes):
        entry = str(entry).strip().lower()
        sign, name = (-1.0, entry[1:]) if entry.startswith("-") else (1.0, entry.lstrip("+"))
        if name not in AXIS_INDEX:
            raise ConfigError(f"axes entry '{entry}' is not one of +-x, +-y, +-z")
        matrix[row, AXIS_INDEX[name]] = sign
    if abs(abs(np.linalg.det(matrix)) - 1) > 1e-9:
        raise ConfigError(f"axes {list(axes)} use a sensor axis twice")
    return matrix


def _array(path, key: str, value, shape: tuple) -> np.ndarray:
    """A finite float array of the given shape, or a ConfigError naming the key and the value."""
    try:
        array = np.asarray(value, float)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {key} must be numbers, got {value!r}") from error
    if array.shape != shape:
        raise ConfigError(f"{path}: {key} must have shape {shape}, got {value!r} (shape {array.shape})")
    if not np.isfinite(array).all():
        raise ConfigError(f"{path}: {key} must be finite, got {value!r}")
    return array


@dataclass
class ArrayCalibration:
    hard_iron: np.ndarray  # (n,3) T
    transform: np.ndarray  # (n,3,3): remap @ soft_iron
    background: np.ndarray | None = None  # (n,3) T, array frame

    @classmethod
    def identity(cls, sensors: int) -> "ArrayCalibration":
        return cls(np.zeros((sensors, 3)), np.tile(np.eye(3), (sensors, 1, 1)))

    @classmethod
    def load(cls, path: str | Path, sensors: int) -> "ArrayCalibration":
        try:
            data = (yaml.safe_load(Path(path).read_text()) or {}).get("calibration", {})
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read calibration {path}: {error}") from error
        entries = data.get("sensors") or [{}]
        if len(entries) == 1:
            entries = entries * sensors
        if len(entries) != sensors:
            raise ConfigError(f"{path}: calibration.sensors has {len(entries)} entries, the array has {sensors}")
        hard, transform = np.zeros((sensors, 3)), np.zeros((sensors, 3, 3))
        for index, entry in enumerate(entries):
            unknown = set(entry) - {"hard_iron", "soft_iron", "axes"}
            if unknown:
                raise ConfigError(f"{path}: calibration.sensors[{index}] has unknown key '{sorted(unknown)[0]}'")
            key = f"calibration.sensors[{index}]"
            hard[index] = _array(path, f"{key}.hard_iron", entry.get("hard_iron", [0, 0, 0]), (3,))
            soft = _array(path, f"{key}.soft_iron", entry.get("soft_iron", np.eye(3).tolist()), (3, 3))
            if abs(np.linalg.det(soft)) < 1e-12:
                raise ConfigError(f"{path}: {key}.soft_iron is singular: {soft.tolist()}")
            transform[index] = axis_remap(entry.get("axes", ["+x", "+y", "+z"])) @ soft
        background = data.get("background")
        if background is not None:
            background = _array(path, f"calibration.background ({sensors} rows of 3)", background, (sensors, 3))
        return cls(hard, transform, background)

    def apply(self, raw: np.ndarray, subtract_background: bool = True) -> np.ndarray:
        """Array-frame field (n,3) from raw sensor readings (n,3); NaN rows stay NaN."""
        if raw.shape != self.hard_iron.shape:
            raise ValueError(f"reading has shape {raw.shape}, the calibration is for {self.hard_iron.shape}")
        field = np.einsum("nij,nj->ni", self.transform, raw - self.hard_iron)
        if subtract_background and self.background is not None:
            field = field - self.background
        return field

    def save_background(self, path: str | Path) -> None:
        """Write the background as a calibration file of its own (loadable with load())."""
        Path(path).write_text(yaml.safe_dump({"calibration": {"background": self.background.tolist()}}))


class BackgroundRecorder:
    """Averages the next `samples` calibrated fields (no wire on the bench) into a background.
    A missing or invalid sensor sample (NaN) is left out of that sensor's average."""

    def __init__(self, sensors: int, samples: int):
        self.samples = samples
        self.total, self.valid, self.count = np.zeros((sensors, 3)), np.zeros(sensors), 0

    def add(self, field: np.ndarray) -> bool:
        """Add one sample; True once the last one is in."""
        valid = np.isfinite(field).all(axis=1)
        self.total[valid] += field[valid]
        self.valid += valid
        self.count += 1
        return self.count >= self.samples

    @property
    def background(self) -> np.ndarray:
        """The average (n,3); zero for a sensor with no valid sample (see never_valid)."""
        return self.total / np.maximum(self.valid, 1)[:, None]

    @property
    def never_valid(self) -> list[int]:
        return np.flatnonzero(self.valid == 0).tolist()


class CalibratedField:
    """The driver's field path: the per-sensor calibration, then the background when asked to
    subtract it, and the recording of a new background on request (a service thread starts
    it, the sampling thread feeds it). background_file keeps the background across restarts."""

    def __init__(self, calibration: ArrayCalibration, subtract_background: bool = False, background_file: str = ""):
        self.calibration, self.subtract_background = calibration, subtract_background
        self.background_file = background_file
        if background_file and Path(background_file).is_file():
            self.calibration.background = ArrayCalibration.load(background_file, len(calibration.hard_iron)).background
        self._recording: BackgroundRecorder | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, calibration_file: str, sensors: int, subtract_background: bool = False,
             background_file: str = "") -> "CalibratedField":
        """From a calibration YAML, or the identity for ''."""
        calibration = ArrayCalibration.load(calibration_file, sensors) if calibration_file else \
            ArrayCalibration.identity(sensors)
        return cls(calibration, subtract_background, background_file)

    def record_background(self, samples: int) -> None:
        """Average the next `samples` fields (no wire present) into the background."""
        with self._lock:
            self._recording = BackgroundRecorder(len(self.calibration.hard_iron), samples)

    def apply(self, raw: np.ndarray) -> tuple[np.ndarray, BackgroundRecorder | None]:
        """The field to publish from a raw reading, and the recording this sample finished, if any
        (its background is in use, and saved to background_file, from this sample on)."""
        calibrated = self.calibration.apply(raw, subtract_background=False)
        finished = None
        with self._lock:
            if self._recording is not None and self._recording.add(calibrated):
                finished, self._recording = self._recording, None
                self.calibration.background = finished.background
                if self.background_file:
                    self.calibration.save_background(self.background_file)
        background = self.calibration.background
        return (calibrated - background if self.subtract_background and background is not None else calibrated,
                finished)

    @property
    def background_state(self) -> str:
        """'subtracted', 'recorded' (known, not subtracted) or 'none'."""
        if self.calibration.background is None:
            return "none"
        return "subtracted" if self.subtract_background else "recorded"
