"""Soak run (issue 23): the whole pipeline with its recorder for 10 minutes (make run's runner), then

- memory: each node's resident set (VmRSS) at the start (every node up) and at the end, sampled
  every 10 s, with its growth;
- nothing lost: the driver's frame sequence numbers in the bag run without a gap; every topic's
  header stamps are increasing without a gap of more than 3 periods of its median rate; the
  segmentation results in the bag match the frames the node said (on /diagnostics, also in the bag)
  it segmented;
- no error lines: every node log scanned for ERROR, FATAL, Traceback, Exception.

It needs the whole machine (the pipeline alone loads two cores): run it on a quiet one.

    scripts/env.sh python bench/soak_pipeline.py --duration 600 --out out/soak
"""
from __future__ import annotations

import argparse
import re
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

FAULTS = re.compile(r"ERROR|FATAL|Traceback|Exception")


def node_processes() -> dict[str, int]:
    """node name -> pid of every running guidewire_ros node (the runner's `-r __node:=NAME`)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        names = [a[len(b"__node:="):].decode() for a in arguments if a.startswith(b"__node:=")]
        if names and any(a.startswith(b"guidewire_ros.") for a in arguments):
            found[names[0]] = int(proc.name)
    return found


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sample_memory(samples: dict, stop: threading.Event, period_s: float = 10.0) -> None:
    while not stop.wait(period_s):
        now = time.monotonic()
        for name, pid in node_processes().items():
            value = rss_mb(pid)
            if value is not None:
                samples[name].append((now, value))


def stamp_ns(data: bytes) -> int:
    sec, nanosec = struct.unpack_from("<iI", data, 4)
    return sec * 10 ** 9 + nanosec


def check_bag(bag: Path) -> list[str]:
    """What the bag shows lost, one line each (empty: nothing)."""
    from guidewire.bag import read_bag, suite_typestore

    typestore = suite_typestore()
    stamps, sequences, segmented, results = defaultdict(list), [], 0, 0
    for topic, msgtype, _, data in read_bag(bag):
        data = bytes(data)
        if msgtype == "guidewire_perception/msg/MagnetometerArray":
            sequences.append(typestore.deserialize_cdr(data, msgtype).sequence)
        if msgtype == "diagnostic_msgs/msg/DiagnosticArray":
            for status in typestore.deserialize_cdr(data, msgtype).status:
                segmented += sum(int(v.value) for v in status.values if v.key == "frames_segmented")
            continue
        if msgtype == "guidewire_perception/msg/GuidewireSegmentation":
            results += 1
        if msgtype not in ("tf2_msgs/msg/TFMessage", "rcl_interfaces/msg/Log"):
            stamps[topic].append(stamp_ns(data))
    problems = []
    if sequences and np.any(np.diff(sequences) != 1):
        problems.append(f"driver frames: {int((np.diff(sequences) != 1).sum())} gaps in the sequence numbers")
    for topic, values in stamps.items():
        gaps = np.diff(values) * 1e-9
        if len(gaps) > 10 and (np.any(gaps < 0) or gaps.max() > 3 * np.median(gaps)):
            problems.append(f"{topic}: stamps go back or skip (largest gap {gaps.max():.3f} s, median "
                            f"{np.median(gaps):.3f} s)")
    # The node's count includes frames segmented before the recorder subscribed: results may be fewer,
    # never more, and only by the first second's worth.
    if segmented and not 0 <= segmented - results <= max(0.02 * segmented, 5):
        problems.append(f"segmentation: {segmented} frames segmented (diagnostics), {results} results in the bag")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--out", default="out/soak")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "guidewire_ros.run_pipeline", "--duration", str(args.duration), "--out", str(out)]
    samples: dict[str, list] = defaultdict(list)
    stop = threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(samples, stop), daemon=True)
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in runner.stdout:
        sys.stdout.write(line)
        if "every node is up" in line and not sampler.is_alive():
            sampler.start()
    code = runner.wait()
    stop.set()
    run_dir = max(out.glob("pipeline_*"), key=lambda p: p.stat().st_mtime)
    lines = [f"# Soak run: `{' '.join(command)}` (runner exit {code})", "",
             "| node | RSS start MB | RSS end MB | growth |", "|---|---|---|---|"]
    for name, values in sorted(samples.items()):
        start, end = values[0][1], values[-1][1]
        lines.append(f"| {name} | {start:.0f} | {end:.0f} | {end - start:+.0f} MB ({(end / start - 1) * 100:+.1f}%) |")
    errors = [f"{log.name}: {line.strip()}" for log in sorted(run_dir.glob("*.log"))
              for line in log.read_text(errors="replace").splitlines() if FAULTS.search(line)]
    problems = check_bag(run_dir / "bag")
    lines += ["", f"Lost in the bag: {'; '.join(problems) or 'nothing'}", "",
              f"Error lines in the node logs: {len(errors)}", *[f"    {e}" for e in errors[:50]]]
    (run_dir / "soak.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return int(bool(code or problems or errors))


if __name__ == "__main__":
    sys.exit(main())
