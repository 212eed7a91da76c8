"""The simulated bench (digital twin): one source of ground truth for every node.

Every quantity is a pure function of the configuration, the seed and the
time, so separate processes (the magnetometer driver, the camera capture,
the evaluators) agree on the wire without talking to each other.
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

    def state(self, time: float) -> WireState:
        return self.wire.state(time)

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
