"""The lint step: ruff over the project's Python, as ROS 2 packages run ament_flake8 in their tests."""
import subprocess
import sys

from conftest import ROOT

LINTED = ["src", "test", "bench", "launch", "scripts"]


def test_ruff_finds_nothing():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                          str(ROOT / "config" / "ruff.toml"), *LINTED], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
