"""Helpers for tests that start real nodes on a private ROS domain."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def private_domain_id() -> int:
    """A domain id (1..100) for this test process, so parallel runs never see each other."""
    return 1 + (os.getpid() % 100)


def ros_environment(domain_id: int) -> dict:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running(args: list[str], domain_id: int, log_path: Path):
    """Run a Python module/script in its own process on the given domain; stop it on exit."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, *args], env=ros_environment(domain_id), stdout=log,
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
