"""How long one simulated bench frame takes to generate, at the default sizes.

Prints a table; each row's ratio compares it with a baseline timed in the same
run (copying the output array once), since these machines are noisy.

    make bench            (= scripts/env.sh python bench/bench_frame.py)
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from guidewire.twin import DigitalTwin  # noqa: E402
from guidewire.twin.fluoroscopy import FluoroscopyRenderer  # noqa: E402
from guidewire.twin.config import load_bench_config  # noqa: E402


def timed(function, repeats: int) -> tuple[float, float]:
    """Median and 90th percentile in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def main() -> None:
    config = load_bench_config(Path(__file__).resolve().parents[1] / "config" / "bench.yaml")
    bench = DigitalTwin(config)
    times = iter(np.linspace(0.0, 30.0, 1000))
    rows = []

    state = bench.state(1.0)
    field = bench.magnetometer.sample(state).field
    rows.append(("wire state (centreline)", timed(lambda: bench.state(next(times)), 50), None))
    rows.append((f"array field, {len(field)} sensors", timed(lambda: bench.magnetometer.sample(state), 200), field))
    for name, renderer in bench.cameras.items():
        image = renderer.render(state)
        rows.append((f"{name} {image.shape[1]}x{image.shape[0]} mono8",
                     timed(lambda r=renderer: r.render(state), 20), image))

    with tempfile.TemporaryDirectory() as cache:
        cold_config = replace(config.fluoroscopy, cache_dir=cache)
        start = time.perf_counter()
        FluoroscopyRenderer(cold_config, config.seed)
        cold_ms = (time.perf_counter() - start) * 1000
    fluoroscopy = bench.fluoroscopy
    frame = fluoroscopy.render(state)
    rows.append((f"fluoroscopy {frame.shape[1]}x{frame.shape[0]} (cached anatomy)",
                 timed(lambda: fluoroscopy.render(state), 20), frame))

    print(f"Bench frame generation, seed {config.seed}, config/bench.yaml")
    print(f"{'what':44s} {'median ms':>10s} {'p90 ms':>8s} {'x baseline':>11s}")
    for label, (median, p90), output in rows:
        if output is None:
            ratio = ""
        else:
            baseline, _ = timed(lambda o=output: o.copy(), 50)
            ratio = f"{median / max(baseline, 1e-6):11.0f}"
        print(f"{label:44s} {median:10.2f} {p90:8.2f} {ratio}")
    print(f"{'anatomy DRR (diffdrr, once, then cached)':44s} {cold_ms:10.0f} {'':8s}")
    print("baseline: copying the row's output array once, timed in the same run")
    print("command: make bench")


if __name__ == "__main__":
    main()
