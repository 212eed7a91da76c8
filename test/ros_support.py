"""Helpers for tests that start real nodes on a private ROS domain."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Seconds to wait for something that needs a node started (its imports, its first output): at load 16-19
# on this machine's 2 cores, importing the segmentation node or the magnetometer driver alone took 20-22 s.
START_S = 90.0


_reserved_domain: tuple[int, int] | None = None  # (domain id, descriptor of its held lock file)


def private_domain_id() -> int:
    """A domain id (1..100) for this test process that no other run of these tests on the machine holds.
    Nodes discover every participant of their domain on the host, and several people run tests here at
    once: 1 + pid % 100 alone gave two concurrent runs the same id about once in a hundred. The id is
    reserved by an exclusive lock on a file in the temp folder, held until this process ends."""
    global _reserved_domain
    if _reserved_domain is None:
        first = os.getpid() % 100
        for offset in range(100):
            domain = 1 + (first + offset) % 100
            path = Path(tempfile.gettempdir()) / f"guidewire_ros_domain_{domain}.lock"
            descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            _reserved_domain = (domain, descriptor)
            break
        else:
            raise RuntimeError("ROS domains 1..100 are all held by other test runs on this machine")
    return _reserved_domain[0]


def ros_environment(domain_id: int) -> dict:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running(args: list[str], domain_id: int, log_path: Path, unset: tuple[str, ...] = (),
            extra: dict | None = None):
    """Run a Python module/script in its own process on the given domain, without the environment
    variables named in `unset` and with those in `extra`; stop it on exit."""
    environment = {k: v for k, v in ros_environment(domain_id).items() if k not in unset} | (extra or {})
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *args], env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def spin_until(executor, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def set_parameters(node, executor, target: str, **values) -> list:
    """SetParameters on a node, one result per value, as `ros2 param set` does."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = node.create_client(SetParameters, f"/{target}/set_parameters")
    try:
        assert spin_until(executor, client.service_is_ready, 60), f"no /{target}/set_parameters"
        future = client.call_async(SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]))
        assert spin_until(executor, future.done, 30)
        return future.result().results
    finally:
        node.destroy_client(client)


def publish_until(executor, publisher, message, done, timeout: float, period_s: float = 0.5) -> bool:
    """Publish `message` every `period_s` until `done()`, as a camera would: a volatile writer delivers
    nothing to a reader it matches after the message, and the graph listing that reader (or the reader's
    node answering on other topics) says nothing of whether it has matched yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publisher.publish(message)
        if spin_until(executor, done, period_s):
            return True
    return False


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    domain = private_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from guidewire_ros.pipeline_config import middleware_environment

    os.environ.update(middleware_environment())  # nodes and this listener, as the launch files run them
    import rclpy

    if not rclpy.ok():
        rclpy.init()
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node("test_listener")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    yield domain, node, executor, tmp_path_factory.mktemp("nodes")
    node.destroy_node()


def node_args(module: str, name: str, parameters: dict, folder: Path) -> list[str]:
    """Arguments after the interpreter (running() adds it) that start a node as the runner does."""
    from guidewire_ros.pipeline_config import NodeSpec
    from guidewire_ros.run_pipeline import command_with_parameters

    return command_with_parameters(NodeSpec(name=name, executable=module, parameters=parameters), folder)[1:]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    import torch

    from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork
    from guidewire.segmentation.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_checkpoint(path, SegmentationNetwork(NetworkConfig(widths=(4, 4, 8, 8, 8, 8))).eval(), threshold=0.5)
    return path
