"""Simulated catheter robot: the bench's insertion robot as a robot driver presents it.

Publishes sensor_msgs/JointState on robot/joint_states at rate_hz: the prismatic `insertion`
joint (m) and the continuous `roll` joint (rad), positions and velocities. Takes commands of
the same type on robot/joint_commands: a joint's position is a target (clamped to the limits,
tracked at up to the speed limits and held), a velocity without a position is held for
command_timeout_s. Without commands the robot follows the bench's own insertion/roll profile,
or a commands_file's scripted procedure. Publishes the bench's true wire at its joints (the
ground truth, from the twin) for RViz and evaluation. The simulated sensors subscribe to the
joint states and render the wire there (guidewire_ros.robot_link).
"""
from __future__ import annotations

import time

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from visualization_msgs.msg import Marker

from guidewire.frames import axis_quaternion
from guidewire.robot import Command, JointLimits, SimulatedRobot, joint_values, load_procedure
from guidewire.twin.config import ConfigError, load_bench_config
from guidewire.twin.wire import GuidewireModel
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, publisher_qos, qos_profile, run, \
    runtime_parameters


class CatheterRobot(Node):
    def __init__(self):
        super().__init__("catheter_robot")
        self.rate = declare(self, "rate_hz", 50.0, "Joint state rate (and control loop), Hz")
        if not self.rate > 0:
            raise SystemExit(f"catheter_robot: rate_hz must be > 0, got {self.rate}")
        bench_config = declare(self, "bench_config", "", "Bench YAML: the wire, its travel and profile; "
                                                         "'' = embedded defaults")
        self.names = (declare(self, "insertion_joint", "insertion", "Prismatic insertion joint name (m)"),
                      declare(self, "roll_joint", "roll", "Continuous roll joint name (rad)"))
        follow_profile = declare(self, "follow_profile", True,
                                 "Without commands, follow the bench's insertion/roll profile (else hold)")
        commands_file = declare(self, "commands_file", "",
                                "Scripted procedure: CSV (time,insertion,roll) or YAML waypoints, time in s "
                                "from the node's start; '' = none")
        min_insertion = declare(self, "min_insertion", 0.0, "Insertion lower limit, m; 0 = the bench wire's shortest")
        max_insertion = declare(self, "max_insertion", 0.0, "Insertion upper limit, m; 0 = the bench wire's longest")
        max_speed = declare(self, "max_insertion_speed", 0.02, "Insertion speed limit, m/s")
        max_roll_speed = declare(self, "max_roll_speed", 1.0, "Roll speed limit, rad/s")
        timeout = declare(self, "command_timeout_s", 0.5, "A velocity command stops after this long without another")
        self.ground_truth = declare(self, "publish_ground_truth", True,
                                    "Publish the bench's true wire at the joints (bench/ground_truth/*)")
        self.frame_id = declare(self, "frame_id", "bench", "Frame of the ground-truth wire")
        qos = publisher_qos(self, default_depth=50)
        try:
            config = load_bench_config(bench_config or None)
            wire = config.guidewire
            # The simulated wire exists only over the bench's insertion range (its shape is generated for it).
            low, high = min_insertion or wire.min_inserted_length, max_insertion or wire.max_inserted_length
            if not wire.min_inserted_length <= low <= high <= wire.max_inserted_length:
                raise ConfigError(f"insertion limits [{low}, {high}] m must lie within the bench wire's "
                                  f"[{wire.min_inserted_length}, {wire.max_inserted_length}] m")
            limits = JointLimits(low, high, max_speed, max_roll_speed)
            procedure = load_procedure(commands_file) if commands_file else None
        except ConfigError as error:
            raise SystemExit(f"catheter_robot: {error}") from error
        self.model = GuidewireModel(wire, config.seed)
        profile = (lambda t: (self.model.inserted_length(t), self.model.rotation(t))) if follow_profile else None
        now = self.get_clock().now().nanoseconds * 1e-9
        self.robot = SimulatedRobot(limits, profile, now, velocity_timeout=timeout)
        if procedure is not None:
            self.robot.run_procedure(procedure, now)
        self.publisher = self.create_publisher(JointState, "robot/joint_states", qos)
        self.truth_publisher = self.create_publisher(Marker, "bench/ground_truth/wire", qos)
        self.truth_tip_publisher = self.create_publisher(PoseStamped, "bench/ground_truth/tip", qos)
        self.create_subscription(JointState, "robot/joint_commands", self._on_command,
                                 qos_profile(declare(self, "command_qos", "reliable", "Command subscription QoS")))
        self.diagnostics = Diagnostics(self, "catheter_robot/sim")
        self.published = self.commands = 0
        self.notes: list[str] = []
        self.truth_period = 1.0 / declare(self, "ground_truth_rate_hz", 10.0, "Ground-truth wire rate, Hz")
        self.last_truth = -float("inf")
        self.last_report, self.published_since_report = time.monotonic(), 0
        self.create_timer(1.0 / self.rate, self._step)
        self.create_timer(1.0, self._report)
        runtime_parameters(self, {})  # every setting is read once: a change is refused, with the reason
        self.get_logger().info(f"joints {self.names} at {self.rate:g} Hz, insertion [{low:g}, {high:g}] m, "
                               f"{'procedure ' + commands_file if procedure else self.robot.mode}")

    def _on_command(self, message: JointState) -> None:
        insertion, insertion_velocity = joint_values(message, self.names[0])
        roll, roll_velocity = joint_values(message, self.names[1])
        unknown = sorted(set(message.name) - set(self.names))
        notes = [f"unknown joint(s) {', '.join(unknown)} ignored"] if unknown else []
        if (insertion, insertion_velocity, roll, roll_velocity) == (None,) * 4:
            notes.append("command without a position or velocity of a known joint: ignored")
        else:
            now = self.get_clock().now().nanoseconds * 1e-9
            notes += self.robot.command(Command(insertion, roll, insertion_velocity, roll_velocity), now)
        self.commands += 1
        if notes:
            self.get_logger().warning("; ".join(notes))
            self.notes = notes

    def _step(self) -> None:
        now = self.get_clock().now()
        state = self.robot.step(now.nanoseconds * 1e-9)
        stamp = now.to_msg()
        self.publisher.publish(convert.joint_state_message(stamp, self.names, state))
        self.published += 1
        self.published_since_report += 1
        if self.ground_truth and time.monotonic() - self.last_truth >= self.truth_period:
            self.last_truth = time.monotonic()
            wire = self.model.shape(state.insertion, state.roll, now.nanoseconds * 1e-9)
            header = convert.header(now.nanoseconds, self.frame_id)
            self.truth_publisher.publish(convert.ground_truth_marker(header, wire.centreline, wire.diameter))
            self.truth_tip_publisher.publish(convert.pose_stamped(header, wire.tip,
                                                                  axis_quaternion(wire.tip_direction)))

    def _report(self) -> None:
        elapsed = time.monotonic() - self.last_report
        self.last_report = time.monotonic()
        state = self.robot.state
        level, message = OK, f"{self.robot.mode}"
        if self.notes:
            level, message = WARN, f"{self.robot.mode}; last command: {'; '.join(self.notes)}"
            self.notes = []
        rate = self.published_since_report / max(elapsed, 1e-9)
        if rate < 0.5 * self.rate:
            level, message = ERROR, f"joint states at {rate:.1f} Hz, target {self.rate:g} Hz"
        self.published_since_report = 0
        self.diagnostics.publish(level, message, {
            "mode": self.robot.mode, "insertion (m)": f"{state.insertion:.4f}", "roll (rad)": f"{state.roll:.3f}",
            "rate_hz": f"{rate:.1f}", "target_rate_hz": self.rate, "commands": self.commands,
            "published": self.published})


def main() -> None:
    run(CatheterRobot)


if __name__ == "__main__":
    main()
