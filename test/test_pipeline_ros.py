"""`make run`'s runner end to end on a small bench: every node of config/pipeline.yaml on a private
ROS domain, and a bag that holds X-ray frames and the segmentation of each, the robot's joint states and
the static frames."""
import subprocess
import sys
from collections import Counter

import pytest
import yaml

pytest.importorskip("rclpy")

from ros_support import ROOT, private_domain_id, ros_environment  # noqa: E402


def stamp(message) -> tuple[int, int]:
    return message.header.stamp.sec, message.header.stamp.nanosec


def test_the_runner_records_xray_frames_and_their_segmentations(tmp_path):
    from guidewire.bag import read_bag, suite_typestore

    bench = tmp_path / "bench.yaml"  # a 128 px C-arm: its anatomy renders in seconds, cold
    bench.write_text(yaml.safe_dump({"bench": {"fluoroscopy": {
        "detector_pixels": 128, "pixel_spacing": 0.0016, "cache_dir": str(tmp_path / "drr")}}}))
    overrides = [f"fluoro_capture.bench_config:={bench}", f"stereo_capture.bench_config:={bench}",
                 "segmentation.backend:=torch", "segmentation.window:=128",  # no 2-minute compile
                 # Two stereo pairs a second, not five: the renders of 2048x1536 pairs at 5 Hz left the 2 cores
                 # too busy for the reconstruction to fit three times in the full suite.
                 "stereo_capture.rate_hz:=2.0"]
    run = subprocess.run([sys.executable, "-m", "guidewire_ros.run_pipeline", "--duration", "25",
                          "--out", str(tmp_path / "out"), *overrides],
                         env=ros_environment(private_domain_id()), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rendering, the simulated C-arm's anatomy" in run.stdout
    bag = next((tmp_path / "out").glob("pipeline_*/bag"))
    typestore = suite_typestore()
    messages = {}
    for topic, msgtype, _, data in read_bag(bag):
        messages.setdefault(topic, []).append(typestore.deserialize_cdr(data, msgtype))
    counts = Counter({topic: len(found) for topic, found in messages.items()})
    assert counts["/mag_array/frame"] > 100 and counts["/camera_top/image_raw"] > 5, counts
    assert counts["/xray/image_raw"] > 10 and counts["/segmentation/result"] > 3, counts
    frames = {stamp(m): m for m in messages["/xray/image_raw"]}
    # Each result is of a recorded frame, at its size; the recorder finds a topic by polling, so it
    # may miss a frame or two published before it subscribed.
    recorded = [r for r in messages["/segmentation/result"] if stamp(r) >= min(frames)]
    assert len(recorded) > 3
    for result in recorded:
        frame = frames[stamp(result)]
        assert result.header.frame_id == frame.header.frame_id == "xray_optical"
        assert (result.mask.height, result.mask.width) == (frame.height, frame.width) == (128, 128)
    # The robot drove the bench throughout, and the bag holds the static frames every recorded frame_id needs.
    assert counts["/robot/joint_states"] > 20 * 25, counts
    static = messages["/tf_static"][-1].transforms
    tf_frames = {t.child_frame_id for t in static} | {t.header.frame_id for t in static}
    assert {"bench", "mag_array", "camera_top_optical", "camera_side_optical", "xray_optical",
            "robot_base"} <= tf_frames
    assert {m.header.frame_id for topic in ("/mag_array/frame", "/camera_top/image_raw", "/xray/image_raw")
            for m in messages[topic][:1]} <= tf_frames
