"""The segmentation node on a private ROS domain: results per frame, bad frames and missing weights reported."""
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from ros_support import START_S, node_args, publish_until, ros, running, spin_until, tiny_weights  # noqa: E402,F401 (fixtures)


def image(encoding: str, array: np.ndarray, stamp_ns: int):
    from sensor_msgs.msg import Image

    from guidewire.imaging import to_image_fields

    fields = to_image_fields(array, encoding)
    message = Image(height=fields.height, width=fields.width, encoding=encoding, is_bigendian=fields.is_bigendian,
                    step=fields.step, data=fields.data)
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10 ** 9)
    message.header.frame_id = "xray_optical"
    return message


def test_segments_frames_and_survives_a_bad_one(ros, tiny_weights, tmp_path):
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from guidewire_perception.msg import GuidewireSegmentation
    from sensor_msgs.msg import Image

    results, masks, overlays, diagnostics = [], [], [], []
    node.create_subscription(GuidewireSegmentation, "segmentation/result", results.append, 10)
    node.create_subscription(Image, "segmentation/mask", masks.append, 10)
    node.create_subscription(Image, "segmentation/overlay", overlays.append, 10)
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: diagnostics.extend(s for s in m.status if "fganet" in s.hardware_id), 10)
    publisher = node.create_publisher(Image, "xray/image_raw", 10)
    frame = np.random.default_rng(0).integers(1, 255, (96, 128), dtype=np.uint8)
    frame[:, :8] = 0  # a collimated border
    # A cut no mean probability reaches: every result is flagged, and the node says the wire is lost.
    parameters = {"weights": str(tiny_weights), "image_topic": "xray/image_raw", "input_qos": "reliable",
                  "confidence_cut": 1.0}
    with running(node_args("segmentation_node", "segmentation", parameters, tmp_path), domain,
                 tmp_path / "segmentation.log") as process:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, START_S)

        def sent_until(message, done):
            return publish_until(executor, publisher, message, done, 30.0)

        assert sent_until(image("mono8", frame, 1_000_000_001), lambda: results and masks and overlays)
        assert sent_until(image("mono8", frame, 1_000_000_001), lambda: any(
            s.level == DiagnosticStatus.WARN and "wire likely lost" in s.message for s in diagnostics))
        assert sent_until(image("bgr8", np.zeros((96, 128, 3), np.uint8), 2_000_000_000), lambda: any(
            s.level == DiagnosticStatus.ERROR and "encoding 'bgr8'" in s.message for s in diagnostics))
        assert sent_until(image("mono16", frame.astype(np.uint16) * 200, 3_000_000_000),
                          lambda: any(r.header.stamp.sec == 3 for r in results))
        assert process.poll() is None
    first = results[0]
    assert (first.header.stamp.sec, first.header.stamp.nanosec) == (1, 1)
    assert first.header.frame_id == "xray_optical" and masks[0].header == first.header
    assert all(r.low_confidence for r in results) and first.confidence < 1.0
    lost = next(s for s in diagnostics if "wire likely lost" in s.message)
    assert int({v.key: v.value for v in lost.values}["frames_low_confidence"]) >= 1
    assert (first.mask.height, first.mask.width, first.mask.encoding) == (96, 128, "mono8")
    mask = np.frombuffer(bytes(first.mask.data), np.uint8).reshape(96, 128)
    assert set(np.unique(mask)) <= {0, 255} and not mask[:, :8].any()
    assert bytes(masks[0].data) == bytes(first.mask.data)
    if first.tip_found:  # the centreline lies on the mask, ending at the tip
        u, v = np.rint(first.centreline_u).astype(int), np.rint(first.centreline_v).astype(int)
        assert mask[v, u].all() and (u[-1], v[-1]) == (round(first.tip_u), round(first.tip_v))
    assert overlays[0].encoding == "rgb8"
    assert next(r for r in results if r.header.stamp.sec == 3).mask.width == 128
    assert not any(r.header.stamp.sec == 2 for r in results)


def test_missing_weights_are_reported_and_the_node_stays_up(ros, tmp_path):
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    diagnostics = []
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: diagnostics.extend(s for s in m.status if "fganet" in s.hardware_id), 10)
    missing = tmp_path / "nowhere.pt"
    with running(node_args("segmentation_node", "segmentation_missing", {"weights": str(missing)}, tmp_path), domain,
                 tmp_path / "missing.log") as process:
        assert spin_until(executor, lambda: any("weights not found" in s.message for s in diagnostics), START_S)
        assert process.poll() is None
    assert diagnostics[-1].level == DiagnosticStatus.ERROR and str(missing) in diagnostics[-1].message


