"""Run the pipeline from config/pipeline.yaml without launch_ros: one process per
node, the same nodes and parameters the launch file starts, for a fixed time,
then a summary of what was recorded.

    make run                          # 20 s on the simulated bench, bag under out/
    make run ARGS="--duration 60 magnetometer_driver.rate_hz:=400"
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from guidewire.bag import bag_topics, read_bag
from guidewire_ros.pipeline_config import NodeSpec, load_pipeline, localhost_discovery_default, middleware_environment


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


def start_nodes(specs: list[NodeSpec], workdir: Path, log_dir: Path) -> list[tuple[NodeSpec, subprocess.Popen]]:
    processes = []
    for spec in specs:
        log = open(log_dir / f"{spec.name}.log", "w")
        processes.append((spec, subprocess.Popen(command_with_parameters(spec, workdir), stdout=log,
                                                 stderr=subprocess.STDOUT)))
    return processes


def ensure_compiled_segmentation(specs: list[NodeSpec]) -> None:
    """Build a segmentation node's compiled model before the nodes start, the first time on a
    machine (a minute or two): the node would build it in the background, and a short run
    would end first, every time."""
    for spec in specs:
        parameters = spec.parameters
        if spec.executable != "segmentation_node" or parameters.get("backend") != "compiled":
            continue
        from guidewire.segmentation.backends import ensure_compiled
        from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS, WeightsError

        configured = {key: parameters[key] for key in ("window", "precision", "threads") if key in parameters}
        print(f"{spec.name}: checking for, or building, its compiled model", flush=True)
        try:
            ensure_compiled(parameters.get("weights") or DEFAULT_WEIGHTS, **configured)
        except (WeightsError, RuntimeError, ValueError) as error:  # the node reports it and runs eagerly
            print(f"{spec.name}: no compiled model, it will run eager PyTorch: {error}", flush=True)


def render_fluoroscopy_anatomy(specs: list[NodeSpec]) -> None:
    """Render each simulated C-arm's anatomy DRR into the cache before the nodes start, the first
    time on a machine (about a minute at 512 px here): the capture node would render it at its
    first frame, and a short run would end before any X-ray frame, leaving nothing to segment."""
    for spec in specs:
        parameters = spec.parameters
        if spec.executable != "camera_capture" or parameters.get("source") != "sim_xray":
            continue
        from guidewire.twin.fluoroscopy import FluoroscopyRenderer
        from guidewire.twin.config import ConfigError, load_bench_config

        print(f"{spec.name}: checking for, or rendering, the simulated C-arm's anatomy", flush=True)
        try:
            config = load_bench_config(parameters.get("bench_config") or None)
            FluoroscopyRenderer(config.fluoroscopy, config.seed)  # renders the anatomy into the cache
        except ConfigError as error:  # the node reports it
            print(f"{spec.name}: cannot render the anatomy: {error}", flush=True)


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
    parser.add_argument("overrides", nargs="*", help="node.parameter:=value, as for ros2 launch")
    args = parser.parse_args(argv)
    overrides = dict(item.split(":=", 1) for item in args.overrides)
    run_dir = Path(args.out) / time.strftime("pipeline_%Y%m%d_%H%M%S")
    run_dir.mkdir(parents=True)
    bag = run_dir / "bag"
    overrides.setdefault("recorder.output", str(bag))
    specs = load_pipeline(args.config, overrides, only=args.only, namespace=args.namespace)
    localhost_discovery_default()
    os.environ.update(middleware_environment(args.config))
    ensure_compiled_segmentation(specs)
    render_fluoroscopy_anatomy(specs)
    print(f"starting {', '.join(s.name for s in specs)} for {args.duration:g} s; logs in {run_dir}", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        processes = start_nodes(specs, Path(workdir), run_dir)
        try:
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline:
                failed = [s.name for s, p in processes if p.poll() is not None]
                if failed:
                    print(f"node(s) exited early: {', '.join(failed)}; see their logs in {run_dir}")
                    return 1
                time.sleep(0.2)
        finally:
            stop_nodes(processes)
    if not any(s.executable == "recorder" for s in specs):
        return 0
    counts = Counter({topic: 0 for topic in bag_topics(bag)})
    counts.update(topic for topic, *_ in read_bag(bag))
    print(f"recorded {sum(counts.values())} messages in {bag}:")
    for topic, count in sorted(counts.items()):
        note = "" if count else "  nothing arrived: see its node's log"
        print(f"  {topic:40s} {count:7d}  ({count / args.duration:.1f} Hz){note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
