"""The pipeline's Fast DDS profile (config/fastdds_large_data.xml) does not cut its nodes off
from processes started without it, such as an RViz from another shell: 3 MB images flow both ways."""
import signal
import struct

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from guidewire.bag import read_bag  # noqa: E402
from guidewire_ros.pipeline_config import FASTDDS_PROFILE_VARIABLE  # noqa: E402
from ros_support import START_S, node_args, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)

WIDTH, HEIGHT = 2048, 1536


def test_this_process_runs_with_the_profile(ros):
    import os

    assert os.environ[FASTDDS_PROFILE_VARIABLE].endswith("config/fastdds_large_data.xml")


def test_a_camera_without_the_profile_reaches_a_listener_with_it(ros, tmp_path):
    domain, node, executor, _ = ros
    from sensor_msgs.msg import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(2):
        cv2.imwrite(str(frames / f"{index}.png"), np.full((HEIGHT, WIDTH), 40 + index, np.uint8))
    received = []
    subscription = node.create_subscription(Image, "/interop/image_raw", received.append,
                                            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    camera = node_args("camera_capture", "interop_camera", {"source": "folder", "location": str(frames),
                                                            "loop": True, "rate_hz": 5.0,
                                                            "camera_name": "interop"}, tmp_path)
    with running(camera, domain, tmp_path / "camera.log", unset=(FASTDDS_PROFILE_VARIABLE,)):
        assert spin_until(executor, lambda: len(received) >= 3, START_S), (tmp_path / "camera.log").read_text()
    node.destroy_subscription(subscription)
    assert all((m.width, m.height, len(m.data)) == (WIDTH, HEIGHT, WIDTH * HEIGHT) for m in received)


def test_a_recorder_without_the_profile_gets_every_image_from_a_publisher_with_it(ros, tmp_path):
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    publisher = node.create_publisher(Image, "/interop/published", QoSProfile(
        depth=20, reliability=ReliabilityPolicy.RELIABLE))
    recorded_counts = []
    subscription = node.create_subscription(DiagnosticArray, "/diagnostics", lambda array: recorded_counts.extend(
        int(value.value) for status in array.status if status.hardware_id == "recorder/bag"
        for value in status.values if value.key == "messages /interop/published"), 10)
    bag = tmp_path / "bag"
    recorder = node_args("recorder", "recorder", {"topics": ["/interop/published"], "output": str(bag)}, tmp_path)
    sent = []
    with running(recorder, domain, tmp_path / "recorder.log", unset=(FASTDDS_PROFILE_VARIABLE,)) as recording:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, START_S)
        for index in range(8):
            image = Image(width=WIDTH, height=HEIGHT, encoding="mono8", step=WIDTH,
                          data=bytes([index]) * (WIDTH * HEIGHT))
            image.header.stamp.sec = index + 1
            publisher.publish(image)
            sent.append(index + 1)
            spin_until(executor, lambda: False, 0.2)
        # 24 MB over the default transports to a recorder on a loaded machine: stop it once it says it
        # wrote all 8 (its diagnostics), not after a fixed time; after 60 s all the same.
        spin_until(executor, lambda: recorded_counts and recorded_counts[-1] >= len(sent), 60)
        recording.send_signal(signal.SIGINT)
        recording.wait(timeout=15)
    node.destroy_publisher(publisher)
    node.destroy_subscription(subscription)
    recorded = [bytes(data) for _, _, _, data in read_bag(bag)]
    # The header's seconds follow the 4-byte CDR encapsulation header.
    assert [struct.unpack_from("<i", data, 4)[0] for data in recorded] == sent, (tmp_path / "recorder.log").read_text()
    assert all(len(data) > WIDTH * HEIGHT for data in recorded)