def test_compiled_backend_serves_eager_frames_while_it_builds_then_loads_the_build_at_start(
        ros, tiny_weights, tmp_path):
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from guidewire_perception.msg import GuidewireSegmentation
    from sensor_msgs.msg import Image

    results, backends = [], []
    node.create_subscription(GuidewireSegmentation, "segmentation/result", results.append, 10)

    def on_diagnostics(message) -> None:
        # The backend of the statuses that follow segmented frames: the status thread also reports
        # while the node still loads, before any frame (then the eager model is what it holds).
        for status in message.status:
            values = {v.key: v.value for v in status.values}
            if status.name.startswith("segmentation_compiled") and values.get("frames_segmented", "0") != "0":
                backends.append(values["backend"])

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    publisher = node.create_publisher(Image, "compiled/image_raw", 10)
    frame = np.random.default_rng(1).integers(1, 255, (96, 128), dtype=np.uint8)
    parameters = {"weights": str(tiny_weights), "backend": "compiled", "window": 128, "input_qos": "reliable",
                  "image_topic": "compiled/image_raw"}
    command = node_args("segmentation_node", "segmentation_compiled", parameters, tmp_path)
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # empty: the first node must build the model

    def segmented_by(backend: str, timeout: float):
        """Publish the frame every second until a result arrives while the node reports `backend`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results.clear()
            publisher.publish(image("mono8", frame, 1_000_000_000))
            if spin_until(executor, lambda: results, 1.0) and backends and backends[-1] == backend:
                return results[0]
        return None

    with running(command, domain, tmp_path / "building.log", extra=cache) as process:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, START_S)
        eager = segmented_by("torch", 60)
        assert eager is not None, "no frame segmented before the compiled model was ready"
        # A slow first build on a slow machine: the tiny network compiles in about 2 min here.
        compiled = segmented_by("compiled", 900)
        assert compiled is not None, f"never switched to the compiled model; see {tmp_path / 'building.log'}"
        assert process.poll() is None
    eager_mask, compiled_mask = (np.frombuffer(bytes(r.mask.data), np.uint8) for r in (eager, compiled))
    assert np.mean(eager_mask == compiled_mask) > 0.999

    backends.clear()
    with running(command, domain, tmp_path / "loading.log", extra=cache):
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, START_S)
        assert segmented_by("compiled", 60) is not None
    assert set(backends) == {"compiled"}, "the built model was not used from the first frame"


def builds_of(weights) -> list[int]:
    """Process ids of compiled-model builds of these weights (the node's child processes)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        if b"guidewire.segmentation.export" in arguments and str(weights).encode() in arguments:
            found.append(int(cmdline.parent.name))
    return found


def test_stopping_the_node_stops_its_compiled_model_build(ros, tiny_weights, tmp_path):
    domain, _, executor, _ = ros
    parameters = {"weights": str(tiny_weights), "backend": "compiled", "window": 96}
    command = node_args("segmentation_node", "segmentation_stopped", parameters, tmp_path)
    with running(command, domain, tmp_path / "stopped.log", extra={"XDG_CACHE_HOME": str(tmp_path / "cache")}):
        assert spin_until(executor, lambda: builds_of(tiny_weights), START_S), \
            f"the node started no build; see {tmp_path / 'stopped.log'}"
    assert spin_until(executor, lambda: not builds_of(tiny_weights), 15), "a compiled-model build outlived its node"


def test_test_time_mirrors_reach_the_served_model(ros, tiny_weights, tmp_path):
    """test_time_mirrors: the node's confidence is the library's over the frame's four mirror images."""
    domain, node, executor, _ = ros
    from guidewire_perception.msg import GuidewireSegmentation
    from sensor_msgs.msg import Image

    from guidewire.segmentation.checkpoint import load_checkpoint, save_checkpoint
    from guidewire.segmentation.frame import segment_frame
    from guidewire.segmentation.inference import Segmenter

    frame = np.random.default_rng(3).integers(1, 255, (96, 128), dtype=np.uint8)
    # A threshold that half the frame's pixels pass, so that the confidence (mean probability on the mask) is not 0.
    weights = tmp_path / "halfway.pt"
    save_checkpoint(weights, load_checkpoint(tiny_weights)[0],
                    threshold=float(np.median(Segmenter(tiny_weights).probability(frame))), note="test")
    results = []
    node.create_subscription(GuidewireSegmentation, "segmentation/result", results.append, 10)
    publisher = node.create_publisher(Image, "mirrored/image_raw", 10)
    parameters = {"weights": str(weights), "image_topic": "mirrored/image_raw", "input_qos": "reliable",
                  "test_time_mirrors": True}
    with running(node_args("segmentation_node", "segmentation_mirrored", parameters, tmp_path), domain,
                 tmp_path / "mirrored.log"):
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0, START_S)
        assert publish_until(executor, publisher, image("mono8", frame, 1_000_000_001), lambda: results, 30.0)
    mirrored = segment_frame(Segmenter(weights, test_time_flips=True), frame).confidence
    plain = segment_frame(Segmenter(weights), frame).confidence
    served = results[0].confidence
    assert abs(served - mirrored) < 0.25 * abs(served - plain)  # float32 round-off aside, the mirrored model
