"""The recorder's CPU per message and how fast it catches up with a backlog: a burst of magnetometer array
frames (16 sensors, the driver's message) published as fast as Python can, and steady streams (the
driver's 100 Hz, and 1000 Hz), beside 24 idle topics (the pipeline's recorder has about two dozen
subscriptions). Each stream runs the recorder node as `make run` starts it with three settings, in the
same run: one message per executor wake-up and no pause (take_batch 1, take_period_s 0: rclpy's way and
the recorder before, the baseline); up to take_batch from each topic per wake-up; and that with the
default pause between wake-ups.

    scripts/env.sh python bench/bench_recorder.py [--burst 6000] [--steady-s 10] [--rates 100,1000]

CPU: the recorder process's user + system time from just before the messages to the moment its
diagnostics count the last one, divided by the messages (its idle share, timers and discovery, is
measured for 3 s before and printed beside). Catch-up: from the first publication to the
last message's log time in the bag (the recorder's take time). Lost: messages not in the bag, and
whether the bag's order is the publication order.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_ros_streams import cpu_seconds, node_command, use_pipeline_middleware  # noqa: E402

TOPIC = "/bench_recorder/array"
IDLE_TOPICS = 24
IDLE_S = 3.0  # the recorder's CPU with no message, measured before each row's messages


def array_frame(sequence: int):
    from geometry_msgs.msg import Point, Vector3
    from guidewire_perception.msg import MagnetometerArray

    frame = MagnetometerArray(sequence=sequence, rows=4, cols=4)
    frame.header.frame_id = "mag_array"
    frame.sensor_positions = [Point(x=0.02 * (i % 4), y=0.02 * (i // 4)) for i in range(16)]
    frame.magnetic_field = [Vector3(x=1e-5 * i, y=2e-5, z=-3e-5) for i in range(16)]
    frame.magnetic_field_covariance = [0.0] * 144
    frame.status = [0] * 16
    return frame


def run_case(node, executor, folder: Path, settings: dict, count: int, rate_hz: float) -> dict:
    """Starts a recorder, publishes `count` frames (at rate_hz, or as fast as possible when 0) once it has
    matched, and waits until its diagnostics count them all."""
    from diagnostic_msgs.msg import DiagnosticArray
    from guidewire_perception.msg import MagnetometerArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from guidewire.bag import read_bag

    name = f"batch{settings['take_batch']}_pause{settings['take_period_s']:g}_" + \
        ("burst" if rate_hz == 0 else f"{rate_hz:g}hz")
    recorded = []
    diagnostics = node.create_subscription(DiagnosticArray, "/diagnostics", lambda array: recorded.extend(
        int(value.value) for status in array.status if status.hardware_id == f"recorder/{name}"
        for value in status.values if value.key == f"messages {TOPIC}"), 50)
    publisher = node.create_publisher(MagnetometerArray, TOPIC,
                                      QoSProfile(depth=count, reliability=ReliabilityPolicy.RELIABLE))
    frames = [array_frame(i) for i in range(count)]
    command = node_command("recorder", "recorder", {"output": str(folder / name), "queue_depth": max(count, 12000),
                                                    **settings}, folder)
    with open(folder / f"{name}.log", "w") as log:
        recorder = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while publisher.get_subscription_count() == 0 or not recorded:  # matched, and reporting
            if time.monotonic() > deadline:
                raise RuntimeError(f"the recorder did not start: {(folder / f'{name}.log').read_text()[-2000:]}")
            executor.spin_once(timeout_sec=0.05)
        time.sleep(1.0)  # its other topics subscribed too (discovery every 0.2 s)
        idle_start = cpu_seconds(recorder.pid)
        time.sleep(IDLE_S)
        cpu_start, start_ns, start = cpu_seconds(recorder.pid), time.time_ns(), time.monotonic()
        period = 1.0 / rate_hz if rate_hz else 0.0
        for index, frame in enumerate(frames):
            while period and time.monotonic() < start + index * period:
                executor.spin_once(timeout_sec=0.002)
            frame.header.stamp.sec, frame.header.stamp.nanosec = divmod(time.time_ns(), 10 ** 9)
            publisher.publish(frame)
        deadline = time.monotonic() + 600
        while not recorded or recorded[-1] < count:
            if time.monotonic() > deadline or recorder.poll() is not None:
                break
            executor.spin_once(timeout_sec=0.05)
        cpu = cpu_seconds(recorder.pid) - cpu_start
        recorder.send_signal(2)
        recorder.wait(timeout=60)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        node.destroy_publisher(publisher)
        node.destroy_subscription(diagnostics)
    from rclpy.serialization import deserialize_message

    log_ns, sequences = [], []
    for _, _, timestamp, data in read_bag(folder / name, [TOPIC]):
        log_ns.append(timestamp)
        sequences.append(deserialize_message(bytes(data), MagnetometerArray).sequence)
    catch_up_s = (max(log_ns) - start_ns) * 1e-9 if log_ns else float("nan")
    return {"cpu_us": 1e6 * cpu / max(len(sequences), 1), "idle_percent": 100 * (cpu_start - idle_start) / IDLE_S,
            "catch_up_s": catch_up_s, "lost": count - len(sequences), "in_order": sequences == sorted(sequences)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=6000, help="frames in the burst")
    parser.add_argument("--steady-s", type=float, default=10.0, help="seconds of each steady stream")
    parser.add_argument("--rates", default="100,1000", help="steady streams' rates, Hz")
    args = parser.parse_args(argv)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header

    from guidewire_ros.pipeline_config import load_pipeline

    defaults = load_pipeline(only=["recorder"])[0].parameters  # config/pipeline.yaml
    settings = [{"take_batch": 1, "take_period_s": 0.0}, {"take_batch": defaults["take_batch"], "take_period_s": 0.0},
                {"take_batch": defaults["take_batch"], "take_period_s": defaults["take_period_s"]}]
    use_pipeline_middleware()
    rclpy.init()
    node = rclpy.create_node("bench_recorder")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    idle = [node.create_publisher(Header, f"/bench_recorder/idle_{k}", 10) for k in range(IDLE_TOPICS)]
    rates = [float(rate) for rate in args.rates.split(",") if rate]
    streams = [("burst", args.burst, 0.0)] + [(f"steady {rate:g} Hz", int(rate * args.steady_s), rate)
                                              for rate in rates]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, count, rate in streams:
            results = [run_case(node, executor, Path(folder), setting, count, rate) for setting in settings]
            rows += [(label, count, setting, result, results[0]) for setting, result in zip(settings, results)]
    for publisher in idle:
        node.destroy_publisher(publisher)
    node.destroy_node()
    rclpy.shutdown()
    print(f"The recorder on this machine ({os.cpu_count()} cores), array frames of 16 sensors beside {IDLE_TOPICS} "
          "idle topics; baseline: take_batch 1, take_period_s 0 (one message per executor wake-up), same run")
    print("| stream | frames | take_batch | take_period_s | CPU us per message | / baseline | catch-up s | lost | "
          "in publication order | idle CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, count, setting, r, b in rows:
        print(f"| {label} | {count} | {setting['take_batch']} | {setting['take_period_s']:g} | {r['cpu_us']:.0f} | "
              f"{r['cpu_us'] / b['cpu_us']:.2f} | {r['catch_up_s']:.2f} | {r['lost']} | "
              f"{'yes' if r['in_order'] else 'NO'} | {r['idle_percent']:.1f} |")
    print("command: scripts/env.sh python bench/bench_recorder.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
