"""Issue 23's probes against real nodes: bad settings refused at start-up by key and value, run-time
parameter changes applied or refused with a reason, absurd frames, and stop signals at any moment.
Several probes share one start of a node (CI runs on two cores)."""
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_support import (ROOT, START_S, node_args, ros, ros_environment, running, set_parameters,  # noqa: E402,F401
                         spin_until, tiny_weights)
from guidewire.bag import BagWriter  # noqa: E402

SMALL_CAMERAS = {"bench": {"stereo": [
    {"name": "camera_top", "width": 256, "height": 192, "fx": 300.0, "fy": 300.0, "cx": 127.5, "cy": 95.5},
    {"name": "camera_side", "width": 256, "height": 192, "fx": 300.0, "fy": 300.0, "cx": 127.5, "cy": 95.5,
     "position": [0.0, -0.40, 0.03], "up": [0.0, 0.0, 1.0]}]}}
# What a clean stop must not print.
FAULTS = ("Traceback", "ERROR", "Error", "error", "Exception")


def stop(process, log_path, sig=signal.SIGINT) -> str:
    """Send a stop signal; the node must end with status 0 and no error line from then on."""
    before = len(log_path.read_text())
    process.send_signal(sig)
    assert process.wait(timeout=30) == 0, log_path.read_text()
    tail = log_path.read_text()[before:]
    assert not any(fault in tail for fault in FAULTS), tail
    return tail


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (Python installs none of its own: ours is in place)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.fixture
def reaped():
    """Processes a test starts by itself: any still running when it ends (it failed) are killed, so that
    they do not go on publishing on the domain the later tests of this run use."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def one_message_bag(path, closed: bool):
    """A bag with one message; not closed: as its recorder left it when killed (no metadata.yaml)."""
    writer = BagWriter(path)
    writer.add_topic("/chatter", "std_msgs/msg/String")
    writer.write("/chatter", 1, b"\x00\x01\x00\x00\x02\x00\x00\x00a\x00\x00\x00")
    if closed:
        writer.close()
    else:
        writer.checkpoint()
    return path


def test_bad_settings_stop_the_node_at_start_naming_key_and_value(ros, tmp_path, reaped):
    """Probes: driver rate_hz 100000 (ran at 880 Hz, OK), bench noise_rms .nan (published -9e10 T, OK),
    a 2-element hard_iron ('cannot reshape'), camera rate_hz 0 (ZeroDivisionError), replay with an
    empty bag ("Expected metadata file '.'"), replay rate 0 (exit 0), a bag never closed (no hint)."""
    domain, *_ = ros
    nan_bench = tmp_path / "nan_bench.yaml"
    nan_bench.write_text("bench:\n  magnetometer_array:\n    noise_rms: .nan\n")
    calibration = tmp_path / "calibration.yaml"
    calibration.write_text(yaml.safe_dump({"calibration": {"sensors": [{"hard_iron": [1e-6, 2e-6]}]}}))
    killed = one_message_bag(tmp_path / "killed", closed=False)
    probes = {
        "fast_driver": ("magnetometer_driver", {"rate_hz": 100000.0},
                        ["rate_hz out of range", "value: 100000.0"]),
        "nan_driver": ("magnetometer_driver", {"bench_config": str(nan_bench)},
                       ["bench.magnetometer_array.noise_rms has an invalid value nan"]),
        "calibrated_driver": ("magnetometer_driver", {"calibration_file": str(calibration)},
                              ["calibration.sensors[0].hard_iron must have shape (3,), got [1e-06, 2e-06]"]),
        "still_camera": ("camera_capture", {"rate_hz": 0.0}, ["rate_hz out of range", "value: 0.0"]),
        "no_bag_replay": ("replay", {"bag": ""}, ["parameter 'bag' is empty"]),
        "still_replay": ("replay", {"bag": str(one_message_bag(tmp_path / "closed", closed=True)), "rate": 0.0},
                         ["Parameter rate out of range", "value: 0.0"]),
        "killed_bag_replay": ("replay", {"bag": str(killed)},
                              [f"{killed} was never closed", f"python -m guidewire.bag recover {killed}"]),
    }
    processes = {}
    for name, (module, parameters, _) in probes.items():
        log = open(tmp_path / f"{name}.log", "w")
        processes[name] = subprocess.Popen([sys.executable, *node_args(module, name, parameters, tmp_path)],
                                           env=ros_environment(domain), stdout=log, stderr=subprocess.STDOUT,
                                           cwd=ROOT)
        reaped.append(processes[name])
    for name, (_, _, expected) in probes.items():
        assert processes[name].wait(timeout=120) == 1, name
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log and "cannot start" in log, log
        for text in expected:
            assert text in log, f"{name}: {text!r} not in {log}"


def test_driver_and_camera_apply_rate_changes_and_refuse_the_rest(ros, tmp_path):
    """Probe: SetParameters rate_hz 100 -> 20 answered 'successful' and the driver went on at 100 Hz
    (also camera_capture; also backend and frame_id). Then both stop cleanly on SIGINT."""
    domain, node, executor, _ = ros
    from guidewire_perception.msg import MagnetometerArray
    from sensor_msgs.msg import Image

    def stamp(message) -> int:
        return message.header.stamp.sec * 10 ** 9 + message.header.stamp.nanosec

    frames, images = [], []
    deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    subscriptions = [node.create_subscription(MagnetometerArray, "mag_array/frame", lambda m: frames.append(stamp(m)),
                                              deep),
                     node.create_subscription(Image, "camera_top/image_raw", lambda m: images.append(stamp(m)), deep)]
    bench = tmp_path / "bench.yaml"
    bench.write_text(yaml.safe_dump(SMALL_CAMERAS))
    driver = node_args("magnetometer_driver", "magnetometer_driver", {"rate_hz": 100.0, "marker_rate_hz": 0.0},
                       tmp_path)
    camera = node_args("camera_capture", "stereo_capture", {"source": "sim_stereo", "rate_hz": 10.0,
                                                            "bench_config": str(bench)}, tmp_path)
    with running(driver, domain, tmp_path / "driver.log") as driver_process, \
            running(camera, domain, tmp_path / "camera.log") as camera_process:
        assert spin_until(executor, lambda: len(frames) >= 20 and len(images) >= 3, 90), \
            (tmp_path / "driver.log").read_text() + (tmp_path / "camera.log").read_text()
        changed, frame_id, backend = set_parameters(node, executor, "magnetometer_driver", rate_hz=20.0,
                                                    frame_id="elsewhere", backend="i2c")
        assert changed.successful
        for refused, name in ((frame_id, "frame_id"), (backend, "backend")):
            assert not refused.successful and f"{name}: read at start-up only" in refused.reason
        (too_fast,) = set_parameters(node, executor, "magnetometer_driver", rate_hz=100000.0)
        assert not too_fast.successful and "out of range" in too_fast.reason
        camera_rate, loop = set_parameters(node, executor, "stereo_capture", rate_hz=2.0, loop=True)
        assert camera_rate.successful and not loop.successful and "read at start-up only" in loop.reason
        frames_after, images_after = len(frames), len(images)
        assert spin_until(executor, lambda: len(frames) >= frames_after + 25 and len(images) >= images_after + 6, 60)
        # The driver's stamps are its sample grid: 50 ms apart at 20 Hz (10 ms before).
        assert np.median(np.diff(frames[-20:])) == pytest.approx(50e6, abs=1e3)
        # The camera stamps when its timer fires: the median of four gaps, so that one tick a loaded machine
        # delays past the next (a 1 s gap) does not decide it.
        assert np.median(np.diff(images[-5:])) == pytest.approx(0.5e9, abs=0.15e9)
        stop(driver_process, tmp_path / "driver.log")
        stop(camera_process, tmp_path / "camera.log", signal.SIGTERM)
    for subscription in subscriptions:
        node.destroy_subscription(subscription)


def float_image(array: np.ndarray, encoding: str, sec: int):
    from sensor_msgs.msg import Image

    from guidewire.imaging import to_image_fields

    fields = to_image_fields(array, encoding)
    message = Image(height=fields.height, width=fields.width, encoding=encoding, is_bigendian=fields.is_bigendian,
                    step=fields.step, data=fields.data)
    message.header.stamp.sec = sec
    return message


def test_segmentation_refuses_huge_and_non_finite_frames_at_once_and_takes_absurd_ones(ros, tiny_weights,
                                                                                      tmp_path):
    """Probes: a 4000x4000 frame took 50 s with /diagnostics silent; a 32FC1 frame near +-3e38 killed
    the compiled backend (torch: confidence 0). The node also takes run-time settings and stops cleanly."""
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from guidewire_perception.msg import GuidewireSegmentation
    from sensor_msgs.msg import Image

    results, diagnostics = [], []
    subscriptions = [
        node.create_subscription(GuidewireSegmentation, "segmentation/result", results.append, 10),
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(
            (time.monotonic(), s) for s in m.status if "fganet" in s.hardware_id), 50)]
    publisher = node.create_publisher(Image, "xray/image_raw",
                                      QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    parameters = {"weights": str(tiny_weights), "image_topic": "xray/image_raw", "input_qos": "reliable",
                  "publish_overlay": False}

    def error_after(since: float, text: str):
        return next((t for t, s in diagnostics if t > since and s.level == DiagnosticStatus.ERROR
                     and text in s.message), None)

    signs = np.where(np.random.default_rng(0).random((96, 128)) > 0.5, 1.0, -1.0).astype(np.float32)
    with running(node_args("segmentation_node", "segmentation", parameters, tmp_path), domain,
                 tmp_path / "segmentation.log") as process:
        assert spin_until(executor, lambda: publisher.get_subscription_count() > 0 and diagnostics, 90)
        sent = time.monotonic()
        publisher.publish(float_image(np.zeros((4000, 4000), np.uint8), "mono8", 1))
        assert spin_until(executor, lambda: error_after(sent, "4000x4000 has more than max_pixels"), 30), \
            [s.message for _, s in diagnostics]
        print(f"4000x4000 frame reported after {error_after(sent, '4000x4000') - sent:.1f} s")
        publisher.publish(float_image(signs * np.float32(3e38), "32FC1", 2))
        assert spin_until(executor, lambda: any(r.header.stamp.sec == 2 for r in results), 30)
        assert math.isfinite(next(r for r in results if r.header.stamp.sec == 2).confidence)
        sent = time.monotonic()
        publisher.publish(float_image(np.where(signs > 0, np.nan, signs).astype(np.float32), "32FC1", 3))
        assert spin_until(executor, lambda: error_after(sent, "NaN or infinite"), 30)
        larger, backend = set_parameters(node, executor, "segmentation", max_pixels=20_000_000, backend="onnx")
        assert larger.successful and not backend.successful and "backend: read at start-up only" in backend.reason
        stop(process, tmp_path / "segmentation.log")
    assert not any(r.header.stamp.sec in (1, 3) for r in results)
    for subscription in subscriptions:
        node.destroy_subscription(subscription)
    node.destroy_publisher(publisher)


def test_stop_signals_at_any_moment_end_nodes_cleanly(ros, tiny_weights, tmp_path, reaped):
    """Probe: SIGINT gave 'publisher's context is invalid' (driver at 400 Hz), 'Failed to publish log
    message to rosout' (recorder), an AttributeError in Executor.__del__ or a KeyboardInterrupt
    traceback (segmentation, while loading). Each node is stopped while it imports, while it builds
    itself and once it runs; exit status 0 and no error line."""
    domain, *_ = ros
    nodes = {
        "driver": ("magnetometer_driver", {"rate_hz": 400.0}, "at 400 Hz"),
        "recorder": ("recorder", {"output": str(tmp_path / "bag")}, "recording"),
        "segmentation": ("segmentation_node", {"weights": str(tiny_weights)}, "loaded"),
    }
    # (node, seconds after the node's own signal handling is in place (its first import), or None: once
    # ready (then 1 s), signal). Earlier, in the interpreter's own start-up before any code of the
    # project runs, SIGINT is Python's KeyboardInterrupt.
    moments = [("driver", 0.0, signal.SIGINT), ("driver", 1.0, signal.SIGINT), ("driver", None, signal.SIGINT),
               ("recorder", 0.5, signal.SIGTERM), ("recorder", None, signal.SIGINT),
               ("segmentation", 2.0, signal.SIGINT), ("segmentation", None, signal.SIGINT)]
    started = []
    for index, (name, after, sig) in enumerate(moments):
        module, parameters, ready = nodes[name]
        if name == "recorder":
            parameters = {**parameters, "output": str(tmp_path / f"bag{index}")}
        log_path = tmp_path / f"{name}{index}.log"
        log = open(log_path, "w")
        process = subprocess.Popen([sys.executable, *node_args(module, f"{name}{index}", parameters, tmp_path)],
                                   env=ros_environment(domain), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        reaped.append(process)
        started.append([process, log_path, None, after, ready, sig])
    pending = list(started)
    deadline = time.monotonic() + 180
    while pending and time.monotonic() < deadline:
        for entry in list(pending):
            process, log_path, handled_since, after, ready, sig = entry
            if handled_since is None:
                if catches_sigterm(process.pid):
                    entry[2] = handled_since = time.monotonic()
                else:
                    continue
            if (after is not None and time.monotonic() - handled_since >= after) or \
                    (after is None and ready in log_path.read_text()):
                if after is None:
                    time.sleep(1.0)  # running, not just announced
                process.send_signal(sig)
                pending.remove(entry)
        time.sleep(0.01)
    assert not pending, [p[1].read_text() for p in pending]
    for process, log_path, *_ in started:
        assert process.wait(timeout=60) == 0, log_path.read_text()
        log = log_path.read_text()
        assert not any(fault in log for fault in FAULTS), f"{log_path.name}: {log}"


def test_a_late_backlog_is_recorded_and_replayed_as_published_to_a_listener_that_started_first(ros, tmp_path):
    """Probe: a recorded 400 Hz bag replayed with default settings to a listener started before it
    delivered about half the frames in 2 of 4 runs while replay said "finished" and exited 0; the
    recorder stored receive time only, so a backlog it received late replayed squeezed."""
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from mcap.reader import make_reader

    from guidewire_perception.msg import MagnetometerArray

    array = "/mag_array/frame"
    bag = tmp_path / "backlog"
    reports = []  # (stamp, count) of the recorder's reports: each count is what it had written by then
    counting = node.create_subscription(DiagnosticArray, "/diagnostics", lambda message: reports.extend(
        (message.header.stamp.sec + 1e-9 * message.header.stamp.nanosec, int(value.value))
        for status in message.status if status.hardware_id == "recorder/backlog"
        for value in status.values if value.key == f"messages {array}"), 10)
    driver = node_args("magnetometer_driver", "magnetometer_driver", {"rate_hz": 400.0, "marker_rate_hz": 0.0},
                       tmp_path)
    recorder = node_args("recorder", "recorder", {"topics": [array], "output": str(bag)}, tmp_path)
    stall = 400  # frames the driver publishes while the recorder is stopped (about 1 s)
    with running(driver, domain, tmp_path / "driver.log"), \
            running(recorder, domain, tmp_path / "recorder.log") as recording:
        # By counts, not by time (on a loaded machine the driver too may be starved): the stall once the
        # recorder records; it ends once the driver published `stall` frames to this test's reader.
        assert spin_until(executor, lambda: reports and reports[-1][1] >= 200, START_S), \
            (tmp_path / "recorder.log").read_text()
        during_stall = []
        watching = node.create_subscription(MagnetometerArray, array, lambda _: during_stall.append(1),
                                            QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                                                       durability=DurabilityPolicy.VOLATILE))
        recording.send_signal(signal.SIGSTOP)
        spin_until(executor, lambda: len(during_stall) >= stall, START_S)
        resumed = time.time()
        recording.send_signal(signal.SIGCONT)
        node.destroy_subscription(watching)
        # The first report made after the stall counts at least what the recorder had before it; the
        # stalled frames are all written once it counts `stall` and 200 more than that (they come in order).
        assert spin_until(executor, lambda: any(stamp > resumed for stamp, _ in reports), START_S)
        after_stall = next(count for stamp, count in reports if stamp > resumed)
        assert spin_until(executor, lambda: reports[-1][1] >= after_stall + stall + 200, START_S), reports[-1]
        stop(recording, tmp_path / "recorder.log")
    node.destroy_subscription(counting)
    with open(next(bag.glob("*.mcap")), "rb") as stream:
        times = np.array([(m.log_time, m.publish_time, int.from_bytes(m.data[4:8], "little") * 10 ** 9
                           + int.from_bytes(m.data[8:12], "little"))  # the header stamp, from the CDR
                          for _, _, m in make_reader(stream).iter_messages()])
    logged, published, stamped = (times[:, k] * 1e-9 for k in range(3))
    assert len(times) > 800
    # The publication time is the driver's: close to its sample stamps (the sampler runs at most 0.1 s
    # late before it drops), during the recorder's stop as well, whose frames were logged 1 s late or more.
    assert np.median(np.abs(published - stamped)) < 0.02 and np.abs(published - stamped).max() < 0.3
    assert (logged - published).max() > 0.7

    received = []
    subscription = node.create_subscription(MagnetometerArray, array, lambda m: received.append(time.monotonic()),
                                            QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE))
    spin_until(executor, lambda: False, 3.0)  # the listener is up before the player
    with running(node_args("replay", "replay", {"bag": str(bag)}, tmp_path), domain,
                 tmp_path / "replay.log") as replay:
        assert spin_until(executor, lambda: len(received) >= len(times), 60), (tmp_path / "replay.log").read_text()
        assert replay.wait(timeout=30) == 0
    log = (tmp_path / "replay.log").read_text()
    assert f"{array}: {len(times)} messages to 1 readers, every reliable reader acknowledged" in log, log
    span = published[-1] - published[0]
    assert received[-1] - received[0] > 0.8 * span, "the backlog replayed squeezed"
    node.destroy_subscription(subscription)


def test_diagnostics_report_while_the_executor_is_busy(ros):
    """Probe: a 4000x4000 frame kept the segmentation node 50 s in one callback, /diagnostics silent.
    Reports come from a thread of their own: here the executor does nothing for 2.5 s."""
    domain, node, executor, _ = ros
    from guidewire_ros.common import OK, Diagnostics

    reports = []
    diagnostics = Diagnostics(node, "busy")
    diagnostics.start(lambda: (reports.append(time.monotonic()), diagnostics.publish(OK, "ok", {})), period_s=0.5)
    time.sleep(2.5)  # a callback that takes long
    diagnostics.close()
    assert len(reports) >= 3
    count = len(reports)
    time.sleep(1.0)
    assert len(reports) == count  # close() stops them
    node.destroy_publisher(diagnostics.publisher)
