"""The launch file and `make run` start the same nodes with the same parameters."""
import sys
import types

import pytest
import yaml

from conftest import ROOT
from guidewire.twin import DigitalTwin
from guidewire.twin.sources import SimulatedFluoroscopy
from guidewire.twin.config import load_bench_config
from guidewire_ros.pipeline_config import DISCOVERY_RANGE_DEFAULT, DISCOVERY_RANGE_VARIABLE, FASTDDS_PROFILE_VARIABLE, \
    load_pipeline, middleware_environment
from guidewire_ros.run_pipeline import node_command, render_fluoroscopy_anatomy


def load_launch_file_with_recording_launch_ros(monkeypatch, name="pipeline"):
    """Execute launch/pipeline.launch.py with launch/launch_ros stand-ins that record Node(...)."""
    recorded = []

    class Node:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            recorded.append(kwargs)

    class OpaqueFunction:
        def __init__(self, function):
            self.function = function

    class DeclareLaunchArgument:
        def __init__(self, name, default_value, description):
            self.name, self.default_value, self.description = name, default_value, description

    class SetEnvironmentVariable:
        def __init__(self, name, value):
            self.name, self.value = name, value

    class RegisterEventHandler:
        def __init__(self, event_handler):
            self.event_handler = event_handler

    class OnProcessIO:
        def __init__(self, target_action, on_stdout=None, on_stderr=None):
            self.target_action, self.on_stdout, self.on_stderr = target_action, on_stdout, on_stderr

    class TimerAction:
        def __init__(self, period, actions):
            self.period, self.actions = period, actions

    launch = types.ModuleType("launch")
    launch.LaunchDescription = list
    launch_actions = types.ModuleType("launch.actions")
    launch_actions.OpaqueFunction = OpaqueFunction
    launch_actions.DeclareLaunchArgument = DeclareLaunchArgument
    launch_actions.SetEnvironmentVariable = SetEnvironmentVariable
    launch_actions.RegisterEventHandler = RegisterEventHandler
    launch_actions.TimerAction = TimerAction
    launch_event_handlers = types.ModuleType("launch.event_handlers")
    launch_event_handlers.OnProcessIO = OnProcessIO
    launch_ros = types.ModuleType("launch_ros")
    launch_ros_actions = types.ModuleType("launch_ros.actions")
    launch_ros_actions.Node = Node
    for module_name, module in {"launch": launch, "launch.actions": launch_actions, "launch_ros": launch_ros,
                                "launch_ros.actions": launch_ros_actions,
                                "launch.event_handlers": launch_event_handlers}.items():
        monkeypatch.setitem(sys.modules, module_name, module)
    namespace = {}
    exec(compile((ROOT / "launch" / f"{name}.launch.py").read_text(), f"{name}.launch.py", "exec"), namespace)
    return namespace["generate_launch_description"], recorded


@pytest.mark.parametrize("arguments", [{}, {"magnetometer_driver.rate_hz": "400", "stereo_capture.loop": "true"}])
def test_launch_file_and_runner_agree(monkeypatch, arguments):
    generate, recorded = load_launch_file_with_recording_launch_ros(monkeypatch)
    description = generate()
    context = types.SimpleNamespace(launch_configurations=dict(arguments))
    description[-1].function(context)
    runner = load_pipeline(overrides=arguments)
    assert [(n["name"], n["executable"], n["parameters"][0]) for n in recorded] == \
        [(s.name, s.executable, s.parameters) for s in runner]
    assert all(n["package"] == "guidewire_perception" for n in recorded)
    assert all(n["respawn"] and n["respawn_delay"] > 0 for n in recorded)  # a node that dies comes back
    if arguments:
        driver = next(s for s in runner if s.name == "magnetometer_driver")
        assert driver.parameters["rate_hz"] == 400.0 and isinstance(driver.parameters["rate_hz"], float)


