"""The report of a pipeline run on the simulated bench, from its bag alone: per-topic rates and latencies,
each node's accuracy against the twin's ground truth, and a PNG summary.

    python -m guidewire.run_report BAG --out DIR [--bench-config FILE] [--start-ns NS] [--end-ns NS]

writes DIR/report.md, DIR/report.json and DIR/summary.png. Latency is the recorder's receive time minus
the message's header stamp (the time of the data it describes), so a segmentation's latency covers capture,
transport and inference; the recorder takes messages after a pause of up to its take_period_s (20 ms), which
the latency includes. `--start-ns` and `--end-ns` (the runner passes them) keep the run's window: from
the moment every node was ready to the moment the runner began stopping them. A CT registration is a
one-off (the runner registers before the live pipeline starts): its results count whenever they arrived.
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from guidewire.bag import read_bag, suite_typestore
from guidewire.geometry import matrix_from_pose
from guidewire.imaging import from_image_fields
from guidewire.robot import INSERTION, ROLL, robot_joint_state

SEGMENTATION_TYPE = "guidewire_perception/msg/GuidewireSegmentation"
SHAPE_TYPE = "guidewire_perception/msg/GuidewireShape"
REGISTRATION_TYPE = "guidewire_perception/msg/RegistrationResult"
ARRAY_TYPE = "guidewire_perception/msg/MagnetometerArray"
JOINT_TYPE = "sensor_msgs/msg/JointState"
IMAGE_TYPE = "sensor_msgs/msg/Image"
DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
LEVEL_NAMES = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_of(message) -> np.ndarray:
    return from_image_fields(message.height, message.width, message.encoding, message.is_bigendian,
                             message.step, np.asarray(message.data, np.uint8))


def percentiles(values, points=(50, 95)) -> list[float]:
    finite = np.asarray([v for v in values if math.isfinite(v)], float)
    return [float(np.percentile(finite, p)) if finite.size else float("nan") for p in points]


@dataclass
class TopicRecord:
    msgtype: str
    receive_ns: list = field(default_factory=list)
    latency_ms: list = field(default_factory=list)


@dataclass
class RunRecord:
    """Everything the report needs, gathered in one pass over the bag."""
    topics: dict = field(default_factory=dict)
    segmentation: list = field(default_factory=list)  # (stamp_ns, dice %, tip px, confidence)
    shapes: list = field(default_factory=list)  # (stamp_ns, rmse, mae_z, hausdorff, tip: mm, length m)
    ct_shapes: list = field(default_factory=list)  # the same, of the wire published in the CT's frame
    registration: list = field(default_factory=list)  # (stamp_ns, rotation deg, translation mm, converged, receive ns)
    diagnostics: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))  # name -> per level
    snapshots: list = field(default_factory=list)  # (stamp_ns, estimate (N,3), truth (M,3)) for the PNG
    last_overlay: np.ndarray | None = None
    last_field: tuple | None = None  # (positions (N,2), field (N,3))
    start_ns: int = 0  # the first receive time counted
    end_ns: int = 0
    clock_ns: int = 0  # when the run's clock started (the runner's start_ns)


def read_run(bag: str | Path, truth, start_ns: int = 0, end_ns: int | None = None, snapshots: int = 4) -> RunRecord:
    """One pass over the bag: stamps and latencies of every topic, and the scores of the nodes' outputs."""
    typestore = suite_typestore()
    record = RunRecord(clock_ns=start_ns)
    shape_messages = []
    for topic, msgtype, log_ns, data in read_bag(bag):
        if msgtype == JOINT_TYPE:  # the truth follows the robot from its first state on, warm-up included
            joints_message = typestore.deserialize_cdr(data, msgtype)
            state = robot_joint_state(joints_message, INSERTION, ROLL)
            if state is not None:
                truth.add_robot_state(stamp_ns(joints_message.header), state)
        if msgtype == REGISTRATION_TYPE:  # a one-off: scored whenever it arrived, before the clock too
            record.registration.append((*score_registration(truth, typestore.deserialize_cdr(data, msgtype)), log_ns))
        if log_ns < start_ns or (end_ns is not None and log_ns > end_ns):
            continue
        entry = record.topics.setdefault(topic, TopicRecord(msgtype))
        entry.receive_ns.append(log_ns)
        record.start_ns = record.start_ns or max(start_ns, log_ns)
        record.end_ns = max(record.end_ns, log_ns)
        message = typestore.deserialize_cdr(data, msgtype)
        header = getattr(message, "header", None)
        if header is not None and stamp_ns(header) > 0:
            entry.latency_ms.append((log_ns - stamp_ns(header)) * 1e-6)
        if msgtype == SEGMENTATION_TYPE:
            record.segmentation.append(_score_segmentation(truth, message))
        elif msgtype == SHAPE_TYPE:
            shape_messages.append(message)
        elif msgtype == DIAGNOSTICS_TYPE:
            for status in message.status:
                record.diagnostics[status.name][min(int(status.level), 3)] += 1
        elif msgtype == ARRAY_TYPE:
            record.last_field = (np.array([[p.x, p.y] for p in message.sensor_positions]),
                                 np.array([[v.x, v.y, v.z] for v in message.magnetic_field]))
        elif msgtype == IMAGE_TYPE and topic.endswith("overlay"):
            record.last_overlay = image_of(message)
    # Shapes after the pass: the robot states recorded after a shape still place its truth.
    in_bench = [i for i, message in enumerate(shape_messages) if message.header.frame_id != truth.ct_frame]
    chosen = {in_bench[i] for i in np.linspace(0, len(in_bench) - 1, min(snapshots, len(in_bench))).round().astype(int)}
    for index, message in enumerate(shape_messages):
        points = np.array([[p.x, p.y, p.z] for p in message.centreline])
        stamp = stamp_ns(message.header)
        if len(points) < 2:
            continue
        try:
            errors = truth.shape(stamp, points, message.header.frame_id)
        except ValueError:  # a frame the bench has no truth in
            continue
        in_ct = message.header.frame_id == truth.ct_frame
        (record.ct_shapes if in_ct else record.shapes).append(
            (stamp, 1e3 * errors.rmse, 1e3 * errors.mae_z, 1e3 * errors.hausdorff, 1e3 * errors.tip,
             float(message.length)))
        if index in chosen and not in_ct:
            record.snapshots.append((stamp, points, truth.wire(stamp).centreline))
    return record


