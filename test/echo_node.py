"""A separate-process node that republishes every custom message it receives.

Usage: echo_node.py  -- subscribes roundtrip/<Type>/out, publishes roundtrip/<Type>/back.
"""
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, DurabilityPolicy

from guidewire_perception import msg

TYPES = ["MagnetometerArray", "GuidewireSegmentation", "GuidewireShape", "RegistrationResult"]


def main():
    rclpy.init()
    node = Node("roundtrip_echo")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    for name in TYPES:
        kind = getattr(msg, name)
        publisher = node.create_publisher(kind, f"roundtrip/{name}/back", qos)
        node.create_subscription(kind, f"roundtrip/{name}/out", publisher.publish, qos)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
