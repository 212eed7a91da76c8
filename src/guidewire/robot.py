"""The catheter robot's joints as a driver presents them: a prismatic insertion joint (m)
and a continuous roll joint (rad), with position and velocity limits; what the robot
does each control step (follow the bench's profile, a commanded position, velocity or
a scripted procedure); and the joint history the simulated sensors read the wire from.

No rclpy and no twin here: the ROS node and the twin both build on this.
"""
from __future__ import annotations

import csv
import math
import threading
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from guidewire.contracts import ConfigError

INSERTION, ROLL = "insertion", "roll"


def wrap_angle(angle: float) -> float:
    """An angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass(frozen=True)
class JointLimits:
    min_insertion: float  # m
    max_insertion: float  # m
    max_insertion_speed: float  # m/s
    max_roll_speed: float  # rad/s

    def __post_init__(self):
        if not 0 <= self.min_insertion <= self.max_insertion:
            raise ConfigError(f"insertion limits must satisfy 0 <= min <= max, got [{self.min_insertion}, "
                              f"{self.max_insertion}] m")
        for name in ("max_insertion_speed", "max_roll_speed"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class JointState:
    insertion: float  # m
    roll: float  # rad, wrapped to [-pi, pi)
    insertion_velocity: float = 0.0  # m/s
    roll_velocity: float = 0.0  # rad/s


@dataclass(frozen=True)
class Command:
    """A command for one or both joints: a target position, or (position None) a velocity."""

    insertion: float | None = None
    roll: float | None = None
    insertion_velocity: float | None = None
    roll_velocity: float | None = None


def _step_towards(position: float, target: float, max_step: float) -> float:
    return position + float(np.clip(target - position, -max_step, max_step))


class Procedure:
    """A scripted procedure: waypoints (time s from its start, insertion m, roll rad), linearly
    interpolated; before the first waypoint it asks for the first, after the last for the last."""

    def __init__(self, times, insertion, roll, source: str = "procedure"):
        self.times = np.asarray(times, float)
        self.insertion = np.asarray(insertion, float)
        self.roll = np.asarray(roll, float)
        if not len(self.times):
            raise ConfigError(f"{source}: no waypoints")
        if not (np.isfinite(self.times).all() and np.isfinite(self.insertion).all() and np.isfinite(self.roll).all()):
            raise ConfigError(f"{source}: a waypoint is not a finite number")
        if np.any(np.diff(self.times) <= 0):
            raise ConfigError(f"{source}: waypoint times must increase")

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def setpoint(self, elapsed: float) -> tuple[float, float]:
        return (float(np.interp(elapsed, self.times, self.insertion)),
                float(np.interp(elapsed, self.times, self.roll)))


def load_procedure(path: str | Path) -> Procedure:
    """Waypoints from a CSV (header `time,insertion,roll`) or YAML (`waypoints: [{time, insertion,
    roll}, ...]`) file; errors name the file and the row."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read commands file {file}: {error.strerror}") from error
    keys = ("time", "insertion", "roll")
    if file.suffix.lower() == ".csv":
        rows = list(csv.DictReader(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    else:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"commands file {file} is not valid YAML: {error}") from error
        rows = data.get("waypoints") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise ConfigError(f"commands file {file}: expected a 'waypoints' list of {{time, insertion, roll}}")
    values = []
    for index, row in enumerate(rows):
        try:
            values.append([float(row[key]) for key in keys])
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"commands file {file}, waypoint {index + 1}: needs numbers {', '.join(keys)} "
                              f"({error!r})") from error
    table = np.array(values, float).reshape(-1, 3)
    return Procedure(table[:, 0], table[:, 1], table[:, 2], str(file))