def _score_segmentation(truth, message) -> tuple:
    mask = image_of(message.mask) > 0
    tip = np.array([message.tip_u, message.tip_v]) if message.tip_found else None
    try:
        score = truth.segmentation(stamp_ns(message.header), mask, tip)
        return stamp_ns(message.header), score.dice, score.tip_px, float(message.confidence)
    except ValueError:  # a view other than the simulated C-arm's: no truth to score against
        return stamp_ns(message.header), float("nan"), float("nan"), float(message.confidence)


def score_registration(truth, message) -> tuple:
    """(stamp, rotation error deg, translation error of the CT frame's origin mm, converged) of a
    RegistrationResult against the bench's CT pose."""
    try:
        estimate, true_pose = matrix_from_pose(message.ct_to_world), truth.ct_to_bench
    except ValueError:  # a result without a pose (not converged)
        return stamp_ns(message.header), float("nan"), float("nan"), bool(message.converged)
    relative = estimate[:3, :3] @ true_pose[:3, :3].T
    rotation = math.degrees(math.acos(np.clip((np.trace(relative) - 1) / 2, -1.0, 1.0)))
    translation = 1e3 * float(np.linalg.norm(estimate[:3, 3] - true_pose[:3, 3]))
    return stamp_ns(message.header), rotation, translation, bool(message.converged)


