"""Plumbing shared by the nodes: parameters with descriptions, QoS, stamps, diagnostics."""
from __future__ import annotations

from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data, qos_profile_system_default

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


def qos_profile(choice: str) -> QoSProfile:
    """REP-2003: drivers publish reliable (system default), consumers take sensor-data QoS."""
    if choice == "reliable":
        return qos_profile_system_default
    if choice == "sensor_data":
        return qos_profile_sensor_data
    raise ValueError(f"unknown QoS '{choice}' (choose from {', '.join(QOS_CHOICES)})")


def publisher_qos(node: Node, default_depth: int) -> QoSProfile:
    """The node's publisher QoS from its `qos` and `qos_depth` parameters.

    The history depth is explicit: with the system default, Fast DDS keeps one
    message, so a reliable reader that stalls (a recorder on a loaded machine)
    loses every large message published meanwhile."""
    choice = qos_profile(declare(node, "qos", "reliable", f"Publisher QoS: {' or '.join(QOS_CHOICES)}"))
    depth = declare(node, "qos_depth", default_depth,
                    "Publisher history: messages a reliable reader may fall behind before it loses any")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=choice.reliability,
                      durability=choice.durability)


def message_class(type_name: str):
    """The Python class of a ROS type name such as 'sensor_msgs/msg/Image'."""
    module, _, name = type_name.rpartition("/")
    return getattr(__import__(module.replace("/", "."), fromlist=[name]), name)


class Diagnostics:
    """Publishes one DiagnosticStatus per call on /diagnostics (diagnostic_updater is not available)."""

    def __init__(self, node: Node, hardware_id: str):
        self.node = node
        self.hardware_id = hardware_id
        self.publisher = node.create_publisher(DiagnosticArray, "/diagnostics", 10)

    def publish(self, level: bytes, message: str, values: dict) -> None:
        status = DiagnosticStatus(level=level, name=f"{self.node.get_name()}: {self.hardware_id}",
                                  message=message, hardware_id=self.hardware_id,
                                  values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)


OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def run(node_class, spin: Callable[[Node], None] | None = None) -> None:
    """Entry point body shared by every node's main(): discovery default, init, the node, spin
    (rclpy.spin unless the node has its own loop, such as replay's), and one shutdown path
    for Ctrl-C, an external shutdown and a stop signal during start-up, which ends with
    the node's close() (if it has one) and its destruction."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    localhost_discovery_default()
    rclpy.init()
    node = None
    try:
        node = node_class()
        (spin or rclpy.spin)(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        if rclpy.ok():
            raise  # otherwise a stop signal during start-up invalidated the context: a stop, not a fault
    finally:
        if node is not None:
            getattr(node, "close", lambda: None)()
            node.destroy_node()
        rclpy.try_shutdown()
