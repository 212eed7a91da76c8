"""Soak run (issue 23): the whole pipeline with its recorder for 10 minutes (make run's runner), then

- memory: each node's resident set (VmRSS) at the start (every node up) and at the end, sampled
  every 10 s, with its growth; and each node's CPU over the same span (user + system time, % of a core);
- nothing lost: the driver's frame sequence numbers in the bag run without a gap; for the robot,
  the cameras, the segmentation and the reconstruction, the messages each said it published (its
  cumulative count on /diagnostics, also in the bag) between its first and last report are all in
  the bag;
- no error lines: every node log scanned for ERROR, FATAL, Traceback, Exception.

It needs the whole machine (the pipeline alone loads two cores): run it on a quiet one. `--busy N`
overloads it on purpose and the same way each time: N processes that only spin, at the nodes' own
priority, for the whole run (the machine's 1-minute load average is sampled with the memory).

    scripts/env.sh python bench/soak_pipeline.py --duration 600 --out out/soak
    scripts/env.sh python bench/soak_pipeline.py --duration 600 --busy 8 --out out/soak_busy
    scripts/env.sh python bench/soak_pipeline.py --duration 60 --out out/soak_old -- recorder.take_batch:=1

Arguments after `--` go to the runner (`node.parameter:=value`, as `make run ARGS=...`).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

FAULTS = re.compile(r"ERROR|FATAL|Traceback|Exception")


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def node_processes(runner_pid: int) -> dict[str, int]:
    """node name -> pid of every guidewire_ros node the runner started (its `-r __node:=NAME`): only
    its descendants, not other nodes running on the machine."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        names = [a[len(b"__node:="):].decode() for a in arguments if a.startswith(b"__node:=")]
        if not names or not any(a.startswith(b"guidewire_ros.") for a in arguments):
            continue
        ancestor = int(proc.name)
        while ancestor not in (None, 0, 1, runner_pid):
            ancestor = parent_pid(ancestor)
        if ancestor == runner_pid:
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


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample_memory(samples: dict, load: list, runner_pid: int, stop: threading.Event, period_s: float = 10.0) -> None:
    """Every period: each node's (time, RSS, CPU seconds) into samples[node], the machine's 1-minute load
    average into load."""
    while not stop.wait(period_s):
        now = time.monotonic()
        load.append(float(Path("/proc/loadavg").read_text().split()[0]))
        for name, pid in node_processes(runner_pid).items():
            value, cpu = rss_mb(pid), cpu_seconds(pid)
            if value is not None and cpu is not None:
                samples[name].append((now, value, cpu))


# node -> (its cumulative count on /diagnostics, the topic it counts); the driver is checked exactly by
# its frames' sequence numbers instead.
PUBLISHED_COUNTS = {
    "catheter_robot": ("published", "/robot/joint_states"),
    "stereo_capture": ("frames_published", "/camera_top/image_raw"),
    "fluoro_capture": ("frames_published", "/xray/image_raw"),
    "segmentation": ("frames_segmented", "/segmentation/result"),
    "reconstruction": ("published", "/guidewire/shape"),
}