def summarise(record: RunRecord, publishers: dict | None = None) -> dict:
    """The report's numbers as plain data (what report.json holds)."""
    span = max((record.end_ns - record.start_ns) * 1e-9, 1e-9)
    topics = {}
    for topic, entry in sorted(record.topics.items()):
        p50, p95 = percentiles(entry.latency_ms)
        topics[topic] = {"type": entry.msgtype, "publishers": (publishers or {}).get(topic, []),
                         "count": len(entry.receive_ns), "rate_hz": len(entry.receive_ns) / span,
                         "latency_ms_p50": p50, "latency_ms_p95": p95}

    def stats(values):
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return {"n": 0}
        return {"n": len(finite), "mean": float(np.mean(finite)), "median": float(np.median(finite)),
                "p95": float(np.percentile(finite, 95))}

    accuracy = {}
    if record.segmentation:
        columns = list(zip(*record.segmentation))
        accuracy["segmentation"] = {"dice_percent": stats(columns[1]), "tip_error_px": stats(columns[2]),
                                    "confidence": stats(columns[3]), "frames": len(record.segmentation)}
    if record.shapes:
        columns = list(zip(*record.shapes))
        accuracy["reconstruction"] = {"rmse_mm": stats(columns[1]), "mae_z_mm": stats(columns[2]),
                                      "hausdorff_mm": stats(columns[3]), "tip_error_mm": stats(columns[4]),
                                      "shapes": len(record.shapes)}
    if record.ct_shapes:  # where the wire is in the anatomy: the reconstruction's and the registration's error
        columns = list(zip(*record.ct_shapes))
        accuracy["reconstruction in the CT frame"] = {"rmse_mm": stats(columns[1]), "tip_error_mm": stats(columns[4]),
                                                     "shapes": len(record.ct_shapes)}
    if record.registration:
        columns = list(zip(*record.registration))
        accuracy["registration"] = {"rotation_error_deg": stats(columns[1]),
                                    "ct_origin_error_mm": stats(columns[2]),
                                    "converged": int(sum(columns[3])), "results": len(record.registration),
                                    # negative: before the clock started (registered first)
                                    "received_s": [round((t - (record.clock_ns or record.start_ns)) * 1e-9, 1)
                                                   for t in columns[4]]}
    diagnostics = {name: {LEVEL_NAMES[level]: count for level, count in enumerate(counts) if count}
                   for name, counts in sorted(record.diagnostics.items())}
    return {"duration_s": span, "topics": topics, "accuracy": accuracy, "diagnostics": diagnostics}


def _fmt(value, digits=2) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def markdown(summary: dict, command: str) -> str:
    lines = ["# Pipeline run on the simulated bench", "",
             f"Command: `{command}`. Measured from the run's bag over {summary['duration_s']:.1f} s "
             "(from the moment every node was ready, when the runner passes it).",
             "", "## Topics", "",
             "| topic | publisher | messages | rate (Hz) | latency p50 (ms) | latency p95 (ms) |",
             "|---|---|---|---|---|---|"]
    for topic, row in summary["topics"].items():
        lines.append(f"| {topic} | {', '.join(row['publishers']) or '-'} | {row['count']} | {row['rate_hz']:.2f} | "
                     f"{_fmt(row['latency_ms_p50'], 1)} | {_fmt(row['latency_ms_p95'], 1)} |")
    lines += ["", "## Accuracy against the bench's ground truth", "",
              "| node output | metric | n | mean | median | p95 |", "|---|---|---|---|---|---|"]
    for node, metrics in summary["accuracy"].items():
        for metric, values in metrics.items():
            if isinstance(values, dict):
                lines.append(f"| {node} | {metric} | {values['n']} | {_fmt(values.get('mean'))} | "
                             f"{_fmt(values.get('median'))} | {_fmt(values.get('p95'))} |")
    if not summary["accuracy"]:
        lines.append("| (no node output to score) | | | | | |")
    if "registration" in summary["accuracy"]:
        registration = summary["accuracy"]["registration"]
        lines += ["", f"CT registration: {registration['converged']} of {registration['results']} results converged, "
                  f"received at {', '.join(f'{t:+.1f}' for t in registration['received_s'])} s from the clock's "
                  "start (a one-off, scored whenever it arrived; before the clock when registered first)."]
    lines += ["", "## Diagnostics (statuses received, by level)", ""]
    lines += [f"- {name}: " + ", ".join(f"{level} {count}" for level, count in levels.items())
              for name, levels in summary["diagnostics"].items()] or ["- none received"]
    return "\n".join(lines) + "\n"


