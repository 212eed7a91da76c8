"""Magnetometer-array driver node: one MagnetometerArray per sample (+ optional MagneticField
per sensor), calibrated per sensor, with a service that records the background field, and
field arrows for RViz."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Point, Vector3
from rclpy.node import Node
from sensor_msgs.msg import MagneticField
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from guidewire.calibration import ArrayCalibration
from guidewire.magnetometer import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE, SimulatedArray
from guidewire.pacing import SamplePacer
from guidewire_perception.msg import MagnetometerArray
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, twin_from_parameter, declare, publisher_qos, run

BACKENDS = ("sim", "i2c", "serial")
STATUS_COLOURS = {STATUS_OK: (0.1, 0.8, 0.2), STATUS_SATURATED: (1.0, 0.5, 0.0), STATUS_STALE: (0.6, 0.6, 0.6)}


class MagnetometerDriver(Node):
    def __init__(self):
        super().__init__("magnetometer_driver")
        self.backend_name = declare(self, "backend", "sim", "Data source: sim (simulated bench), i2c or serial")
        self.rate = declare(self, "rate_hz", 100.0, "Sampling and publishing rate, Hz (AK09940A: 10-400)")
        self.frame_id = declare(self, "frame_id", "mag_array", "Frame of positions and fields (array centre)")
        self.per_sensor = declare(self, "publish_per_sensor", False,
                                  "Also publish sensor_msgs/MagneticField on mag_array/sensor_NN per sensor")
        bench_config = declare(self, "bench_config", "", "Bench YAML for the sim backend; '' = embedded defaults")
        qos = publisher_qos(self, default_depth=2000)
        self.backend = self._open_backend(bench_config)
        count = self.backend.rows * self.backend.cols
        calibration_file = declare(self, "calibration_file", "",
                                   "Per-sensor calibration YAML (hard/soft iron, axes); '' = identity")
        self.background_file = declare(self, "background_file", "",
                                       "YAML the recorded background is saved to and loaded from; '' = memory only")
        self.subtract_background = declare(self, "subtract_background", False,
                                           "Subtract the recorded background field (no wire present)")
        self.background_samples = declare(self, "background_samples", 50, "Samples averaged per background")
        self.marker_scale = declare(self, "marker_scale", 200.0, "Field arrow length per tesla, m/T (RViz)")
        marker_rate = declare(self, "marker_rate_hz", 10.0, "Field-arrow MarkerArray rate, Hz; 0 = off")
        self.calibration = ArrayCalibration.load(calibration_file, count) if calibration_file else \
            ArrayCalibration.identity(count)
        if self.background_file and Path(self.background_file).is_file():
            self.calibration.background = ArrayCalibration.load(self.background_file, count).background
        self.background_sum = self.background_valid = None
        self.background_count = 0
        self.background_lock = threading.Lock()  # the service and the sampling thread share the background
        self.create_service(Trigger, "~/record_background", self._record_background)
        self.publisher = self.create_publisher(MagnetometerArray, "mag_array/frame", qos)
        self.marker_publisher = self.create_publisher(MarkerArray, "mag_array/field_markers", qos)
        self.last_message = None
        if marker_rate > 0:
            self.create_timer(1.0 / marker_rate, self._publish_markers)
        self.sensor_publishers = [self.create_publisher(MagneticField, f"mag_array/sensor_{i:02d}", qos)
                                  for i in range(count)] if self.per_sensor else []
        self.positions = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in self.backend.positions]
        noise_variance = self.backend.noise_rms ** 2
        self.covariance = np.tile(np.diag([noise_variance] * 3).ravel(), count).tolist()
        self.diagnostics = Diagnostics(self, f"magnetometer_array/{self.backend_name}")
        self.sequence = 0
        self.published_since_report = 0
        self.errors = 0
        self.last_error = ""
        self.status_counts = np.zeros(4, int)
        # Sampling runs on the pacer's own threads, not on an executor timer (see guidewire.pacing).
        read_ahead = getattr(self.backend, "read_ahead", None)
        self.pacer = SamplePacer(self.rate, self._publish_reading, self._read_failed,
                                 read=None if read_ahead else self.backend.read, read_ahead=read_ahead)
        self.pacer.start()
        self.report_timer = self.create_timer(1.0, self._report)
        self.last_report = time.monotonic()
        self.get_logger().info(f"{self.backend_name} backend, {count} sensors at {self.rate:g} Hz")

    def _open_backend(self, bench_config: str):
        rows = declare(self, "rows", 4, "Hardware array rows (sim: from the bench)")
        cols = declare(self, "cols", 4, "Hardware array columns (sim: from the bench)")
        pitch = declare(self, "pitch", 0.025, "Hardware sensor pitch, m (sim: from the bench)")
        i2c_bus = declare(self, "i2c_bus", 1, "i2c backend: /dev/i2c-N bus number")
        multiplexer = declare(self, "multiplexer_address", 0x70, "i2c backend: TCA9548A address")
        port = declare(self, "serial_port", "/dev/ttyACM0", "serial backend: port of the array's microcontroller")
        baudrate = declare(self, "baudrate", 2_000_000, "serial backend: baud rate")
        if self.backend_name == "sim":
            return SimulatedArray(twin_from_parameter(bench_config))
        if self.backend_name == "i2c":
            from guidewire.ak09940a import I2CArray

            return I2CArray.open(i2c_bus, rows=rows, cols=cols, pitch=pitch, rate_hz=self.rate,
                                 multiplexer_address=multiplexer)
        if self.backend_name == "serial":
            from guidewire.serial_array import SerialArray

            return SerialArray(port, rows=rows, cols=cols, pitch=pitch, baudrate=baudrate,
                               timeout=2.0 / self.rate)
        raise ValueError(f"unknown backend '{self.backend_name}' (choose from {', '.join(BACKENDS)})")

    def _record_background(self, _request, response):
        """Start averaging the next samples; the result is logged and reported in diagnostics."""
        count = len(self.positions)
        with self.background_lock:
            self.background_sum, self.background_valid, self.background_count = np.zeros((count, 3)), np.zeros(count), 0
        response.success = True
        response.message = f"recording the background over the next {self.background_samples} samples"
        self.get_logger().info(response.message)
        return response

    def _accumulate_background(self, field: np.ndarray) -> None:
        valid = np.isfinite(field).all(axis=1)  # a missing or invalid sensor sample is left out of its average
        self.background_sum[valid] += field[valid]
        self.background_valid += valid
        self.background_count += 1
        if self.background_count < self.background_samples:
            return
        never = self.background_valid == 0
        self.calibration.background = self.background_sum / np.maximum(self.background_valid, 1)[:, None]
        self.background_sum = None
        if never.any():
            self.get_logger().warning(f"no valid background samples from sensors {np.flatnonzero(never).tolist()}: "
                                      "their background is left at zero")
        if self.background_file:
            self.calibration.save_background(self.background_file)
        self.get_logger().info(f"background recorded from {self.background_count} samples"
                               + (f", saved to {self.background_file}" if self.background_file else ""))

    def _publish_markers(self) -> None:
        message = self.last_message
        if message is None:
            return
        markers = MarkerArray()
        for index, (position, field) in enumerate(zip(message.sensor_positions, message.magnetic_field)):
            marker = Marker(header=message.header, ns="magnetic_field", id=index, type=Marker.ARROW)
            vector = np.array([field.x, field.y, field.z])
            if not np.isfinite(vector).all():
                marker.action = Marker.DELETE
                markers.markers.append(marker)
                continue
            tip = np.array([position.x, position.y, position.z]) + self.marker_scale * vector
            marker.points = [position, Point(x=float(tip[0]), y=float(tip[1]), z=float(tip[2]))]
            marker.scale.x, marker.scale.y, marker.scale.z = 0.002, 0.004, 0.004  # shaft, head diameter/length
            red, green, blue = STATUS_COLOURS.get(message.status[index], (1.0, 0.0, 0.0))
            marker.color.r, marker.color.g, marker.color.b, marker.color.a = red, green, blue, 1.0
            markers.markers.append(marker)
        self.marker_publisher.publish(markers)

    def _read_failed(self, error: Exception) -> None:
        self.errors += 1
        self.last_error = str(error)
        self.get_logger().error(f"array sample failed: {error}", throttle_duration_sec=1.0)

    def _publish_reading(self, stamp_ns: int, reading) -> None:
        message = MagnetometerArray()
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        message.header.frame_id = self.frame_id
        message.sequence = self.sequence
        message.rows, message.cols = self.backend.rows, self.backend.cols
        message.sensor_positions = self.positions
        raw_calibrated = self.calibration.apply(reading.field, subtract_background=False)
        with self.background_lock:
            if self.background_sum is not None:
                self._accumulate_background(raw_calibrated)
        field = raw_calibrated - self.calibration.background \
            if self.subtract_background and self.calibration.background is not None else raw_calibrated
        message.magnetic_field = [Vector3(x=float(x), y=float(y), z=float(z)) for x, y, z in field]
        message.magnetic_field_covariance = self.covariance
        message.status = reading.status.astype(np.uint8).tobytes()
        message.temperature = reading.temperature.astype(np.float32).tolist()
        self.publisher.publish(message)
        self.last_message = message
        for index, publisher in enumerate(self.sensor_publishers):
            single = MagneticField(header=message.header, magnetic_field=message.magnetic_field[index])
            single.magnetic_field_covariance = self.covariance[9 * index:9 * index + 9]
            publisher.publish(single)
        self.sequence = (self.sequence + 1) % 2 ** 32
        self.published_since_report += 1
        self.status_counts += np.bincount(reading.status, minlength=4)[:4]

    def _report(self) -> None:
        elapsed = time.monotonic() - self.last_report
        self.last_report = time.monotonic()
        rate = self.published_since_report / max(elapsed, 1e-9)
        missing, saturated, stale = (int(self.status_counts[i]) for i in (STATUS_MISSING, STATUS_SATURATED,
                                                                          STATUS_STALE))
        level, message = OK, "ok"
        if missing or saturated or stale:
            level, message = WARN, f"{missing} missing, {saturated} saturated, {stale} stale sensor samples"
        if self.errors:
            level, message = ERROR, f"{self.errors} read errors: {self.last_error}"
        self.diagnostics.publish(level, message, {
            "rate_hz": f"{rate:.1f}", "target_rate_hz": self.rate, "published": self.sequence,
            "dropped_frames": self.pacer.dropped + getattr(self.backend, "dropped", 0), "read_errors": self.errors,
            "bus_errors_total": getattr(self.backend, "bus_errors", 0), "missing_sensor_samples": missing,
            "background": "subtracted" if self.subtract_background and self.calibration.background is not None
            else "recorded" if self.calibration.background is not None else "none",
            "saturated_sensor_samples": saturated, "stale_sensor_samples": stale})
        self.published_since_report = 0
        self.errors = 0
        self.status_counts[:] = 0

    def close(self) -> None:
        self.pacer.stop()
        self.backend.close()


def main() -> None:
    run(MagnetometerDriver)


if __name__ == "__main__":
    main()
