"""Sensor streams over ROS 2 on this machine: sustained rate, publish-to-receive latency, frames
lost and the publishing node's CPU share, for the magnetometer driver (sim backend, 16 sensors)
and the camera node (sim stereo), each against a baseline measured in the same run: a minimal
stamped message published at the same rate by a plain rclpy timer: for the cameras a ready-made mono8
Image of the same size (what the middleware alone costs), for the array a std_msgs/Header.
Every process runs with the pipeline's Fast DDS profile (config/pipeline.yaml, fastdds_profile),
as the launch files and `make run` start them, except one row that shows the camera without it.

    make bench-streams   (= scripts/env.sh python bench/bench_ros_streams.py)

Two latencies, one host clock, at the listener's callback (reliable, depth 1000, raw CDR):
- publish to receive: from the middleware's source timestamp, taken when the node publishes;
- stamp to receive: from the header stamp, the sample or exposure time, so it adds the time the
  node takes to read, simulate or render the sample before publishing it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BASELINE = """
import sys, rclpy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
rclpy.init()
node = rclpy.create_node("baseline_publisher")
rate, width, height = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if width:  # a ready-made mono8 image of the stream's size: only the middleware's cost remains
    publisher = node.create_publisher(Image, "baseline", 10)
    image = Image(width=width, height=height, encoding="mono8", step=width, data=bytes(width * height))
    def publish():
        image.header = Header(stamp=node.get_clock().now().to_msg(), frame_id="baseline")
        publisher.publish(image)
else:
    publisher = node.create_publisher(Header, "baseline", 10)
    publish = lambda: publisher.publish(Header(stamp=node.get_clock().now().to_msg(), frame_id="baseline"))
node.create_timer(1.0 / rate, publish)
rclpy.spin(node)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(command: list[str], topic: str, message_type, rate: float, seconds: float, warmup: float,
            environment: dict | None = None) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    node = rclpy.create_node(f"bench_listener_{abs(hash(topic)) % 10 ** 6}")
    raw_arrivals = []

    def received(data: bytes, info):  # raw CDR: the listener must not be the bottleneck
        raw_arrivals.append((time.time_ns(), info["source_timestamp"], data))

    node.create_subscription(message_type, topic, received, QoSProfile(depth=1000,
                                                                       reliability=ReliabilityPolicy.RELIABLE),
                             raw=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                               env=environment)
    try:
        deadline = time.monotonic() + warmup
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.01)
        raw_arrivals.clear()
        cpu_start, wall_start = cpu_seconds(process.pid), time.monotonic()
        while time.monotonic() < wall_start + seconds:
            rclpy.spin_once(node, timeout_sec=0.01)
        cpu = (cpu_seconds(process.pid) - cpu_start) / (time.monotonic() - wall_start)
    finally:
        process.terminate()
        process.wait(timeout=10)
        node.destroy_node()
    from rclpy.serialization import deserialize_message

    arrivals = []
    for now, published, data in raw_arrivals:
        message = deserialize_message(data, message_type)
        stamp = message.header.stamp if hasattr(message, "header") else message.stamp
        arrivals.append((now, published, stamp.sec * 10 ** 9 + stamp.nanosec, getattr(message, "sequence", None)))
    if len(arrivals) < 2:
        return {"rate": 0.0, "transport": [float("nan")] * 3, "age": [float("nan")] * 3, "lost": "all", "cpu": cpu}
    received_ns, published_ns, stamps, sequences = (np.array(column) for column in zip(*arrivals))
    percentiles = lambda latency_ns: np.percentile(latency_ns / 1e6, [50, 95, 99]).tolist()
    span = (stamps[-1] - stamps[0]) / 1e9
    if sequences[0] is not None:
        lost = int(sequences[-1] - sequences[0] + 1 - len(sequences))
    else:  # images carry no sequence number: frames missing from the node's fixed exposure schedule
        lost = int(np.sum(np.maximum(np.rint(np.diff(np.sort(stamps)) / (1e9 / rate)) - 1, 0)))
    return {"rate": (len(stamps) - 1) / span, "transport": percentiles(received_ns - published_ns),
            "age": percentiles(received_ns - stamps), "lost": lost, "cpu": cpu}


