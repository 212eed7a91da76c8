"""Real nodes on a private ROS domain: what arrives on the topics, and what the bag holds."""
import signal
import subprocess
import sys

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402

from ros_support import START_S, node_args, ros, ros_environment, running, spin_until  # noqa: E402,F401 (ros: fixture)


def test_driver_camera_and_recorder(ros):
    domain, node, executor, folder = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from guidewire_perception.msg import MagnetometerArray
    from sensor_msgs.msg import CameraInfo, Image

    from guidewire.bag import read_bag, suite_typestore

    frames, images, infos, diagnostics = [], {}, [], []
    # Reliable with a deep queue: while 9 MB images are deserialised, KEEP_LAST 10 would drop frames.
    reliable_deep = QoSProfile(depth=2000, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(MagnetometerArray, "mag_array/frame", frames.append, reliable_deep)
    for name in ("camera_top", "camera_side"):
        node.create_subscription(Image, f"{name}/image_raw", lambda m, n=name: images.setdefault(n, []).append(m),
                                 reliable_deep)
    node.create_subscription(CameraInfo, "camera_top/camera_info", infos.append, qos_profile_sensor_data)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    bag = folder / "bag"
    with running(node_args("magnetometer_driver", "magnetometer_driver", {"rate_hz": 100.0}, folder), domain,
                 folder / "driver.log"), \
            running(node_args("camera_capture", "stereo_capture", {"source": "sim_stereo", "rate_hz": 4.0}, folder),
                    domain, folder / "camera.log"), \
            running(node_args("recorder", "recorder", {"topics": ["/mag_array/frame"], "output": str(bag)}, folder),
                    domain, folder / "recorder.log") as recorder:
        # The recorder subscribes once discovery shows it the publisher: wait for that first.
        assert spin_until(executor, lambda: any(i.node_name == "recorder" for i in
                                                node.get_subscriptions_info_by_topic("/mag_array/frame")), START_S)
        recording_from = len(frames)

        def stereo_pairs() -> int:
            """Images of both cameras with one stamp: under load a large frame may be lost, so wait for
            pairs, not for a count of one camera's images."""
            top = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in images.get("camera_top", [])}
            return sum((m.header.stamp.sec, m.header.stamp.nanosec) in top for m in images.get("camera_side", []))
        assert spin_until(executor, lambda: len(frames) >= recording_from + 150 and stereo_pairs() >= 2, 60), \
            (folder / "driver.log").read_text() + (folder / "camera.log").read_text()
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=15)
        received_by_recorder_window = [f.sequence for f in frames]

    # Magnetometer frames: 16 sensors, tesla-sized values, consecutive sequence numbers, array frame.
    frame = frames[-1]
    assert frame.header.frame_id == "mag_array" and (frame.rows, frame.cols) == (4, 4)
    field = np.array([[v.x, v.y, v.z] for v in frame.magnetic_field])
    assert field.shape == (16, 3) and 1e-6 < np.abs(field).max() < 1.2e-3
    assert len(frame.magnetic_field_covariance) == 144 and len(frame.temperature) == 16
    sequences = [f.sequence for f in frames]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "a reliable subscriber lost frames"
    positions = np.array([[p.x, p.y, p.z] for p in frame.sensor_positions])
    np.testing.assert_allclose(np.diff(np.unique(positions[:, 0])), 0.025)

    # Stereo pair: same stamps for both cameras, full-resolution mono8, calibrated.
    # (Large frames may still be lost under load on 2 cores: require pairs, and every one
    # either to equal a stamp of the other camera or to lie a whole period from all.)
    top = np.array([m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec for m in images["camera_top"]])
    side = np.array([m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec for m in images["camera_side"]])
    gaps = np.abs(side[:, None] - top[None]).min(1)
    assert (gaps == 0).sum() >= 2
    assert ((gaps == 0) | (gaps > 100_000_000)).all()
    image = images["camera_top"][-1]
    assert (image.width, image.height, image.encoding, image.step) == (2048, 1536, "mono8", 2048)
    assert image.header.frame_id == "camera_top_optical"
    assert infos and infos[-1].k[0] == pytest.approx(2400.0) and infos[-1].width == 2048
    assert any(s.name.startswith("magnetometer_driver") for d in diagnostics for s in d.status)

    # The bag holds the recorded topic in order; every frame the test saw while the
    # recorder ran past its start-up is in it, byte-identical after deserialisation.
    typestore = suite_typestore()
    recorded = [typestore.deserialize_cdr(data, msgtype) for _, msgtype, _, data in read_bag(bag)]
    recorded_sequences = [m.sequence for m in recorded]
    assert len(recorded) > 50
    assert recorded_sequences == sorted(recorded_sequences)
    assert recorded_sequences == list(range(recorded_sequences[0], recorded_sequences[-1] + 1))
    window = {q for q in received_by_recorder_window if recorded_sequences[0] <= q <= recorded_sequences[-1]}
    assert window and window <= set(recorded_sequences)
    # The recorder runs on after the test stops listening: compare the last frame both got.
    last_common = max(window)
    original = next(f for f in frames if f.sequence == last_common)
    last = next(m for m in recorded if m.sequence == last_common)
    np.testing.assert_array_equal([[v.x, v.y, v.z] for v in original.magnetic_field],
                                  [[v.x, v.y, v.z] for v in last.magnetic_field])


def test_bad_backend_is_reported_by_name(ros, tmp_path):
    domain, *_ = ros
    with running(node_args("magnetometer_driver", "magnetometer_driver", {"backend": "spi"}, tmp_path), domain,
                 tmp_path / "driver.log") as process:
        process.wait(timeout=START_S)
    assert "unknown backend 'spi'" in (tmp_path / "driver.log").read_text()


STOPPED_WHILE_STARTING = """
import os, signal, time
import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from guidewire_ros.common import run

class StoppedWhileStarting(Node):
    def __init__(self):
        super().__init__("stopped_while_starting")
        os.kill(os.getpid(), signal.SIGTERM)  # a launch system stopping the node as it starts
        while rclpy.ok():
            time.sleep(0.01)
        self.create_publisher(String, "after_the_stop", 10)

run(StoppedWhileStarting)
"""


def test_a_node_stopped_while_it_starts_exits_cleanly(ros):
    domain, *_ = ros
    finished = subprocess.run([sys.executable, "-c", STOPPED_WHILE_STARTING], env=ros_environment(domain),
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
