"""Fuzz (issue 23): a few hundred random and malformed images to the segmentation node, with a recorder
beside it. The node must stay up and segment a good frame afterwards; the bag must hold every one."""
import signal
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_support import node_args, ros, running, spin_until, tiny_weights  # noqa: E402,F401 (fixtures)
from guidewire.bag import read_bag  # noqa: E402

TOPIC = "/xray/image_raw"
ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1", "32FC1", "rgb8", "bgr8", "64FC1", "", "mono8 ", "nonsense")
DTYPES = {"mono8": np.uint8, "8UC1": np.uint8, "mono16": np.uint16, "16UC1": np.uint16, "32FC1": np.float32}


def hostile_image(rng: np.random.Generator, index: int):
    """One random image message: consistent or not in size, step, encoding and data length; float
    ones with NaN, infinities or values near float32's limit."""
    from sensor_msgs.msg import Image

    encoding = str(rng.choice(ENCODINGS))
    height, width = (int(v) for v in rng.choice([0, 1, 7, 31, 32, 48, 96], 2))
    dtype = DTYPES.get(encoding, np.uint8)
    values = rng.integers(0, 255, (height, width)).astype(dtype)
    if dtype == np.float32:
        values = rng.choice([np.nan, np.inf, -np.inf, 3e38, -3e38, 1.0, 0.0], (height, width)).astype(np.float32)
    data = values.tobytes()
    step = width * np.dtype(dtype).itemsize
    kind = rng.integers(0, 6)
    if kind == 1:
        data = data[: len(data) // 2]  # short data
    elif kind == 2:
        step += int(rng.integers(1, 9))  # wrong step
    elif kind == 3:
        height, width = 100_000, 100_000  # claims far more pixels than it holds
    elif kind == 4:
        data = b""  # empty
    message = Image(height=height, width=width, encoding=encoding, is_bigendian=int(rng.integers(0, 2) * (kind == 5)),
                    step=step, data=data)
    message.header.stamp.sec = 1000 + index
    return message


def test_segmentation_survives_hundreds_of_hostile_images_and_the_recorder_keeps_them_all(ros, tiny_weights, tmp_path):
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from guidewire_perception.msg import GuidewireSegmentation
    from sensor_msgs.msg import Image

    results, recorded_counts = [], []
    subscriptions = [
        node.create_subscription(GuidewireSegmentation, "segmentation/result",
                                 lambda m: results.append(m.header.stamp.sec), 50),
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda array: recorded_counts.extend(
            int(value.value) for status in array.status if status.hardware_id == "recorder/fuzz"
            for value in status.values if value.key == f"messages {TOPIC}"), 10)]
    publisher = node.create_publisher(Image, TOPIC, QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    bag = tmp_path / "fuzz"
    segmentation = node_args("segmentation_node", "segmentation",
                             {"weights": str(tiny_weights), "image_topic": TOPIC, "publish_overlay": False}, tmp_path)
    recorder = node_args("recorder", "recorder", {"topics": [TOPIC], "output": str(bag)}, tmp_path)
    rng = np.random.default_rng(23)
    count = 300
    with running(segmentation, domain, tmp_path / "segmentation.log") as segmenting, \
            running(recorder, domain, tmp_path / "recorder.log") as recording:
        # Both readers matched by this writer, not only known to the graph: a volatile writer sends
        # nothing to a reader it matches after the message.
        assert spin_until(executor, lambda: {i.node_name for i in node.get_subscriptions_info_by_topic(TOPIC)}
                          >= {"segmentation", "recorder"} and publisher.get_subscription_count() >= 2, 90)
        for index in range(count):
            publisher.publish(hostile_image(rng, index))
            spin_until(executor, lambda: False, 0.005)
        good = np.random.default_rng(0).integers(1, 255, (96, 128), dtype=np.uint8)
        message = Image(height=96, width=128, encoding="mono8", step=128, data=good.tobytes())
        message.header.stamp.sec = 5000
        deadline = time.monotonic() + 60
        while 5000 not in results and time.monotonic() < deadline:  # the node may still work off its queue
            publisher.publish(message)
            spin_until(executor, lambda: 5000 in results, 1.0)
        assert 5000 in results, (tmp_path / "segmentation.log").read_text()[-3000:]
        assert segmenting.poll() is None
        # The recorder may still be writing its backlog: stop it once it says it wrote them all (in
        # order from one writer, so its first `count` are the hostile ones), or after 60 s all the same.
        spin_until(executor, lambda: recorded_counts and recorded_counts[-1] >= count, 60)
        recording.send_signal(signal.SIGINT)
        assert recording.wait(timeout=30) == 0
    stamps = [int.from_bytes(bytes(data)[4:8], "little") for _, _, _, data in read_bag(bag)]
    assert sorted(s for s in stamps if s < 5000) == list(range(1000, 1000 + count)), "the recorder lost messages"
    log = (tmp_path / "segmentation.log").read_text()
    assert "Traceback" not in log
    for subscription in subscriptions:
        node.destroy_subscription(subscription)
    node.destroy_publisher(publisher)
