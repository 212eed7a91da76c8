"""Magnetometer-array driver node: one MagnetometerArray per sample (+ optional MagneticField
per sensor), calibrated per sensor, with a service that records the background field, and
field arrows for RViz."""
from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import MagneticField
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from guidewire.calibration import CalibratedField
from guidewire.contracts import ARRAY_BACKENDS, STATUS_MISSING, STATUS_SATURATED, STATUS_STALE, ArraySettings, \
    open_array
from guidewire.pacing import SamplePacer, pacing_status
from guidewire_perception.msg import MagnetometerArray
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, publisher_qos, run, runtime_parameters
from guidewire_ros.robot_link import follow_robot

# Above this the simulated bench cannot compute its samples in time on a desktop CPU (and the
# AK09940A's fastest continuous mode is 400 Hz): a higher setting would only drop frames.
MAX_RATE_HZ = 1000.0


class MagnetometerDriver(Node):
    def __init__(self):
        super().__init__("magnetometer_driver")
        self.backend_name = declare(self, "backend", "sim",
                                    f"Data source: {', '.join(ARRAY_BACKENDS)} (sim: the digital twin)")
        self.rate = declare(self, "rate_hz", 100.0, "Sampling and publishing rate, Hz (AK09940A: 10-400); the sim "
                            "backend takes changes at run time", 0.1, MAX_RATE_HZ)
        self.frame_id = declare(self, "frame_id", "mag_array", "Frame of positions and fields (array centre)")
        self.per_sensor = declare(self, "publish_per_sensor", False,
                                  "Also publish sensor_msgs/MagneticField on mag_array/sensor_NN per sensor")
        settings = ArraySettings(
            rate_hz=self.rate,
            bench_config=declare(self, "bench_config", "", "Bench YAML for the sim backend; '' = embedded defaults"),
            rows=declare(self, "rows", 4, "Hardware array rows (sim: from the bench)", 1, 64),
            cols=declare(self, "cols", 4, "Hardware array columns (sim: from the bench)", 1, 64),
            pitch=declare(self, "pitch", 0.025, "Hardware sensor pitch, m (sim: from the bench)", 1e-4, 1.0),
            i2c_bus=declare(self, "i2c_bus", 1, "i2c backend: /dev/i2c-N bus number", 0, 255),
            multiplexer_address=declare(self, "multiplexer_address", 0x70, "i2c backend: TCA9548A address",
                                        0x70, 0x77),
            serial_port=declare(self, "serial_port", "/dev/ttyACM0",
                                "serial backend: port of the array's microcontroller"),
            baudrate=declare(self, "baudrate", 2_000_000, "serial backend: baud rate", 9600, 100_000_000))
        qos = publisher_qos(self, default_depth=2000)
        self.backend = open_array(self.backend_name, settings)
        follow_robot(self, self.backend)  # the simulated array sees the robot's wire
        count = self.backend.rows * self.backend.cols
        self.field = CalibratedField.open(
            declare(self, "calibration_file", "", "Per-sensor calibration YAML (hard/soft iron, axes); '' = identity"),
            count,
            declare(self, "subtract_background", False, "Subtract the recorded background field (no wire present)"),
            declare(self, "background_file", "",
                    "YAML the recorded background is saved to and loaded from; '' = memory only"))
        self.background_samples = declare(self, "background_samples", 50, "Samples averaged per background",
                                          1, 100_000)
        self.marker_scale = declare(self, "marker_scale", 200.0, "Field arrow length per tesla, m/T (RViz)",
                                    0.0, 1e6)
        marker_rate = declare(self, "marker_rate_hz", 10.0, "Field-arrow MarkerArray rate, Hz; 0 = off", 0.0, 60.0)
        self.create_service(Trigger, "~/record_background", self._record_background)
        self.publisher = self.create_publisher(MagnetometerArray, "mag_array/frame", qos)
        self.marker_publisher = self.create_publisher(MarkerArray, "mag_array/field_markers", qos)
        self.last_message = None
        self.marker_timer = None
        self._set_marker_rate(marker_rate)
        self.sensor_publishers = [self.create_publisher(MagneticField, f"mag_array/sensor_{i:02d}", qos)
                                  for i in range(count)] if self.per_sensor else []
        self.positions = convert.points(self.backend.positions)
        self.covariance = convert.covariance(self.backend.noise_rms, count)
        self.diagnostics = Diagnostics(self, f"magnetometer_array/{self.backend_name}")
        self.sequence = self.published_since_report = self.errors = 0
        self.last_error = ""
        self.status_counts = np.zeros(4, int)
        self.pacer = None
        self._start_pacer(self.rate)
        self.diagnostics.start(self._report)
        runtime_parameters(self, {"rate_hz": self._set_rate, "marker_rate_hz": self._set_marker_rate,
                                  "marker_scale": lambda v: setattr(self, "marker_scale", v),
                                  "background_samples": lambda v: setattr(self, "background_samples", v)})
        self.get_logger().info(f"{self.backend_name} backend, {count} sensors at {self.rate:g} Hz")

    def _start_pacer(self, rate: float) -> None:
        """Sampling runs on the pacer's own threads, not on an executor timer (see guidewire.pacing)."""
        read_ahead = self.backend.read_ahead
        self.pacer = SamplePacer(rate, self._publish_reading, self._read_failed,
                                 read=None if read_ahead else self.backend.read, read_ahead=read_ahead)
        self.dropped_at_report = self.backend.dropped
        self.published_since_report, self.last_report = 0, time.monotonic()
        self.pacer.start()

    def _set_rate(self, rate: float) -> None:
        if self.backend_name != "sim":
            raise ValueError(f"the {self.backend_name} array's sensors are set to their rate when the node "
                             "starts: restart the node to change it")
        self.pacer.stop()
        self.rate = rate
        self._start_pacer(rate)

    def _set_marker_rate(self, rate: float) -> None:
        if self.marker_timer is not None:
            self.destroy_timer(self.marker_timer)
        self.marker_timer = self.create_timer(1.0 / rate, self._publish_markers) if rate > 0 else None

    def _record_background(self, _request, response):
        """Start averaging the next samples; the result is logged and reported in diagnostics."""
        self.field.record_background(self.background_samples)
        response.success = True
        response.message = f"recording the background over the next {self.background_samples} samples"
        self.get_logger().info(response.message)
        return response

    def _background_recorded(self, recording) -> None:
        if recording.never_valid:
            self.get_logger().warning(f"no valid background samples from sensors {recording.never_valid}: "
                                      "their background is left at zero")
        saved = self.field.background_file
        self.get_logger().info(f"background recorded from {recording.count} samples"
                               + (f", saved to {saved}" if saved else ""))

    def _publish_markers(self) -> None:
        if self.last_message is not None:
            self.marker_publisher.publish(convert.field_markers(self.last_message, self.marker_scale))

    def _read_failed(self, error: Exception) -> None:
        self.errors += 1
        self.last_error = str(error)
        self.get_logger().error(f"array sample failed: {error}", throttle_duration_sec=1.0)

    def _publish_reading(self, stamp_ns: int, reading) -> None:
        field, recorded = self.field.apply(reading.field)
        if recorded is not None:
            self._background_recorded(recorded)
        message = convert.magnetometer_array(convert.header(stamp_ns, self.frame_id), self.sequence,
                                             self.backend.rows, self.backend.cols, self.positions, field,
                                             self.covariance, reading.status, reading.temperature)
        self.publisher.publish(message)
        self.last_message = message
        for index, publisher in enumerate(self.sensor_publishers):
            publisher.publish(convert.magnetic_field(message, index))
        self.sequence = (self.sequence + 1) % 2 ** 32
        self.published_since_report += 1
        self.status_counts += np.bincount(reading.status, minlength=4)[:4]

    def _report(self) -> None:
        elapsed = time.monotonic() - self.last_report
        self.last_report = time.monotonic()
        rate = self.published_since_report / max(elapsed, 1e-9)
        dropped_total = self.pacer.dropped + self.backend.dropped
        dropped, self.dropped_at_report = dropped_total - self.dropped_at_report, dropped_total
        missing, saturated, stale = (int(self.status_counts[i]) for i in (STATUS_MISSING, STATUS_SATURATED,
                                                                          STATUS_STALE))
        level, message = OK, "ok"
        if missing or saturated or stale:
            level, message = WARN, f"{missing} missing, {saturated} saturated, {stale} stale sensor samples"
        pacing_level, pacing = pacing_status(self.rate, rate, dropped)
        if pacing_level:
            level, message = (WARN, ERROR)[pacing_level - 1], pacing
        if self.errors:
            level, message = ERROR, f"{self.errors} read errors: {self.last_error}"
        self.diagnostics.publish(level, message, {
            "rate_hz": f"{rate:.1f}", "target_rate_hz": self.rate, "published": self.sequence,
            "dropped_frames": dropped, "dropped_frames_total": dropped_total, "read_errors": self.errors,
            "bus_errors_total": self.backend.bus_errors, "missing_sensor_samples": missing,
            "background": self.field.background_state,
            "saturated_sensor_samples": saturated, "stale_sensor_samples": stale})
        self.published_since_report = 0
        self.errors = 0
        self.status_counts[:] = 0

    def close(self) -> None:
        self.diagnostics.close()
        self.pacer.stop()
        self.backend.close()


def main() -> None:
    run(MagnetometerDriver)


if __name__ == "__main__":
    main()