def rendered_frames(folder: Path, count: int = 8) -> Path:
    """Bench frames of the top camera as PNG files: a source with no rendering cost."""
    import cv2

    from guidewire.twin import DigitalTwin

    bench = DigitalTwin()
    frames = folder / "frames"
    frames.mkdir()
    for index in range(count):
        image = bench.cameras["camera_top"].render(bench.state(index * 0.5))
        cv2.imwrite(str(frames / f"{index:03d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return frames


def use_pipeline_middleware() -> None:
    """This process and the nodes it starts: the middleware settings the launch files and `make run` use,
    discovery on this host and a domain of its own."""
    from guidewire_ros.pipeline_config import localhost_discovery_default, middleware_environment

    localhost_discovery_default()
    os.environ.update(middleware_environment())
    os.environ["ROS_DOMAIN_ID"] = str(150 + os.getpid() % 80)


def node_command(module: str, name: str, parameters: dict, folder: Path) -> list[str]:
    from guidewire_ros.pipeline_config import NodeSpec
    from guidewire_ros.run_pipeline import command_with_parameters

    return command_with_parameters(NodeSpec(name=name, executable=module, parameters=parameters), folder)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--only", default="", help="run only the streams whose name contains this text")
    args = parser.parse_args(argv)
    import rclpy
    from guidewire_perception.msg import MagnetometerArray
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from guidewire_ros.pipeline_config import FASTDDS_PROFILE_VARIABLE

    use_pipeline_middleware()
    fastdds_defaults = {k: v for k, v in os.environ.items() if k != FASTDDS_PROFILE_VARIABLE}
    rclpy.init()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        small = folder / "small_cameras.yaml"
        small.write_text(yaml.safe_dump({"bench": {"stereo": [
            {"name": "camera_top", "width": 512, "height": 512, "fx": 600.0, "fy": 600.0, "cx": 255.5, "cy": 255.5},
            {"name": "camera_side", "width": 512, "height": 512, "fx": 600.0, "fy": 600.0, "cx": 255.5,
             "cy": 255.5, "position": [0.0, -0.40, 0.03], "up": [0.0, 0.0, 1.0]}]}}))
        cases = [
            ("magnetometer array, 16 sensors", 100.0, node_command("magnetometer_driver", "driver100",
             {"rate_hz": 100.0, "marker_rate_hz": 0.0}, folder), "/mag_array/frame", MagnetometerArray),
            ("magnetometer array, 16 sensors", 400.0, node_command("magnetometer_driver", "driver400",
             {"rate_hz": 400.0, "marker_rate_hz": 0.0}, folder), "/mag_array/frame", MagnetometerArray),
            ("camera_top 512x512 mono8", 30.0, node_command("camera_capture", "camera512",
             {"source": "sim_stereo", "rate_hz": 30.0, "bench_config": str(small)}, folder),
             "/camera_top/image_raw", Image),
            ("camera_top 2048x1536 mono8 (sim render)", 15.0, node_command("camera_capture", "camera2048",
             {"source": "sim_stereo", "rate_hz": 15.0}, folder), "/camera_top/image_raw", Image),
            ("camera_top 2048x1536 mono8 (sim render, node on Fast DDS's default transports)", 15.0,
             node_command("camera_capture", "camera2048_defaults", {"source": "sim_stereo", "rate_hz": 15.0},
                          folder), "/camera_top/image_raw", Image, fastdds_defaults),
            ("camera 2048x1536 mono8 (image folder)", 15.0, node_command("camera_capture", "folder2048",
             {"source": "folder", "location": str(rendered_frames(folder)), "rate_hz": 15.0, "loop": True,
              "camera_name": "camera_top"}, folder), "/camera_top/image_raw", Image),
        ]
        for name, rate, command, topic, kind, *environment in (case for case in cases if args.only in case[0]):
            size = re.search(r"(\d+)x(\d+)", name)
            width, height = size.groups() if size else ("0", "0")
            baseline = measure([sys.executable, "-c", BASELINE, str(rate), width, height], "/baseline",
                               Image if size else Header, rate, args.seconds, args.warmup)
            result = measure(command, topic, kind, rate, args.seconds, args.warmup, *environment)
            rows.append((name, rate, result, baseline))
    rclpy.shutdown()
    print(f"ROS 2 streams on this machine ({os.cpu_count()} cores), {args.seconds:g} s each after "
          f"{args.warmup:g} s warm-up; baseline: a plain rclpy publisher "
          "of a ready-made message at the same rate, same run (cameras: a mono8 Image of the same size; "
          "array: std_msgs/Header)")
    print("Publish to receive, then stamp to receive, in ms: p50 / p95 / p99")
    print("| stream | target Hz | sustained Hz | publish to receive | stamp to receive | lost | node CPU | "
          "baseline Hz | baseline publish to receive | p99 / baseline p99 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    triple = lambda values: " / ".join(f"{v:.2f}" for v in values)
    for name, rate, r, b in rows:
        print(f"| {name} | {rate:g} | {r['rate']:.1f} | {triple(r['transport'])} | {triple(r['age'])} | "
              f"{r['lost']} | {100 * r['cpu']:.0f}% | {b['rate']:.1f} | {triple(b['transport'])} | "
              f"{r['transport'][2] / b['transport'][2]:.1f} |")
    print("command: scripts/env.sh python bench/bench_ros_streams.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
