"""Plumbing shared by the nodes: parameters with descriptions, QoS, stamps, diagnostics."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)

from guidewire_ros.pipeline_config import localhost_discovery_default

QOS_CHOICES = ("reliable", "sensor_data")


def declare(node: Node, name: str, default, description: str, low=None, high=None):
    """Declare a parameter with its description (and, given low and high, its inclusive range, which
    ROS enforces on set) and return its value."""
    descriptor = ParameterDescriptor(description=description)
    if low is not None and high is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high),
                                                                  step=0.0)]
    return node.declare_parameter(name, default, descriptor).value


def runtime_parameters(node: Node, appliers: dict[str, Callable[[Any], None]]) -> None:
    """The node's parameter callback (register it after the last declare: declaring calls it too).
    A parameter in `appliers` changes at run time: its applier gets the new value before the node
    stores it and may refuse it with a ValueError, whose text is the reason returned. Every other
    parameter is read once at start-up, so a change is refused rather than reported as done while
    the node goes on with the old value (rclpy checks ranges and types before this callback)."""
    def on_set(parameters) -> SetParametersResult:
        fixed = [p.name for p in parameters if p.name not in appliers and p.name != "use_sim_time"]
        if fixed:
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(fixed)}: read at start-up only, restart the node to change it (changeable at run "
                f"time: {', '.join(sorted(appliers)) or 'none'})"))
        for parameter in parameters:
            if parameter.name in appliers:
                try:
                    appliers[parameter.name](parameter.value)
                except ValueError as error:
                    return SetParametersResult(successful=False, reason=f"{parameter.name}={parameter.value!r}: "
                                                                        f"{error}")
                node.get_logger().info(f"{parameter.name} set to {parameter.value!r}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def qos_profile(choice: str) -> QoSProfile:
    """REP-2003: drivers publish reliable (system default), consumers take sensor-data QoS."""
    if choice == "reliable":
        return qos_profile_system_default
    if choice == "sensor_data":
        return qos_profile_sensor_data
    raise ValueError(f"unknown QoS '{choice}' (choose from {', '.join(QOS_CHOICES)})")


def latched_qos(depth: int = 1) -> QoSProfile:
    """Reliable and transient-local, as tf2's static broadcaster: a node started later still gets the last
    `depth` messages. Writer and reader must both use it: a transient-local reader does not match a volatile
    writer."""
    return QoSProfile(depth=depth, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def publisher_qos(node: Node, default_depth: int) -> QoSProfile:
    """The node's publisher QoS from its `qos` and `qos_depth` parameters.

    The history depth is explicit: with the system default, Fast DDS keeps one
    message, so a reliable reader that stalls (a recorder on a loaded machine)
    loses every large message published meanwhile."""
    choice = qos_profile(declare(node, "qos", "reliable", f"Publisher QoS: {' or '.join(QOS_CHOICES)}"))
    depth = declare(node, "qos_depth", default_depth,
                    "Publisher history: messages a reliable reader may fall behind before it loses any", 1, 1_000_000)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=choice.reliability,
                      durability=choice.durability)


def message_class(type_name: str):
    """The Python class of a ROS type name such as 'sensor_msgs/msg/Image'."""
    module, _, name = type_name.rpartition("/")
    return getattr(__import__(module.replace("/", "."), fromlist=[name]), name)


class Diagnostics:
    """Publishes one DiagnosticStatus per call on /diagnostics (diagnostic_updater is not available).
    start() reports every period from a thread of its own, so that a node whose callback runs
    longer than the period (a large frame being segmented) still reports; close() stops it, before
    the node is destroyed."""

    def __init__(self, node: Node, hardware_id: str):
        self.node = node
        self.hardware_id = hardware_id
        self.publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, report: Callable[[], None], period_s: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(period_s):
                try:
                    report()
                except Exception as error:  # a report must never end the reporting
                    self.node.get_logger().error(f"diagnostics report failed: {type(error).__name__}: {error}",
                                                 throttle_duration_sec=10.0)

        self._thread = threading.Thread(target=loop, name="diagnostics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def publish(self, level: bytes, message: str, values: dict) -> None:
        status = DiagnosticStatus(level=level, name=f"{self.node.get_name()}: {self.hardware_id}",
                                  message=message, hardware_id=self.hardware_id,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
# Stamps further ahead of a node's clock than this are refused: one message from 2038 would otherwise
# push every real one out of a stamp-ordered buffer (past stamps are fine: a replayed bag has them).
MAX_STAMP_AHEAD_S = 60.0


def future_stamp(node: Node, stamp, what: str) -> str:
    """Why a message stamped `stamp` is refused ('' when it is not): too far ahead of the node's clock."""
    ahead = (stamp.sec * 1_000_000_000 + stamp.nanosec - node.get_clock().now().nanoseconds) * 1e-9
    return f"{what} stamped {ahead:.3g} s ahead of this node's clock: ignored" if ahead > MAX_STAMP_AHEAD_S else ""