class SimulatedRobot:
    """The bench robot's control loop: `step(t)` advances the joints to time t within the limits.

    Without a command it follows `profile(t) -> (insertion, roll)` (the bench's own motion); a
    position command is tracked at up to the speed limits and then held; a velocity command
    holds for `velocity_timeout` s (a dead-man's timeout, as robot drivers have) and then stops;
    a procedure is tracked from its start time to its end and then held."""

    def __init__(self, limits: JointLimits, profile: Callable[[float], tuple[float, float]] | None,
                 start_time: float, velocity_timeout: float = 0.5):
        self.limits = limits
        self.profile = profile
        self.velocity_timeout = velocity_timeout
        insertion, roll = profile(start_time) if profile else (limits.min_insertion, 0.0)
        self.state = JointState(self.clamp_insertion(insertion)[0], wrap_angle(roll))
        self.time = start_time
        self.mode = "profile" if profile else "hold"
        self.target = (self.state.insertion, self.state.roll)
        self.velocity = (0.0, 0.0)
        self.velocity_until = -math.inf
        self.procedure: Procedure | None = None
        self.procedure_start = 0.0

    def clamp_insertion(self, value: float) -> tuple[float, bool]:
        clamped = float(np.clip(value, self.limits.min_insertion, self.limits.max_insertion))
        return clamped, clamped != value

    def command(self, command: Command, now: float) -> list[str]:
        """Take a command; returns what was limited or refused (empty when taken as given)."""
        notes = []
        values = [command.insertion, command.roll, command.insertion_velocity, command.roll_velocity]
        if any(v is not None and not math.isfinite(v) for v in values):
            return ["command refused: a value is not finite"]
        if command.insertion is None and command.roll is None:
            velocity = [command.insertion_velocity or 0.0, command.roll_velocity or 0.0]
            for i, (name, limit) in enumerate((("insertion", self.limits.max_insertion_speed),
                                               ("roll", self.limits.max_roll_speed))):
                if abs(velocity[i]) > limit:
                    notes.append(f"{name} velocity {velocity[i]:g} beyond the limit {limit:g}: limited")
                    velocity[i] = math.copysign(limit, velocity[i])
            self.mode, self.velocity, self.velocity_until = "velocity", tuple(velocity), now + self.velocity_timeout
            return notes
        insertion, roll = self.target if self.mode == "position" else (self.state.insertion, self.state.roll)
        if command.insertion is not None:
            insertion, clamped = self.clamp_insertion(command.insertion)
            if clamped:
                notes.append(f"insertion target {command.insertion:g} m outside [{self.limits.min_insertion:g}, "
                             f"{self.limits.max_insertion:g}] m: clamped")
        if command.roll is not None:
            roll = command.roll
        self.mode, self.target = "position", (insertion, roll)
        return notes

    def run_procedure(self, procedure: Procedure, now: float) -> None:
        self.mode, self.procedure, self.procedure_start = "procedure", procedure, now

    def step(self, now: float) -> JointState:
        dt = max(now - self.time, 0.0)
        self.time = now
        state = self.state
        if self.mode == "profile":
            insertion, roll = self.profile(now)
            target = (insertion, state.roll + wrap_angle(roll - state.roll))
        elif self.mode == "velocity":
            velocity = self.velocity if now <= self.velocity_until else (0.0, 0.0)
            target = (state.insertion + velocity[0] * dt, state.roll + velocity[1] * dt)
        elif self.mode == "procedure":
            insertion, roll = self.procedure.setpoint(now - self.procedure_start)
            target = (insertion, state.roll + wrap_angle(roll - state.roll))
        elif self.mode == "position":
            target = (self.target[0], state.roll + wrap_angle(self.target[1] - state.roll))
        else:
            target = (state.insertion, state.roll)
        insertion = self.clamp_insertion(_step_towards(state.insertion, target[0],
                                                       self.limits.max_insertion_speed * dt))[0]
        roll = _step_towards(state.roll, target[1], self.limits.max_roll_speed * dt)
        velocities = ((insertion - state.insertion) / dt, (roll - state.roll) / dt) if dt > 0 else (0.0, 0.0)
        self.state = JointState(insertion, wrap_angle(roll), *velocities)
        return self.state


class JointHistory:
    """Recent robot joint states by stamp, for the simulated sensors: `at(t)` interpolates between
    states (roll the short way round) and extrapolates past the newest with its velocity for at
    most `max_extrapolation` s; None when there is no state that recent (then the bench's own
    profile applies). Thread-safe: a subscription adds while sampling threads read."""

    def __init__(self, max_extrapolation: float = 0.5, keep: int = 400):
        self.max_extrapolation = max_extrapolation
        self._stamps: deque[float] = deque(maxlen=keep)
        self._states: deque[JointState] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, stamp: float, state: JointState) -> None:
        with self._lock:
            if self._stamps and stamp <= self._stamps[-1]:
                if stamp < self._stamps[-1] - 1.0:  # the robot restarted or time jumped back: start afresh
                    self._stamps.clear()
                    self._states.clear()
                else:
                    return
            self._stamps.append(stamp)
            self._states.append(state)

    def at(self, time: float) -> tuple[float, float] | None:
        with self._lock:
            if not self._stamps or time < self._stamps[0] or time > self._stamps[-1] + self.max_extrapolation:
                return None
            index = bisect_right(self._stamps, time)
            if index == len(self._stamps):
                state, dt = self._states[-1], time - self._stamps[-1]
                return state.insertion + state.insertion_velocity * dt, state.roll + state.roll_velocity * dt
            before, after = self._states[index - 1], self._states[index]
            t0, t1 = self._stamps[index - 1], self._stamps[index]
        w = (time - t0) / (t1 - t0)
        return (before.insertion + w * (after.insertion - before.insertion),
                before.roll + w * wrap_angle(after.roll - before.roll))


def joint_values(message, joint: str) -> tuple[float | None, float | None]:
    """(position, velocity) of a joint in a JointState; None where absent or NaN (JointState's 'not set')
    or infinite (no joint is there)."""
    names = list(message.name)
    if joint not in names:
        return None, None
    index = names.index(joint)
    values = []
    for array in (message.position, message.velocity):
        value = float(array[index]) if len(array) > index else math.nan
        values.append(value if math.isfinite(value) else None)
    return values[0], values[1]


def robot_joint_state(message, insertion_joint: str, roll_joint: str):
    """JointState of a robot's sensor_msgs/JointState message (rclpy's or a bag's); None without both
    positions."""
    insertion, insertion_velocity = joint_values(message, insertion_joint)
    roll, roll_velocity = joint_values(message, roll_joint)
    if insertion is None or roll is None:
        return None
    return JointState(insertion, roll, insertion_velocity or 0.0, roll_velocity or 0.0)
