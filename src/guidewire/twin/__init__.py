"""The simulated bench (digital twin): one source of ground truth for every node.

Every quantity is a pure function of the configuration, the seed and the
time, so separate processes (the magnetometer driver, the camera capture,
the evaluators) agree on the wire without talking to each other. With a
robot on the bench (`follow_robot`), the wire's insertion and roll come from
the robot's published joints instead of the programmed profile.
"""
from __future__ import annotations

from guidewire.twin.cameras import CameraRenderer
from guidewire.twin.magnetics import MagnetometerArrayModel
from guidewire.twin.wire import GuidewireModel, WireState
from guidewire.twin.config import BenchConfig, load_bench_config

__all__ = ["DigitalTwin", "WireState", "load_bench_config"]


class DigitalTwin:
    """Lazily builds each part of the twin; a node pays only for what it uses."""

    def __init__(self, config: BenchConfig | None = None):
        self.config = config or load_bench_config()
        self.wire = GuidewireModel(self.config.guidewire, self.config.seed)
        self._magnetometer = None
        self._cameras = None
        self._fluoroscopy = None
        self.robot = None  # a guidewire.robot.JointHistory: the wire follows the robot's joints

    def follow_robot(self, history) -> None:
        """Move the wire by the robot's published joints from now on (the profile where none are recent)."""
        self.robot = history

    def state(self, time: float) -> WireState:
        joints = self.robot.at(time) if self.robot is not None else None
        if joints is None:
            return self.wire.state(time)
        # The simulated robot's travel is the wire's insertion range (guidewire.robot.JointLimits): a state
        # beyond it (another publisher's, a corrupted one) moves the wire only as far as the robot could.
        g = self.config.guidewire
        insertion, roll = joints
        return self.wire.shape(min(max(insertion, g.min_inserted_length), g.max_inserted_length), roll, time)

    @property
    def magnetometer(self) -> MagnetometerArrayModel:
        if self._magnetometer is None:
            c = self.config
            self._magnetometer = MagnetometerArrayModel(c.magnetometer_array, c.guidewire, c.static_source,
                                                        c.earth_field, c.seed)
        return self._magnetometer

    @property
    def cameras(self) -> dict[str, CameraRenderer]:
        if self._cameras is None:
            self._cameras = {camera.name: CameraRenderer(camera, self.config.seed) for camera in self.config.stereo}
        return self._cameras

    @property
    def fluoroscopy(self):
        if self._fluoroscopy is None:
            from guidewire.twin.fluoroscopy import FluoroscopyRenderer

            self._fluoroscopy = FluoroscopyRenderer(self.config.fluoroscopy, self.config.seed)
        return self._fluoroscopy
