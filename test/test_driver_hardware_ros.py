"""The driver node with its serial backend on a pseudo-terminal: calibration, background service, markers."""
import os
import threading
import time

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from ros_support import START_S, node_args, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)
from guidewire.hardware.serial_array import FLAG_NO_ANSWER, FLAG_READY, SerialFrame, encode_frame  # noqa: E402


class Firmware(threading.Thread):
    """Streams constant frames at 50 Hz into the controller side of a pty."""

    def __init__(self, controller: int, counts: np.ndarray, flags: np.ndarray):
        super().__init__(daemon=True)
        self.controller, self.counts, self.flags = controller, counts, flags
        self.running = True

    def run(self):
        sequence = 0
        while self.running:
            frame = SerialFrame(sequence, sequence * 20000, self.counts, np.full(16, 0x2B, np.uint8), self.flags)
            try:
                os.write(self.controller, encode_frame(frame))
            except OSError:
                return
            sequence += 1
            time.sleep(0.02)


def test_serial_driver_calibrates_records_background_and_draws_arrows(ros, tmp_path):
    domain, node, executor, _ = ros
    from guidewire_perception.msg import MagnetometerArray
    from std_srvs.srv import Trigger
    from visualization_msgs.msg import Marker, MarkerArray

    controller, device = os.openpty()
    counts = np.tile([1000, 2000, -3000], (16, 1))
    flags = np.full(16, FLAG_READY, np.uint8)
    flags[5] = FLAG_NO_ANSWER
    firmware = Firmware(controller, counts, flags)
    firmware.start()
    calibration = tmp_path / "calibration.yaml"
    calibration.write_text(yaml.safe_dump({"calibration": {"sensors": [
        {"hard_iron": [0.0, 0.0, 10e-6], "axes": ["+y", "-x", "+z"]}]}}))
    frames, markers = [], []
    node.create_subscription(MagnetometerArray, "mag_array/frame", frames.append, 50)
    node.create_subscription(MarkerArray, "mag_array/field_markers", markers.append, 10)
    client = node.create_client(Trigger, "/magnetometer_driver/record_background")
    parameters = {"backend": "serial", "serial_port": os.ttyname(device), "rate_hz": 50.0,
                  "calibration_file": str(calibration), "subtract_background": True, "background_samples": 10,
                  "background_file": str(tmp_path / "background.yaml")}
    try:
        with running(node_args("magnetometer_driver", "magnetometer_driver", parameters, tmp_path), domain,
                     tmp_path / "driver.log") as process:
            assert spin_until(executor, lambda: len(frames) >= 5 and markers, START_S), \
                (tmp_path / "driver.log").read_text()
            field = np.array([[v.x, v.y, v.z] for v in frames[-1].magnetic_field])
            # raw (10, 20, -30) uT; minus hard iron (0, 0, 10); array x = +y, y = -x.
            np.testing.assert_allclose(field[0], [20e-6, -10e-6, -40e-6], atol=1e-12)
            assert frames[-1].status[5] == 3 and np.isnan(field[5]).all()
            arrows = markers[-1].markers
            assert len(arrows) == 16 and arrows[0].type == Marker.ARROW and arrows[5].action == Marker.DELETE
            tip = np.array([arrows[0].points[1].x, arrows[0].points[1].y, arrows[0].points[1].z])
            base = np.array([arrows[0].points[0].x, arrows[0].points[0].y, arrows[0].points[0].z])
            np.testing.assert_allclose((tip - base) / 200.0, field[0], atol=1e-9)

            assert client.wait_for_service(timeout_sec=10)
            future = client.call_async(Trigger.Request())
            assert spin_until(executor, future.done, 10) and future.result().success
            # Sensor 5 never answers, so its NaN must not block the background: it is recorded without it.
            assert spin_until(executor, lambda: (tmp_path / "background.yaml").is_file(), 10)
            count = len(frames)
            assert spin_until(executor, lambda: len(frames) >= count + 3, 10)
            assert process.poll() is None
    finally:
        firmware.running = False
        firmware.join(timeout=2)
        os.close(controller)
        os.close(device)
    after = np.array([[v.x, v.y, v.z] for v in frames[-1].magnetic_field])
    np.testing.assert_allclose(np.delete(after, 5, axis=0), 0.0, atol=1e-12)
