"""The pipeline's configuration (config/pipeline.yaml: which nodes, with which parameters,
and the middleware environment they get), read by both the ROS launch files (on a full
ROS 2 install) and the project's own runner (run_pipeline, here, where launch_ros cannot
be installed), so the two can never drift apart. (Not ROS 2 composition: every node runs
in a process of its own.)"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "config" / "pipeline.yaml"
FASTDDS_PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
DISCOVERY_RANGE_VARIABLE, DISCOVERY_RANGE_DEFAULT = "ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST"
EXECUTABLES = {"magnetometer_driver", "camera_capture", "recorder", "replay", "segmentation_node",
               "reconstruction_node", "ct_registration", "catheter_robot", "bench_frames",
               "slicer_bridge", "foxglove_bridge"}


@dataclass(frozen=True)
class NodeSpec:
    name: str  # node name (also the ROS executable unless `executable` says otherwise)
    executable: str
    namespace: str = ""
    parameters: dict = field(default_factory=dict)


def pipeline_file() -> Path:
    if CONFIG.is_file():
        return CONFIG
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("guidewire_perception")) / "config" / "pipeline.yaml"


def typed_override(default, text: str):
    """A command-line/launch argument (a string) as the configured parameter's type; without a
    configured value (the YAML leaves it to the node's default), read as YAML, as ros2 launch does."""
    if default is None:
        return yaml.safe_load(text) if text.strip() else text
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got '{text}'")
        return text.lower() == "true"
    if isinstance(default, list):
        return text.split(",")
    return type(default)(text)


def load_pipeline(path: str | Path | None = None, overrides: dict | None = None,
                  only: list[str] | None = None, namespace: str = "") -> list[NodeSpec]:
    """Nodes of the pipeline with their parameters; `overrides` maps 'node.param' to a string value,
    `only` keeps the named nodes, `namespace` replaces every node's namespace when given."""
    file = Path(path) if path else pipeline_file()
    namespace_override = namespace
    data = yaml.safe_load(file.read_text()) or {}
    nodes = []
    for name, spec in (data.get("nodes") or {}).items():
        spec = dict(spec or {})
        if not spec.pop("enabled", True):
            continue
        executable = spec.pop("executable", name)
        if executable not in EXECUTABLES:
            raise ValueError(f"{file}: node '{name}' has unknown executable '{executable}'")
        namespace = spec.pop("namespace", "")
        parameters = dict(spec.pop("parameters", {}) or {})
        if spec:
            raise ValueError(f"{file}: node '{name}' has unknown key '{sorted(spec)[0]}'")
        for key, value in (overrides or {}).items():
            node, _, parameter = key.partition(".")
            if node == name:
                parameters[parameter] = typed_override(parameters.get(parameter), value)
        nodes.append(NodeSpec(name=name, executable=executable, namespace=namespace_override or namespace,
                              parameters=parameters))
    if only:
        unknown = set(only) - {n.name for n in nodes}
        if unknown:
            raise ValueError(f"{file}: no node named {', '.join(sorted(unknown))}")
        nodes = [n for n in nodes if n.name in only]
    return nodes


def localhost_discovery_default() -> None:
    """Keep DDS discovery on this host unless the user chose a range (shared lab machines). Every
    node's run(), the pipeline runner and the stream bench call it; scripts/env.sh exports the
    same default for other commands (ros2 CLI), and a test ties the two."""
    os.environ.setdefault(DISCOVERY_RANGE_VARIABLE, DISCOVERY_RANGE_DEFAULT)


def middleware_environment(path: str | Path | None = None) -> dict:
    """Environment variables every node's process gets: the Fast DDS profile the pipeline
    file names (resolved beside it), unless the user's environment already chose one."""
    file = Path(path) if path else pipeline_file()
    profile = (yaml.safe_load(file.read_text()) or {}).get("fastdds_profile")
    if not profile or os.environ.get(FASTDDS_PROFILE_VARIABLE):
        return {}
    resolved = (file.parent / profile).resolve()
    if not resolved.is_file():
        raise ValueError(f"{file}: fastdds_profile {profile} not found at {resolved}")
    return {FASTDDS_PROFILE_VARIABLE: str(resolved)}


def launch_arguments(context, short_names: dict) -> tuple[dict, str]:
    """Overrides and namespace from a launch context: 'node.param' arguments as they are, the
    launch file's short names (e.g. backend -> magnetometer_driver.backend) mapped, '' ignored."""
    configurations = context.launch_configurations
    overrides = {key: value for key, value in configurations.items() if "." in key}
    overrides.update({target: configurations[short] for short, target in short_names.items()
                      if configurations.get(short, "") != ""})
    return overrides, configurations.get("namespace", "")


def registration_first(specs: list[NodeSpec]) -> list[NodeSpec]:
    """The nodes to start before the live pipeline: the CT registration, the C-arm views it registers
    to, the static frames and the recorder (the clinical order: register from the two C-arm shots,
    then navigate). Empty without a registration node."""
    views = {view for s in specs if s.executable == "ct_registration"
             for view in s.parameters.get("views", ["xray_ap", "xray_lateral"])}
    if not views:
        return []
    from guidewire.twin.sources import fluoroscopy_camera_name

    def camera(spec: NodeSpec) -> str:
        return fluoroscopy_camera_name(spec.parameters.get("camera_name", "camera"), spec.parameters.get("view", ""))

    return [s for s in specs if s.executable in ("ct_registration", "bench_frames", "recorder")
            or (s.executable == "camera_capture" and camera(s) in views)]


# What ct_registration logs when its one-off registration is over, either way (converged, failed, or
# no usable CT): a launch starts the live pipeline on the first of these in its output.
REGISTRATION_OVER = ("registration: ", "registration failed: ", "CT cannot be used: ")
# And without any of them after this long (a registration that hangs must not hold the robot's perception back).
REGISTRATION_WAIT_S = 300.0


def launch_description(only: list[str] | None = None, short_arguments: dict | None = None, rviz_config: str = ""):
    """The LaunchDescription every launch file returns: the middleware environment, `namespace`
    plus the file's short arguments, and the nodes of config/pipeline.yaml (only those named)
    with their parameters; with `rviz_config` (a file of rviz/), an `rviz` argument that adds rviz2 on it."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch_ros.actions import Node

    short_arguments = short_arguments or {}

    def nodes_from_config(context):
        overrides, namespace = launch_arguments(context, short_arguments)
        specs = load_pipeline(overrides=overrides, only=only, namespace=namespace)
        nodes = {spec.name: Node(package="guidewire_perception", executable=spec.executable, name=spec.name,
                                 namespace=spec.namespace, parameters=[spec.parameters], output="screen",
                                 respawn=True, respawn_delay=2.0)  # as the runner does; launch logs each respawn
                 for spec in specs}
        first = registration_first(specs)
        actions = list(nodes.values()) if not first else \
            [nodes[s.name] for s in first] + live_after_registration(
                next(nodes[s.name] for s in first if s.executable == "ct_registration"),
                [nodes[s.name] for s in specs if s not in first])
        if rviz_config and context.launch_configurations.get("rviz", "false").lower() == "true":
            config = pipeline_file().parents[1] / "rviz" / rviz_config  # share/<package> or the checkout
            actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=namespace,
                                arguments=["-d", str(config)], output="screen"))
        return actions

    return LaunchDescription(
        [SetEnvironmentVariable(name, value) for name, value in middleware_environment().items()]
        + [DeclareLaunchArgument("namespace", default_value="", description="Namespace for every node")]
        + [DeclareLaunchArgument(short, default_value="", description=f"{target} ('' = config/pipeline.yaml)")
           for short, target in short_arguments.items()]
        + ([DeclareLaunchArgument("rviz", default_value="false", description=f"true: rviz2 with rviz/{rviz_config}")]
           if rviz_config else [])
        + [OpaqueFunction(function=nodes_from_config)])


def live_after_registration(registration_node, live_nodes: list) -> list:
    """Launch actions that start `live_nodes` once, when the registration node's output says its
    one-off registration is over (REGISTRATION_OVER) or after REGISTRATION_WAIT_S: make run's
    clinical order (register from the two C-arm shots, then navigate) under `ros2 launch`."""
    from launch.actions import OpaqueFunction, RegisterEventHandler, TimerAction
    from launch.event_handlers import OnProcessIO

    started = []

    def start_once(*_):
        if started:
            return None
        started.append(True)
        return live_nodes

    def on_output(event):
        text = event.text.decode(errors="replace") if isinstance(event.text, bytes) else str(event.text)
        return start_once() if any(marker in text for marker in REGISTRATION_OVER) else None

    return [RegisterEventHandler(OnProcessIO(target_action=registration_node, on_stdout=on_output,
                                             on_stderr=on_output)),  # rclpy logs to stderr by default
            TimerAction(period=REGISTRATION_WAIT_S, actions=[OpaqueFunction(function=start_once)])]
