"""Magnetometer-array driver node: one MagnetometerArray per sample (+ optional MagneticField per sensor)."""
from __future__ import annotations

import time

import numpy as np
from geometry_msgs.msg import Point, Vector3
from rclpy.node import Node
from sensor_msgs.msg import MagneticField

from guidewire.magnetometer import STATUS_MISSING, STATUS_SATURATED, STATUS_STALE, SimulatedArray
from guidewire_perception.msg import MagnetometerArray
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, bench_from_parameter, declare, qos_profile, run


class MagnetometerDriver(Node):
    def __init__(self):
        super().__init__("magnetometer_driver")
        self.backend_name = declare(self, "backend", "sim", "Data source: sim (simulated bench), i2c or serial")
        self.rate = declare(self, "rate_hz", 100.0, "Sampling and publishing rate, Hz (AK09940A: 10-400)")
        self.frame_id = declare(self, "frame_id", "mag_array", "Frame of positions and fields (array centre)")
        self.per_sensor = declare(self, "publish_per_sensor", False,
                                  "Also publish sensor_msgs/MagneticField on mag_array/sensor_NN per sensor")
        bench_config = declare(self, "bench_config", "", "Bench YAML for the sim backend; '' = embedded defaults")
        qos = qos_profile(declare(self, "qos", "reliable", "Publisher QoS: reliable (default) or sensor_data"))
        self.backend = self._open_backend(bench_config)
        self.publisher = self.create_publisher(MagnetometerArray, "mag_array/frame", qos)
        count = self.backend.rows * self.backend.cols
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
        self.period_ns = int(1e9 / self.rate)
        self.next_sample_ns = None
        self.dropped = 0
        self.timer = self.create_timer(1.0 / self.rate, self._sample)
        self.report_timer = self.create_timer(1.0, self._report)
        self.last_report = time.monotonic()
        self.get_logger().info(f"{self.backend_name} backend, {count} sensors at {self.rate:g} Hz")

    def _open_backend(self, bench_config: str):
        if self.backend_name == "sim":
            return SimulatedArray(bench_from_parameter(bench_config))
        raise ValueError(f"unknown backend '{self.backend_name}' (choose from sim, i2c, serial)")

    def _sample(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        # Timer callbacks that come late by whole periods are counted as dropped samples.
        if self.next_sample_ns is not None and now_ns > self.next_sample_ns + self.period_ns:
            self.dropped += (now_ns - self.next_sample_ns) // self.period_ns
        self.next_sample_ns = now_ns + self.period_ns
        try:
            reading = self.backend.read(now_ns * 1e-9)
        except Exception as error:  # a bus fault must not stop the node: report and try the next sample
            self.errors += 1
            self.last_error = str(error)
            self.get_logger().error(f"array read failed: {error}", throttle_duration_sec=1.0)
            return
        message = MagnetometerArray()
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        message.header.frame_id = self.frame_id
        message.sequence = self.sequence
        message.rows, message.cols = self.backend.rows, self.backend.cols
        message.sensor_positions = self.positions
        message.magnetic_field = [Vector3(x=float(x), y=float(y), z=float(z)) for x, y, z in reading.field]
        message.magnetic_field_covariance = self.covariance
        message.status = reading.status.astype(np.uint8).tobytes()
        message.temperature = reading.temperature.astype(np.float32).tolist()
        self.publisher.publish(message)
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
            "dropped_frames": self.dropped, "bus_errors": self.errors, "missing_sensor_samples": missing,
            "saturated_sensor_samples": saturated, "stale_sensor_samples": stale})
        self.published_since_report = 0
        self.errors = 0
        self.status_counts[:] = 0

    def close(self) -> None:
        self.backend.close()


def main() -> None:
    run(MagnetometerDriver)


if __name__ == "__main__":
    main()