def test_the_launch_file_adds_rviz_on_the_pipeline_config_when_asked(monkeypatch):
    generate, recorded = load_launch_file_with_recording_launch_ros(monkeypatch)
    description = generate()
    assert "rviz" in {action.name for action in description[:-1]}
    description[-1].function(types.SimpleNamespace(launch_configurations={"rviz": "true"}))
    rviz = [n for n in recorded if n["package"] == "rviz2"]
    assert len(rviz) == 1 and rviz[0]["arguments"][0] == "-d"
    config = ROOT / "rviz" / "pipeline.rviz"
    assert rviz[0]["arguments"][1] == str(config) and config.is_file()
    assert len(recorded) == len(load_pipeline()) + 1


def test_the_launch_file_registers_first_and_starts_the_live_nodes_once_the_registration_is_over(monkeypatch):
    from guidewire_ros.pipeline_config import REGISTRATION_WAIT_S, registration_first

    generate, recorded = load_launch_file_with_recording_launch_ros(monkeypatch)
    actions = generate()[-1].function(types.SimpleNamespace(launch_configurations={}))
    specs = load_pipeline()
    first = [s.name for s in registration_first(specs)]
    assert {"ct_registration", "xray_ap_capture", "xray_lateral_capture", "bench_frames", "recorder"} <= set(first)
    assert len(recorded) == len(specs)
    started_at_once = [a.kwargs["name"] for a in actions if hasattr(a, "kwargs")]
    assert started_at_once == first  # the live nodes wait
    handler = next(a for a in actions if hasattr(a, "event_handler")).event_handler
    timer = next(a for a in actions if hasattr(a, "period"))
    assert handler.target_action.kwargs["name"] == "ct_registration" and timer.period == REGISTRATION_WAIT_S

    class Output:
        def __init__(self, text):
            self.text = text.encode()
    assert handler.on_stderr(Output("[INFO] [ct_registration]: registering the CT to xray_ap, xray_lateral")) is None
    live = handler.on_stderr(Output("[INFO] [ct_registration]: registration: converged (19.2 s)"))
    assert [n.kwargs["name"] for n in live] == [s.name for s in specs if s.name not in first]
    # Once only: a second registration (a moved C-arm), or the timer, starts nothing again.
    assert handler.on_stdout(Output("[ERROR] [ct_registration]: registration failed: blank view")) is None
    assert timer.actions[0].function(None) is None


@pytest.mark.parametrize("name, arguments, only, overrides", [
    ("magnetometer", {"backend": "serial", "rate_hz": "400", "namespace": "bench1"}, ["magnetometer_driver"],
     {"magnetometer_driver.backend": "serial", "magnetometer_driver.rate_hz": "400"}),
    ("cameras", {"stereo_rate_hz": "15"}, ["stereo_capture", "fluoro_capture"], {"stereo_capture.rate_hz": "15"}),
    ("recorder", {"storage": "sqlite3"}, ["recorder"], {"recorder.storage": "sqlite3"}),
])
def test_sensor_launch_files_and_runner_agree(monkeypatch, name, arguments, only, overrides):
    generate, recorded = load_launch_file_with_recording_launch_ros(monkeypatch, name)
    description = generate()
    declared = {action.name for action in description[:-1]}
    assert set(arguments) <= declared
    description[-1].function(types.SimpleNamespace(launch_configurations=dict(arguments)))
    runner = load_pipeline(overrides=overrides, only=only, namespace=arguments.get("namespace", ""))
    assert [(n["name"], n["executable"], n["namespace"], n["parameters"][0]) for n in recorded] == \
        [(s.name, s.executable, s.namespace, s.parameters) for s in runner]
    assert [n["name"] for n in recorded] == only


def test_runner_starts_each_node_under_its_configured_name(tmp_path):
    for spec in load_pipeline():
        command = node_command(spec, tmp_path / "p.yaml")
        assert command[1:3] == ["-m", f"guidewire_ros.{spec.executable}"]
        assert f"__node:={spec.name}" in command


