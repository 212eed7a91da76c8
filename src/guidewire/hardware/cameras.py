"""Recorded and live imagery: an OpenCV device or video file, an image folder, a DICOM cine.

Each source's grab(time) returns {camera_name: image}. A frame that cannot be
read raises FrameError (the node logs it and goes on); the end of a file or
folder raises EndOfStream unless the source loops. OpenCV and pydicom are
imported when a source that needs them opens, so this module imports without
them. A camera's calibration comes from a camera_calibration YAML
(`camera_info_url`, as usb_cam and the ROS camera drivers take it).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import yaml

from guidewire.contracts import CameraCalibration, ConfigError, EndOfStream, FrameError, FrameSettings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm"}


def checked_size(image: np.ndarray | None, expected: tuple[int, int] | None, what: str) -> np.ndarray:
    if image is None:
        raise FrameError(f"{what}: unreadable or corrupt image")
    if expected and image.shape[:2] != expected:
        raise FrameError(f"{what}: size {image.shape[1]}x{image.shape[0]}, expected {expected[1]}x{expected[0]}")
    return image


class _SingleCamera:
    """One camera whose calibration, if any, comes from a camera_calibration YAML."""

    names: list[str]
    camera_calibration: CameraCalibration | None = None

    def calibration(self, name: str) -> CameraCalibration | None:
        return self.camera_calibration

    def close(self) -> None:
        pass


class _Cursor:
    """Position in a finite sequence of frames that loops or ends."""

    def __init__(self, count: int, loop: bool, what: str):
        self.count, self.loop, self.what, self.index = count, loop, what, 0

    def advance(self) -> int:
        if self.index >= self.count:
            if not self.loop:
                raise EndOfStream(f"end of {self.what} after {self.count} frames")
            self.index = 0
        self.index += 1
        return self.index - 1


class FolderSource(_SingleCamera):
    """Images of a folder in name order (one camera)."""

    def __init__(self, folder: str, name: str, loop: bool, size: tuple[int, int] | None = None):
        self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if Path(folder).is_dir() else []
        if not self.files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        self.names, self.size = [name], size
        self.cursor = _Cursor(len(self.files), loop, f"folder {folder}")

    def grab(self, time: float) -> dict[str, np.ndarray]:
        import cv2

        file = self.files[self.cursor.advance()]
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        return {self.names[0]: checked_size(image, self.size, str(file))}


class VideoSource(_SingleCamera):
    """A video file or an OpenCV device index (one camera)."""

    def __init__(self, location: str, name: str, loop: bool, size: tuple[int, int] | None = None):
        import cv2

        self.location = int(location) if location.isdigit() else location
        self.capture = cv2.VideoCapture(self.location)
        if not self.capture.isOpened():
            raise FileNotFoundError(f"cannot open video source {location}")
        self.names, self.loop, self.size = [name], loop, size

    def close(self) -> None:
        self.capture.release()

    def grab(self, time: float) -> dict[str, np.ndarray]:
        ok, image = self.capture.read()
        if not ok and self.loop and not isinstance(self.location, int):
            import cv2

            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.capture.read()
        if not ok:
            raise EndOfStream(f"end of video {self.location}")
        return {self.names[0]: checked_size(image, self.size, str(self.location))}


class DicomCineSource(_SingleCamera):
    """A DICOM multi-frame file (fluoroscopy cine loop), frames in order."""

    def __init__(self, file: str, name: str, loop: bool):
        import pydicom

        try:
            dataset = pydicom.dcmread(file)
            frames = dataset.pixel_array
        except Exception as error:  # pydicom raises many types for damaged files
            raise FileNotFoundError(f"cannot read DICOM cine {file}: {error}") from error
        self.frames = frames if frames.ndim == 3 else frames[None]
        self.names = [name]
        self.cursor = _Cursor(len(self.frames), loop, f"DICOM cine {file}")

    def grab(self, time: float) -> dict[str, np.ndarray]:
        return {self.names[0]: self.frames[self.cursor.advance()]}


def _matrix(data: dict, key: str, shape: tuple[int, int], path) -> np.ndarray:
    try:
        return np.asarray(data[key]["data"], float).reshape(shape)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {key}.data must hold {shape[0] * shape[1]} numbers ({error})") from error


def load_camera_info(url: str) -> CameraCalibration:
    """A camera_calibration_parsers YAML (the format cameracalibrator writes) from a path or file:// URL."""
    path = Path(urlparse(url).path) if url.startswith("file://") else Path(url).expanduser()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read camera_info_url {url}: {error}") from error
    for key in ("image_width", "image_height", "camera_matrix", "distortion_coefficients", "projection_matrix"):
        if key not in data:
            raise ConfigError(f"{path}: camera calibration has no '{key}'")
    distortion = np.asarray(data["distortion_coefficients"].get("data", []), float)
    rectification = _matrix(data, "rectification_matrix", (3, 3), path) if "rectification_matrix" in data \
        else np.eye(3)
    return CameraCalibration(width=int(data["image_width"]), height=int(data["image_height"]),
                             intrinsics=_matrix(data, "camera_matrix", (3, 3), path), distortion=distortion,
                             projection=_matrix(data, "projection_matrix", (3, 4), path),
                             rectification=rectification,
                             distortion_model=str(data.get("distortion_model", "plumb_bob")))


def _calibrated(source: _SingleCamera, settings: FrameSettings) -> _SingleCamera:
    if settings.camera_info_url:
        source.camera_calibration = load_camera_info(settings.camera_info_url)
    return source


def open_video(settings: FrameSettings) -> VideoSource:
    """Factory entry for "device" and "video" (guidewire.contracts.open_frames)."""
    return _calibrated(VideoSource(settings.location, settings.camera_name, settings.loop), settings)


def open_folder(settings: FrameSettings) -> FolderSource:
    """Factory entry for "folder"."""
    return _calibrated(FolderSource(settings.location, settings.camera_name, settings.loop), settings)


def open_dicom(settings: FrameSettings) -> DicomCineSource:
    """Factory entry for "dicom"."""
    return _calibrated(DicomCineSource(settings.location, settings.camera_name, settings.loop), settings)