def plot(record: RunRecord, path: Path) -> None:
    """Wire vs truth in 3D (a few moments of the run), the last X-ray overlay, the last field frame and
    the errors over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(13, 10))
    axes3d = figure.add_subplot(2, 2, 1, projection="3d")
    colours = plt.cm.viridis(np.linspace(0, 1, max(len(record.snapshots), 1)))
    for (stamp, estimate, true_line), colour in zip(record.snapshots, colours):
        t = (stamp - record.start_ns) * 1e-9
        axes3d.plot(*(1e3 * estimate.T), color=colour, lw=2, label=f"estimate t={t:.1f} s")
        axes3d.plot(*(1e3 * true_line.T), color=colour, lw=1, ls="--")
    axes3d.set(title="wire (solid) vs ground truth (dashed), mm", xlabel="x", ylabel="y", zlabel="z")
    if record.snapshots:
        axes3d.legend(fontsize=7)
    overlay = figure.add_subplot(2, 2, 2)
    if record.last_overlay is not None:
        image = record.last_overlay
        overlay.imshow(image[..., ::-1] if image.ndim == 3 else image, cmap="gray")
    overlay.set(title="last X-ray with the segmentation overlay")
    overlay.axis("off")
    field_axes = figure.add_subplot(2, 2, 3)
    if record.last_field is not None:
        positions, field_t = record.last_field
        scatter = field_axes.scatter(1e3 * positions[:, 0], 1e3 * positions[:, 1], c=1e6 * field_t[:, 2],
                                     cmap="coolwarm", s=300)
        field_axes.quiver(1e3 * positions[:, 0], 1e3 * positions[:, 1], field_t[:, 0], field_t[:, 1])
        figure.colorbar(scatter, ax=field_axes, label="Bz (uT)")
    field_axes.set(title="last array frame: in-plane field (arrows), Bz (colour)", xlabel="x (mm)",
                   ylabel="y (mm)", aspect="equal")
    errors = figure.add_subplot(2, 2, 4)
    origin = record.start_ns
    if record.shapes:
        times = [(s[0] - origin) * 1e-9 for s in record.shapes]
        errors.plot(times, [s[1] for s in record.shapes], "o-", label="3D RMSE (mm)")
        errors.plot(times, [s[4] for s in record.shapes], "s-", label="tip error (mm)")
    errors.set(xlabel="time (s)", ylabel="mm", title="errors over time")
    if record.segmentation:
        dice_axes = errors.twinx()
        dice_axes.plot([(s[0] - origin) * 1e-9 for s in record.segmentation], [s[1] for s in record.segmentation],
                       ".", color="tab:green", label="X-ray Dice (%)")
        dice_axes.set(ylabel="Dice (%)", ylim=(0, 100))
        dice_axes.legend(loc="upper right", fontsize=8)
    errors.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def write_report(bag: str | Path, out_dir: str | Path, command: str, bench_config: str | None = None,
                 start_ns: int = 0, end_ns: int | None = None, publishers: dict | None = None) -> dict:
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.scoring import BenchTruth

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = read_run(bag, BenchTruth(load_bench_config(bench_config or None)), start_ns, end_ns)
    summary = summarise(record, publishers)
    summary["command"] = command
    (out_dir / "report.json").write_text(json.dumps(summary, indent=1, allow_nan=True))
    (out_dir / "report.md").write_text(markdown(summary, command))
    plot(record, out_dir / "summary.png")
    return summary


def main(argv=None) -> int:
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bag")
    parser.add_argument("--out", required=True, help="folder for report.md, report.json, summary.png")
    parser.add_argument("--bench-config", default=None, help="the bench configuration of the run (default bench)")
    parser.add_argument("--start-ns", type=int, default=0, help="leave out messages received before this time")
    parser.add_argument("--end-ns", type=int, default=None, help="and after this one")
    args = parser.parse_args(argv)
    write_report(args.bag, args.out, " ".join(["python -m guidewire.run_report", *sys.argv[1:]]),
                 args.bench_config, args.start_ns, args.end_ns)
    print(f"wrote {args.out}/report.md, report.json, summary.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