def test_runner_renders_the_c_arm_anatomy_the_capture_node_then_finds_cached(tmp_path):
    bench = tmp_path / "bench.yaml"
    bench.write_text(yaml.safe_dump({"bench": {"fluoroscopy": {
        "detector_pixels": 64, "pixel_spacing": 0.0032, "cache_dir": str(tmp_path / "drr")}}}))
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump({"nodes": {
        "fluoro_capture": {"executable": "camera_capture", "parameters": {"source": "sim_xray",
                                                                          "bench_config": str(bench)}},
        "stereo_capture": {"executable": "camera_capture", "parameters": {"source": "sim_stereo",
                                                                          "bench_config": str(bench)}}}}))
    render_fluoroscopy_anatomy(load_pipeline(pipeline))
    rendered = list((tmp_path / "drr").glob("*.npz"))
    assert len(rendered) == 1, "one C-arm, one anatomy render (the stereo cameras need none)"
    written = rendered[0].stat().st_mtime_ns
    frame = SimulatedFluoroscopy(DigitalTwin(load_bench_config(bench))).grab(0.0)["xray"]
    assert frame.shape == (64, 64)
    assert list((tmp_path / "drr").glob("*.npz")) == rendered and rendered[0].stat().st_mtime_ns == written


def test_overrides_take_the_configured_type_or_yamls_when_the_config_has_none(tmp_path):
    config = tmp_path / "pipeline.yaml"
    config.write_text("nodes:\n  segmentation:\n    executable: segmentation_node\n"
                      "    parameters: {window: 512, backend: torch}\n")
    overrides = {"segmentation.window": "256", "segmentation.backend": "onnx", "segmentation.threads": "1",
                 "segmentation.publish_overlay": "false", "segmentation.image_topic": "xray/image_raw"}
    parameters = load_pipeline(config, overrides)[0].parameters
    assert parameters == {"window": 256, "backend": "onnx", "threads": 1, "publish_overlay": False,
                          "image_topic": "xray/image_raw"}


def test_every_executable_is_installed_by_cmake():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    for spec in load_pipeline():
        assert f"scripts/{spec.executable}" in cmake
        assert (ROOT / "scripts" / spec.executable).is_file()