def check_bag(bag: Path) -> tuple[list[str], list[str]]:
    """What the bag shows lost (one line each; empty: nothing), and each node's published-vs-recorded line.

    By publication time (the publishers' source stamps, which the recorder keeps): a node counts a message
    after publishing it, so every message counted in a report was published before that report; the
    messages of its topic published between its first and its last report must all be in the bag. (By the
    recorder's receive order instead, messages still queued behind a report read as lost: 6 of 31401
    joint states at 50 Hz in a quiet soak.)"""
    from guidewire.bag import bag_topics, suite_typestore, timed_messages

    typestore, types = suite_typestore(), bag_topics(bag)
    published_at, sequences, reports = defaultdict(list), [], defaultdict(list)
    for topic, publication_ns, data in timed_messages(bag):
        msgtype = types[topic]
        published_at[topic].append(publication_ns)
        if msgtype == "guidewire_perception/msg/MagnetometerArray":
            sequences.append(typestore.deserialize_cdr(bytes(data), msgtype).sequence)
        elif msgtype == "diagnostic_msgs/msg/DiagnosticArray":
            for status in typestore.deserialize_cdr(bytes(data), msgtype).status:
                node = status.name.split(":")[0].split("/")[0]
                key = PUBLISHED_COUNTS.get(node, (None, None))[0]
                values = {v.key: v.value for v in status.values}
                if key in values:
                    reports[node].append((int(values[key]), publication_ns))
    problems, lines = [], []
    steps = np.diff(sequences)
    missing = int((steps[steps > 1] - 1).sum()) if len(steps) else 0
    lines.append(f"magnetometer_driver: {len(sequences)} frames recorded, sequence {sequences[0] if sequences else '-'}"
                 f"..{sequences[-1] if sequences else '-'}, {missing} missing")
    if missing or np.any(steps < 1):
        problems.append(f"driver frames: {missing} missing from the sequence in {int((steps != 1).sum())} gaps")
    for node, (key, topic) in PUBLISHED_COUNTS.items():
        if len(reports[node]) < 2:
            problems.append(f"{node}: fewer than two reports with {key} in the bag")
            continue
        (count_first, first_ns), (count_last, last_ns) = min(reports[node], key=lambda r: r[1]), \
            max(reports[node], key=lambda r: r[1])
        stamps = np.asarray(published_at[topic])
        published, stored = count_last - count_first, int(((stamps > first_ns) & (stamps <= last_ns)).sum())
        lines.append(f"{node}: {published} published between its first and last report, {stored} of {topic} "
                     "recorded in between")
        if published - stored > 1:
            problems.append(f"{node}: {published - stored} of {published} {topic} messages not in the bag")
    return problems, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--out", default="out/soak")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes beside the pipeline (overload)")
    parser.add_argument("runner_arguments", nargs="*", help="after --: node.parameter:=value for the runner")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "guidewire_ros.run_pipeline", "--duration", str(args.duration), "--out", str(out),
               *args.runner_arguments]
    samples: dict[str, list] = defaultdict(list)
    load: list[float] = []
    stop = threading.Event()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = threading.Thread(target=sample_memory, args=(samples, load, runner.pid, stop), daemon=True)
        for line in runner.stdout:
            sys.stdout.write(line)
            if "every node is up" in line and not sampler.is_alive():
                sampler.start()
        code = runner.wait()
    finally:  # an interrupted soak leaves no spinning process behind
        stop.set()
        for process in busy:
            process.kill()
    run_dir = max(out.glob("pipeline_*"), key=lambda p: p.stat().st_mtime)
    lines = [f"# Soak run: `{' '.join(command)}` (runner exit {code})", "",
             f"Beside it: {args.busy} busy processes; 1-minute load average "
             + (f"{min(load):.1f}-{max(load):.1f} (median {np.median(load):.1f})" if load else "not sampled"), "",
             "| node | RSS start MB | RSS end MB | growth | CPU, % of a core |", "|---|---|---|---|---|"]
    for name, values in sorted(samples.items()):
        (t0, start, cpu0), (t1, end, cpu1) = values[0], values[-1]
        share = f"{100 * (cpu1 - cpu0) / (t1 - t0):.1f}" if t1 > t0 else "-"
        lines.append(f"| {name} | {start:.0f} | {end:.0f} | {end - start:+.0f} MB ({(end / start - 1) * 100:+.1f}%) | "
                     f"{share} |")
    errors = [f"{log.name}: {line.strip()}" for log in sorted(run_dir.glob("*.log"))
              for line in log.read_text(errors="replace").splitlines() if FAULTS.search(line)]
    problems, counts = check_bag(run_dir / "bag")
    lines += ["", "Published and recorded:", *[f"    {line}" for line in counts], "",
              f"Lost in the bag: {'; '.join(problems) or 'nothing'}", "",
              f"Error lines in the node logs: {len(errors)}", *[f"    {e}" for e in errors[:50]]]
    (run_dir / "soak.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return int(bool(code or problems or errors))


if __name__ == "__main__":
    sys.exit(main())