class _StopDuringStartUp(BaseException):
    """A stop signal while the node is being built: leave the constructor at once."""


# Bad settings found while a node starts (ConfigError and BagError are ValueErrors too): reported in
# one line, exit status 1, no traceback.
STARTUP_ERRORS = (ValueError, OSError)


def spin_until_stopped(node: Node, stopped: threading.Event, then: Callable[[Any], None] | None = None,
                       pause_s: Callable[[], float] = lambda: 0.0) -> None:
    """Serve the node until a stop signal. The wait is bounded so that the signal handler
    (which Python runs only between bytecodes of the main thread) is seen within 0.1 s.
    `then(executor)` runs after the signal, before the executor goes (the recorder's drain).
    `pause_s()`: seconds to wait after each callback, so that messages gather and a callback that
    takes several at once (the recorder's) wakes the executor less often."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while not stopped.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=0.1)
            pause = pause_s()
            if pause > 0:
                stopped.wait(pause)
        if then is not None and node.context.ok():
            then(executor)
    finally:
        executor.shutdown(timeout_sec=1.0)


def run(node_class, spin: Callable[[Node, threading.Event], None] | None = None) -> None:
    """Entry point body shared by every node's main(): discovery default, init, the node, spin
    (spin_until_stopped unless the node has its own loop, such as replay's), and one shutdown path.

    SIGINT and SIGTERM are the process's own (rclpy's handlers are not installed): rclpy's shut the
    context down at once, under threads still publishing (the driver's sampler: "publisher's
    context is invalid") and before close() could log ("Failed to publish log message to rosout").
    Here a signal while the node is built leaves the constructor; after that it ends the spin,
    then close() stops the node's own threads, the node is destroyed and only then the context
    shut down: exit status 0 and no error line at any moment. The exit status is 1 for bad
    settings (STARTUP_ERRORS, logged in one line) and the node's `exit_code` otherwise."""
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.logging import get_logger
    from rclpy.signals import SignalHandlerOptions

    stopped = threading.Event()
    starting = True

    def on_signal(_signum, _frame) -> None:
        stopped.set()
        if starting:
            raise _StopDuringStartUp

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    localhost_discovery_default()
    node, code = None, 0
    try:
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = node_class()
        except (*STARTUP_ERRORS, ParameterException) as error:
            get_logger(node_class.__name__).fatal(f"cannot start: {error}")
            code = 1
        starting = False
        if node is not None and not stopped.is_set():
            (spin or spin_until_stopped)(node, stopped)
            code = getattr(node, "exit_code", 0)
    except _StopDuringStartUp:
        pass
    finally:
        starting = False
        if node is not None:
            getattr(node, "close", lambda: None)()
            node.destroy_node()
        rclpy.try_shutdown()
    sys.exit(code)
