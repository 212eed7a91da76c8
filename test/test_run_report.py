"""The run report scores a bag against the bench's ground truth: outputs placed exactly on the truth
score perfectly, outputs shifted by a known amount score that amount, and a robot that moved the wire
moves the truth with it."""
import json

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")

STAMP_NS = 1_796_000_000 * 10**9


@pytest.fixture
def small_bench(tmp_path):
    bench = tmp_path / "bench.yaml"  # a 128 px C-arm: its anatomy renders in seconds, cold
    bench.write_text(yaml.safe_dump({"bench": {"fluoroscopy": {
        "detector_pixels": 128, "pixel_spacing": 0.0016, "cache_dir": str(tmp_path / "drr")}}}))
    return str(bench)


def shape_message(stamp_ns: int, points: np.ndarray):
    from geometry_msgs.msg import Point

    from guidewire_perception.msg import GuidewireShape

    message = GuidewireShape(centreline=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points])
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    message.header.frame_id = "bench"
    return message


def write_bag(path, messages: list[tuple[str, str, int, object]]):
    from rclpy.serialization import serialize_message

    from guidewire.bag import BagWriter

    writer = BagWriter(path)
    for topic, msgtype in sorted({(topic, msgtype) for topic, msgtype, _, _ in messages}):
        writer.add_topic(topic, msgtype)
    for topic, _, log_ns, message in messages:
        writer.write(topic, log_ns, serialize_message(message))
    writer.close()


def test_report_scores_shapes_segmentations_and_follows_the_robot(tmp_path, small_bench):
    from sensor_msgs.msg import Image, JointState

    from guidewire.run_report import write_report
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.scoring import BenchTruth
    from guidewire_perception.msg import GuidewireSegmentation

    truth = BenchTruth(load_bench_config(small_bench))
    exact = truth.wire(STAMP_NS).centreline
    shifted = exact + np.array([0.001, 0.0, 0.0])  # 1 mm along x

    mask = (255 * truth.xray_mask(STAMP_NS)).astype(np.uint8)
    assert mask.any(), "the wire projects onto the small C-arm's detector"
    segmentation = GuidewireSegmentation(mask=Image(height=mask.shape[0], width=mask.shape[1], encoding="mono8",
                                                    step=mask.shape[1], data=mask.tobytes()),
                                         tip_found=False, confidence=0.9)
    segmentation.header.stamp.sec, segmentation.header.stamp.nanosec = divmod(STAMP_NS, 10**9)
    empty = (mask * 0).tobytes()
    missed = GuidewireSegmentation(mask=Image(height=mask.shape[0], width=mask.shape[1], encoding="mono8",
                                              step=mask.shape[1], data=empty), confidence=0.1)
    missed.header = segmentation.header

    # A robot state 1 s later holds the wire 20 mm further in than the bench's profile would.
    later = STAMP_NS + 10**9
    profile = truth.twin.wire
    robot_insertion = profile.inserted_length(later * 1e-9) + 0.02
    robot_roll = float(profile.rotation(later * 1e-9))
    # (effort filled: rclpy's serialize_message pads a message that ends in an empty float64 sequence with
    # 4 bytes more than rosbags accepts; the DDS sample a recorder receives has no such padding)
    joints = JointState(name=["insertion", "roll"], position=[robot_insertion, robot_roll], velocity=[0.0, 0.0],
                        effort=[0.0, 0.0])
    joints.header.stamp.sec, joints.header.stamp.nanosec = divmod(later, 10**9)
    robot_wire = profile.shape(robot_insertion, robot_roll, later * 1e-9).centreline

    shape_type = "guidewire_perception/msg/GuidewireShape"
    segmentation_type = "guidewire_perception/msg/GuidewireSegmentation"
    bag = tmp_path / "bag"
    write_bag(bag, [
        ("/guidewire/shape", shape_type, STAMP_NS + 1_000_000, shape_message(STAMP_NS, exact)),
        ("/guidewire/shape", shape_type, STAMP_NS + 2_000_000, shape_message(STAMP_NS, shifted)),
        ("/segmentation/result", segmentation_type, STAMP_NS + 3_000_000, segmentation),
        ("/segmentation/result", segmentation_type, STAMP_NS + 4_000_000, missed),
        ("/robot/joint_states", "sensor_msgs/msg/JointState", later, joints),
        ("/guidewire/shape", shape_type, later + 5_000_000, shape_message(later, robot_wire)),
    ])
    summary = write_report(bag, tmp_path / "report", "test", small_bench)

    reconstruction = summary["accuracy"]["reconstruction"]
    assert reconstruction["shapes"] == 3
    assert reconstruction["rmse_mm"]["median"] == pytest.approx(0.0, abs=1e-3)  # exact, robot-moved: 0
    assert reconstruction["rmse_mm"]["p95"] == pytest.approx(0.9, abs=0.1)  # the 1 mm shift near the top
    assert reconstruction["tip_error_mm"]["p95"] > 0.8
    segmentation_scores = summary["accuracy"]["segmentation"]
    assert segmentation_scores["frames"] == 2
    # The truth mask (100) and an empty one (0).
    assert segmentation_scores["dice_percent"]["mean"] == pytest.approx(50.0, abs=1e-6)
    assert segmentation_scores["dice_percent"]["p95"] == pytest.approx(95.0, abs=1e-6)
    assert summary["topics"]["/guidewire/shape"]["count"] == 3
    assert summary["topics"]["/guidewire/shape"]["latency_ms_p50"] == pytest.approx(2.0, abs=0.01)

    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert written["accuracy"]["reconstruction"]["shapes"] == 3
    assert "| reconstruction | rmse_mm | 3 |" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "summary.png").stat().st_size > 10_000