def test_unknown_node_key_is_named(tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text("nodes:\n  recorder:\n    paramters: {}\n")
    with pytest.raises(ValueError, match="unknown key 'paramters'"):
        load_pipeline(config)


@pytest.mark.parametrize("name", ["pipeline", "magnetometer", "cameras", "recorder"])
def test_launch_files_and_runner_give_nodes_the_same_fastdds_profile(monkeypatch, name):
    import xml.etree.ElementTree as ElementTree

    monkeypatch.delenv(FASTDDS_PROFILE_VARIABLE, raising=False)
    generate, _ = load_launch_file_with_recording_launch_ros(monkeypatch, name)
    launched = {a.name: a.value for a in generate() if type(a).__name__ == "SetEnvironmentVariable"}
    profile = ROOT / "config" / "fastdds_large_data.xml"
    assert launched == middleware_environment() == {FASTDDS_PROFILE_VARIABLE: str(profile)}
    namespace = {"dds": "http://www.eprosima.com"}
    tree = ElementTree.parse(profile)
    participant = tree.find(".//dds:participant[@is_default_profile='true']", namespace)
    assert participant.find(".//dds:useBuiltinTransports", namespace).text == "false"
    used = [t.text for t in participant.findall(".//dds:userTransports/dds:transport_id", namespace)]
    shared_memory = next(d for d in tree.findall(".//dds:transport_descriptor", namespace)
                         if d.find("dds:type", namespace).text == "SHM")
    assert shared_memory.find("dds:transport_id", namespace).text in used
    # A 2048x1536 rgb8 image goes in one piece, and fits the segment.
    largest_image = 2048 * 1536 * 3
    message_size = int(shared_memory.find("dds:maxMessageSize", namespace).text)
    assert largest_image < message_size <= int(shared_memory.find("dds:segment_size", namespace).text)


def test_a_fastdds_profile_the_user_chose_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(FASTDDS_PROFILE_VARIABLE, str(tmp_path / "mine.xml"))
    assert middleware_environment() == {}
    config = tmp_path / "p.yaml"
    config.write_text("fastdds_profile: missing.xml\nnodes: {}\n")
    monkeypatch.delenv(FASTDDS_PROFILE_VARIABLE)
    with pytest.raises(ValueError, match="fastdds_profile missing.xml not found"):
        middleware_environment(config)


def test_the_shell_environment_exports_the_nodes_discovery_default():
    # scripts/env.sh mirrors localhost_discovery_default for commands that are not our nodes (ros2 CLI).
    line = f"export {DISCOVERY_RANGE_VARIABLE}=${{{DISCOVERY_RANGE_VARIABLE}:-{DISCOVERY_RANGE_DEFAULT}}}"
    assert line in (ROOT / "scripts" / "env.sh").read_text().splitlines()


def test_runner_respawns_a_node_that_dies_and_says_so(tmp_path, monkeypatch):
    import time

    from guidewire_ros import run_pipeline

    monkeypatch.setattr(run_pipeline, "command_with_parameters",
                        lambda spec, folder: [sys.executable, "-c", "import sys; print('dying'); sys.exit(3)"])
    reported = []
    monitor = types.SimpleNamespace(report_respawn=lambda name, text: reported.append((name, text)))
    spec = next(s for s in load_pipeline() if s.name == "recorder")
    supervisor = run_pipeline.Supervisor([spec], tmp_path, tmp_path, monitor, max_respawns=2)
    given_up = []
    deadline = time.monotonic() + 30
    while not given_up and time.monotonic() < deadline:
        given_up = supervisor.check()
        time.sleep(0.05)
    assert given_up == ["recorder"]
    assert [name for name, _ in reported] == ["recorder", "recorder"]
    assert "exited with code 3" in reported[0][1] and "respawned (1 of 2)" in reported[0][1]
    assert (tmp_path / "recorder.log").read_text().count("dying") == 3  # the first start and two respawns


def test_runner_stops_waiting_for_a_registration_that_refused_its_ct(tmp_path):
    """A registration node that cannot use its CT gives no result: the runner reads its refusal in the
    node's log and goes on at once, rather than waiting out --ready-timeout (300 s)."""
    import time

    from guidewire_ros import run_pipeline

    specs = load_pipeline()
    registration = next(s for s in specs if s.executable == "ct_registration")
    monitor = types.SimpleNamespace(pending=lambda: [registration.name])
    supervisor = types.SimpleNamespace(check=lambda: [])
    assert run_pipeline.registrations_refused(specs, tmp_path) == {}  # no log yet

    (tmp_path / f"{registration.name}.log").write_text(
        "[INFO] [ct_registration]: registering the CT to xray_ap, xray_lateral\n"
        "[ERROR] [ct_registration]: CT cannot be used: file not found: /no/ct.nii.gz\n")
    refused = run_pipeline.registrations_refused(specs, tmp_path)
    assert refused == {registration.name: "CT cannot be used: file not found: /no/ct.nii.gz"}
    began = time.monotonic()
    ready = run_pipeline.wait_until_ready(monitor, supervisor, 60.0, [registration.name],
                                          given_up=lambda: "; ".join(refused.values()))
    assert not ready and time.monotonic() - began < 5.0


def test_runner_stops_before_starting_anything_when_the_segmentation_weights_are_corrupt(tmp_path):
    from guidewire_ros.run_pipeline import ensure_compiled_segmentation

    corrupt = tmp_path / "weights.pt"
    corrupt.write_bytes(b"not a checkpoint")
    specs = load_pipeline(overrides={"segmentation.weights": str(corrupt), "segmentation.backend": "torch"},
                          only=["segmentation"])
    with pytest.raises(SystemExit, match=f"segmentation: cannot load its weights .*{corrupt}"):
        ensure_compiled_segmentation(specs)
