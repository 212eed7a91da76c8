"""The simulated robot's control law, its commands file and the joint history the twin's wire follows."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from guidewire.contracts import ConfigError
from guidewire.frames import bench_frames
from guidewire.reconstruction.trust import TrustBounds, distrust_reasons, length_disagreement
from guidewire.robot import (Command, JointHistory, JointLimits, JointState, SimulatedRobot, joint_values,
                             load_procedure, robot_joint_state)
from guidewire.twin import DigitalTwin
from guidewire.twin.config import load_bench_config

LIMITS = JointLimits(0.12, 0.20, 0.02, 1.0)


def run(robot, start, seconds, rate=50.0):
    states = []
    for k in range(1, int(seconds * rate) + 1):
        states.append(robot.step(start + k / rate))
    return states


def test_the_robot_follows_the_profile_until_commanded_then_tracks_within_the_speed_limit():
    profile = lambda t: (0.15 + 0.005 * math.sin(t), 0.3 * t)  # noqa: E731
    robot = SimulatedRobot(LIMITS, profile, 100.0)
    states = run(robot, 100.0, 1.0)
    assert states[-1].insertion == pytest.approx(profile(101.0)[0], abs=1e-9)
    assert states[-1].roll == pytest.approx(0.3 * 101.0 - 2 * math.pi * 5, abs=1e-9)  # wrapped to [-pi, pi)
    assert robot.command(Command(insertion=0.19, roll=1.0), 101.0) == []
    states = run(robot, 101.0, 3.0)  # roll: 2.1 rad at 1 rad/s
    steps = np.diff([s.insertion for s in states])
    assert np.all(np.abs(steps) <= 0.02 / 50 + 1e-12)  # never faster than the limit
    assert states[24].insertion < 0.19 and states[-1].insertion == pytest.approx(0.19)  # 4 cm at 2 cm/s
    assert states[-1].roll == pytest.approx(1.0) and states[-1].insertion_velocity == 0.0


def test_commands_beyond_the_limits_are_clamped_and_said_and_bad_ones_refused():
    robot = SimulatedRobot(LIMITS, None, 0.0)
    notes = robot.command(Command(insertion=0.35), 0.0)
    assert "clamped" in notes[0]
    run(robot, 0.0, 5.0)
    assert robot.state.insertion == pytest.approx(0.20)
    assert "not finite" in robot.command(Command(insertion=math.nan), 5.0)[0]
    assert robot.state.insertion == pytest.approx(0.20)
    notes = robot.command(Command(insertion_velocity=-0.5), 5.0)
    assert "limited" in notes[0]
    states = run(robot, 5.0, 1.0)  # the velocity holds for 0.5 s, then the robot stops
    assert states[-1].insertion == pytest.approx(0.20 - 0.02 * 0.5, abs=0.02 / 50 + 1e-9)
    assert states[-1].insertion_velocity == 0.0


def test_a_commands_file_is_a_procedure_and_bad_files_name_the_row(tmp_path):
    csv = tmp_path / "procedure.csv"
    csv.write_text("# a push and a turn\ntime,insertion,roll\n0,0.12,0\n2,0.16,0\n3,0.16,1.5\n")
    robot = SimulatedRobot(LIMITS, None, 10.0)
    robot.run_procedure(load_procedure(csv), 10.0)
    states = run(robot, 10.0, 4.0)
    assert states[49].insertion == pytest.approx(0.14, abs=1e-3)  # half-way at t = 1 s
    assert states[-1].insertion == pytest.approx(0.16) and states[-1].roll == pytest.approx(1.5)
    yaml_file = tmp_path / "procedure.yaml"
    yaml_file.write_text("waypoints:\n  - {time: 0, insertion: 0.12, roll: 0}\n  - {time: 1, insertion: 0.13}\n")
    with pytest.raises(ConfigError, match="waypoint 2"):
        load_procedure(yaml_file)
    csv.write_text("time,insertion,roll\n1,0.12,0\n0,0.13,0\n")
    with pytest.raises(ConfigError, match="increase"):
        load_procedure(csv)


def test_the_twin_wire_follows_the_robot_history_and_falls_back_to_its_profile():
    twin = DigitalTwin()
    history = JointHistory(max_extrapolation=0.5)
    twin.follow_robot(history)
    history.add(10.0, JointState(0.15, 3.0, 0.01, 0.0))
    history.add(10.1, JointState(0.151, -3.1, 0.01, 0.0))  # roll crossed +-pi: interpolate the short way
    state = twin.state(10.05)
    assert state.inserted_length == pytest.approx(0.1505)
    assert abs(math.remainder(state.rotation - (3.0 + 0.5 * (2 * math.pi - 6.1)), 2 * math.pi)) < 1e-9
    assert twin.state(10.3).inserted_length == pytest.approx(0.151 + 0.01 * 0.2)  # extrapolated
    profile = twin.wire.state(11.0)
    assert twin.state(11.0).inserted_length == profile.inserted_length  # too old: the profile
    np.testing.assert_allclose(twin.state(10.1).centreline, twin.wire.shape(0.151, -3.1).centreline)


def test_bench_frames_place_every_sensor_where_the_bench_config_says():
    config = load_bench_config()
    frames = {f.child: f for f in bench_frames(config)}
    assert set(frames) == {"mag_array", "camera_top_optical", "camera_side_optical", "xray_optical",
                           "xray_detector", "robot_base"}
    top = frames["camera_top_optical"].pose
    np.testing.assert_allclose(top[:3, 3], (0.0, 0.0, 0.45))
    np.testing.assert_allclose(top[:3, 2], (0.0, 0.0, -1.0), atol=1e-12)  # optical z looks down at the platform
    np.testing.assert_allclose(frames["mag_array"].pose[:3, 3], (0, 0, config.magnetometer_array.height))
    robot = frames["robot_base"].pose
    np.testing.assert_allclose(robot[:3, 3], config.guidewire.entry_point)
    np.testing.assert_allclose(robot[:3, 0], config.guidewire.entry_direction)
    # The detector lies source_to_detector along the C-arm's beam, and the isocentre on the beam.
    source = frames["xray_optical"].pose
    detector = source @ frames["xray_detector"].pose
    beam = detector[:3, 3] - source[:3, 3]
    assert np.linalg.norm(beam) == pytest.approx(config.fluoroscopy.source_to_detector)
    to_isocentre = np.asarray(config.fluoroscopy.isocentre) - source[:3, 3]
    assert np.linalg.norm(np.cross(beam, to_isocentre)) == pytest.approx(0.0, abs=1e-12)
    lateral = {f.child: f for f in bench_frames(config, ("xray_lateral:lateral",))}["xray_lateral_optical"].pose
    assert abs(lateral[:3, 2] @ source[:3, 2]) < 1e-9  # the lateral view's beam is square to the default one
    for frame in frames.values():
        np.testing.assert_allclose(frame.pose[:3, :3] @ frame.pose[:3, :3].T, np.eye(3), atol=1e-12)


def test_the_trust_verdict_lists_every_reason_and_is_empty_only_when_all_hold():
    bounds = TrustBounds(max_input_age=1.0, max_fit_age=2.0, max_chi2_per_dof=10.0, length_tolerance=0.005)
    fresh = {"camera_top image": 0.2, "robot state": 0.01}
    assert distrust_reasons(fresh, 0.5, 1.3, "", "", bounds) == []
    problem = length_disagreement(0.150, 0.140, bounds.length_tolerance)
    assert "150.0 mm vs commanded 140.0 mm" in problem and length_disagreement(0.142, 0.140, 0.005) == ""
    reasons = distrust_reasons({"camera_top image": 1.5, "robot state": None}, 0.5, float("nan"), problem,
                               "no wire in the view", bounds)
    assert reasons == ["camera_top image stale (1.5 s)", "no robot state received",
                       "fit residual chi2/dof nan above 10", "no wire in the view", problem]
    assert distrust_reasons(fresh, None, float("nan"), "", "", bounds) == ["no fit yet"]


def test_the_shipped_procedure_stays_inside_the_bench_robot_travel():
    from conftest import ROOT

    procedure = load_procedure(ROOT / "config" / "procedure.csv")
    wire = load_bench_config().guidewire
    assert procedure.duration == 60.0
    assert wire.min_inserted_length <= procedure.insertion.min() <= procedure.insertion.max() \
        <= wire.max_inserted_length
    # It asks for no more than the robot's default speeds (2 cm/s, 1 rad/s), so it is followed on time.
    speeds = np.abs(np.diff(procedure.insertion) / np.diff(procedure.times))
    turns = np.abs(np.diff(procedure.roll) / np.diff(procedure.times))
    assert speeds.max() <= 0.02 and turns.max() <= 1.0


def test_a_state_beyond_the_robots_travel_moves_the_simulated_wire_only_as_far_as_the_robot_could():
    twin = DigitalTwin()
    wire = twin.config.guidewire
    history = JointHistory()
    twin.follow_robot(history)
    history.add(10.0, JointState(5.0, 0.0, 0.0, 0.0))  # 5 m: another publisher's, or a corrupted one
    history.add(11.0, JointState(-1e300, 0.0, 0.0, 0.0))
    assert twin.state(10.0).length == pytest.approx(wire.max_inserted_length, abs=wire.point_spacing)
    assert twin.state(11.0).length == pytest.approx(wire.min_inserted_length, abs=wire.point_spacing)
    # An infinite joint is no joint: the state is not taken at all.
    message = SimpleNamespace(name=["insertion", "roll"], position=[float("inf"), 0.0], velocity=[0.0, 0.0])
    assert joint_values(message, "insertion") == (None, 0.0) and robot_joint_state(message, "insertion", "roll") is None