def test_report_window_leaves_out_what_came_before_the_start(tmp_path, small_bench):
    from guidewire.run_report import write_report

    truth_free = np.column_stack([np.linspace(0, 0.1, 20), np.zeros(20), np.zeros(20)])
    bag = tmp_path / "bag"
    shape_type = "guidewire_perception/msg/GuidewireShape"
    write_bag(bag, [("/guidewire/shape", shape_type, STAMP_NS + k * 10**8, shape_message(STAMP_NS, truth_free))
                    for k in range(10)])
    summary = write_report(bag, tmp_path / "report", "test", small_bench, start_ns=STAMP_NS + 5 * 10**8,
                           end_ns=STAMP_NS + 8 * 10**8)
    assert summary["topics"]["/guidewire/shape"]["count"] == 4  # 5, 6, 7, 8
    assert summary["duration_s"] == pytest.approx(0.3)


def test_report_scores_the_wire_in_the_ct_frame_apart_from_the_bench_one(tmp_path, small_bench):
    from guidewire.run_report import write_report
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.scoring import BenchTruth

    truth = BenchTruth(load_bench_config(small_bench))
    exact = truth.wire(STAMP_NS).centreline
    ct_from_bench = np.linalg.inv(truth.ct_to_bench)
    in_ct = exact @ ct_from_bench[:3, :3].T + ct_from_bench[:3, 3]
    assert np.abs(in_ct - exact).max() > 0.01, "the CT frame is not the bench's: the test tells them apart"

    def in_frame(points, frame):
        message = shape_message(STAMP_NS, points)
        message.header.frame_id = frame
        return message

    shape_type = "guidewire_perception/msg/GuidewireShape"
    bag = tmp_path / "bag"
    write_bag(bag, [
        ("/guidewire/shape", shape_type, STAMP_NS + 1_000_000, shape_message(STAMP_NS, exact)),
        ("/guidewire/ct/shape", shape_type, STAMP_NS + 2_000_000, in_frame(in_ct, "ct")),
        # 2 mm off along the CT's own x axis: the same 2 mm on the bench
        ("/guidewire/ct/shape", shape_type, STAMP_NS + 3_000_000, in_frame(in_ct + [0.002, 0.0, 0.0], "ct")),
        ("/guidewire/other", shape_type, STAMP_NS + 4_000_000, in_frame(exact, "camera_top_optical")),
    ])
    summary = write_report(bag, tmp_path / "report", "test", small_bench)

    bench = summary["accuracy"]["reconstruction"]
    assert bench["shapes"] == 1 and bench["rmse_mm"]["median"] == pytest.approx(0.0, abs=1e-3)
    ct = summary["accuracy"]["reconstruction in the CT frame"]
    assert ct["shapes"] == 2  # the frame without truth is left out, not scored as the bench's
    assert ct["rmse_mm"]["mean"] == pytest.approx(1.0, abs=1e-3)  # the mean of 0 and 2 mm
    assert ct["tip_error_mm"]["p95"] == pytest.approx(1.9, abs=1e-3)
    with pytest.raises(ValueError, match="camera_top_optical"):
        truth.shape(STAMP_NS, exact, "camera_top_optical")
