"""The digital twin as data sources: the magnetometer array, the stereo pair and the C-arm,
behind the same contracts as the hardware (guidewire.contracts), so a node does not care
where its data came from."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from guidewire.contracts import ArrayReading, ArraySettings, CameraCalibration, FrameSettings, grid_positions
from guidewire.twin import DigitalTwin
from guidewire.twin.config import load_bench_config


def twin_from_path(path: str) -> DigitalTwin:
    """The digital twin from a bench YAML path, or the embedded defaults for ''."""
    return DigitalTwin(load_bench_config(path or None))


class _TwinSource:
    bench: DigitalTwin

    def follow_robot(self, history) -> None:
        """The wire this source sees follows the robot's joints (a guidewire.robot.JointHistory)."""
        self.bench.follow_robot(history)


class SimulatedArray(_TwinSource):
    """The twin's AK09940A array sampled at a given time."""

    dropped = 0
    bus_errors = 0

    def __init__(self, bench: DigitalTwin):
        self.bench = bench
        config = bench.config.magnetometer_array
        self.rows, self.cols = config.rows, config.cols
        # The array frame sits at the centre of the sensor plane, axes parallel to the bench.
        self.positions = grid_positions(config.rows, config.cols, config.pitch)
        self.noise_rms = config.noise_rms

    def read(self, time: float) -> ArrayReading:
        return self.read_ahead([time])[0]

    def read_ahead(self, times) -> list[ArrayReading]:
        """Readings at several sample times at once. The twin is a pure function of
        time, so the driver can simulate a block of upcoming samples in one vectorised
        call and publish each at its own time (real hardware cannot, and has no such method)."""
        samples = self.bench.magnetometer.samples([self.bench.state(t) for t in times])
        temperature = np.full(len(self.positions), 25.0)
        return [ArrayReading(field=s.field, status=s.status, temperature=temperature) for s in samples]

    def close(self) -> None:
        pass


def pinhole_calibration(camera) -> CameraCalibration:
    """A twin camera's (guidewire.geometry.PinholeCamera) calibration: P = K [I | 0] in its optical frame."""
    return CameraCalibration(width=camera.width, height=camera.height, intrinsics=camera.intrinsics,
                             distortion=camera.distortion,
                             projection=np.hstack([camera.intrinsics, np.zeros((3, 1))]))


class SimulatedStereo(_TwinSource):
    """The twin's orthogonal camera pair, rendered for the same instant. The two
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

    def calibration(self, name: str) -> CameraCalibration:
        return pinhole_calibration(self.bench.cameras[name].camera)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class SimulatedFluoroscopy(_TwinSource):
    """The twin's C-arm (single view)."""

    def __init__(self, bench: DigitalTwin, name: str = "xray"):
        self.bench = bench
        self.names = [name]
        self.renderer = bench.fluoroscopy  # renders the anatomy now (slow once per machine), not at a frame

    def grab(self, time: float) -> dict[str, np.ndarray]:
        return {self.names[0]: self.renderer.render(self.bench.state(time))}

    def calibration(self, name: str) -> CameraCalibration:
        """The C-arm as a pinhole camera: P maps points of the source (focal-spot) frame to detector pixels."""
        geometry = self.renderer.geometry
        projection = geometry.projection_matrix @ self.renderer.carm_pose
        projection /= projection[2, 2]
        return CameraCalibration(width=geometry.width, height=geometry.height, intrinsics=projection[:, :3],
                                 distortion=np.zeros(5), projection=projection)

    def pose(self, name: str) -> np.ndarray:
        """The C-arm source frame in the bench frame (4x4, m): guidewire.twin.fluoroscopy.carm_to_bench."""
        return self.renderer.carm_pose

    def close(self) -> None:
        pass


def open_array(settings: ArraySettings) -> SimulatedArray:
    """Factory entry for "sim" (guidewire.contracts.open_array)."""
    return SimulatedArray(twin_from_path(settings.bench_config))


def open_stereo(settings: FrameSettings) -> SimulatedStereo:
    """Factory entry for "sim_stereo" (guidewire.contracts.open_frames)."""
    return SimulatedStereo(twin_from_path(settings.bench_config))


def fluoroscopy_camera_name(camera_name: str, view: str) -> str:
    """The simulated C-arm's camera (and topic) name: "xray", with a view "xray_<view>", unless
    camera_name is set (anything but camera_capture's default, "camera")."""
    if camera_name != "camera":
        return camera_name
    return f"xray_{view}" if view else "xray"


def open_fluoroscopy(settings: FrameSettings) -> SimulatedFluoroscopy:
    """Factory entry for "sim_xray"; the camera is named by fluoroscopy_camera_name."""
    from guidewire.twin.fluoroscopy import with_view

    name = fluoroscopy_camera_name(settings.camera_name, settings.view)
    config = load_bench_config(settings.bench_config or None)
    config = replace(config, fluoroscopy=with_view(config.fluoroscopy, settings.view, settings.detector_pixels))
    return SimulatedFluoroscopy(DigitalTwin(config), name)
