"""Frame sources for the capture node: the simulated bench or recorded/live imagery.

Each source's grab(time) returns {camera_name: image}. A frame that cannot be
read raises FrameError (the node logs it and goes on); the end of a file or
folder raises EndOfStream unless the source loops.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from guidewire.twin import DigitalTwin

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm"}


class FrameError(RuntimeError):
    """One frame could not be read or has the wrong size; later frames may be fine."""


class EndOfStream(RuntimeError):
    """A finite source has no more frames."""


def checked_size(image: np.ndarray | None, expected: tuple[int, int] | None, what: str) -> np.ndarray:
    if image is None:
        raise FrameError(f"{what}: unreadable or corrupt image")
    if expected and image.shape[:2] != expected:
        raise FrameError(f"{what}: size {image.shape[1]}x{image.shape[0]}, expected {expected[1]}x{expected[0]}")
    return image


class SimulatedStereo:
    """The bench's orthogonal camera pair, rendered for the same instant. The two
    renders run on a thread each: OpenCV and numpy release the GIL, so a 2048x1536
    pair takes about half as long on two cores."""

    def __init__(self, bench: DigitalTwin):
        self.bench = bench
        self.names = list(bench.cameras)
        self._pool = ThreadPoolExecutor(max_workers=len(self.names), thread_name_prefix="render")

    def grab(self, time: float) -> dict[str, np.ndarray]:
        state = self.bench.state(time)
        renders = {name: self._pool.submit(renderer.render, state) for name, renderer in self.bench.cameras.items()}
        return {name: render.result() for name, render in renders.items()}


class SimulatedFluoroscopy:
    """The bench's C-arm (single view)."""

    def __init__(self, bench: DigitalTwin, name: str = "xray"):
        self.bench = bench
        self.names = [name]
        self.renderer = bench.fluoroscopy  # renders the anatomy now (slow once per machine), not at a frame

    def grab(self, time: float) -> dict[str, np.ndarray]:
        return {self.names[0]: self.renderer.render(self.bench.state(time))}


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


class FolderSource:
    """Images of a folder in name order (one camera)."""

    def __init__(self, folder: str, name: str, loop: bool, size: tuple[int, int] | None = None):
        self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if Path(folder).is_dir() else []
        if not self.files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {folder}")
        self.names, self.size = [name], size
        self.cursor = _Cursor(len(self.files), loop, f"folder {folder}")

    def grab(self, time: float) -> dict[str, np.ndarray]:
        file = self.files[self.cursor.advance()]
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        return {self.names[0]: checked_size(image, self.size, str(file))}


class VideoSource:
    """A video file or an OpenCV device index (one camera)."""

    def __init__(self, location: str, name: str, loop: bool, size: tuple[int, int] | None = None):
        self.location = int(location) if location.isdigit() else location
        self.capture = cv2.VideoCapture(self.location)
        if not self.capture.isOpened():
            raise FileNotFoundError(f"cannot open video source {location}")
        self.names, self.loop, self.size = [name], loop, size

    def grab(self, time: float) -> dict[str, np.ndarray]:
        ok, image = self.capture.read()
        if not ok and self.loop and not isinstance(self.location, int):
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.capture.read()
        if not ok:
            raise EndOfStream(f"end of video {self.location}")
        return {self.names[0]: checked_size(image, self.size, str(self.location))}


class DicomCineSource:
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
