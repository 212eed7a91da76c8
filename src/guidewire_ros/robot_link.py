"""The simulated bench's wire follows the catheter robot: a node with a twin source subscribes to
the robot's JointState and hands each state to the source, which renders the wire at the robot's
joints (at the profile when no recent state arrives). Hardware sources do not have this hook."""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from guidewire.robot import JointHistory, robot_joint_state
from guidewire.sync import stamp_ns
from guidewire_ros.common import declare


def follow_robot(node: Node, source) -> JointHistory | None:
    """Subscribe a simulated source to the robot's joints; None (nothing declared) for other sources."""
    if not hasattr(source, "follow_robot"):
        return None
    topic = declare(node, "robot_joint_states_topic", "robot/joint_states",
                    "Simulated sources: the robot's JointState that moves the bench's wire (none arriving: the "
                    "bench's own insertion/roll profile)")
    insertion = declare(node, "insertion_joint", "insertion", "Simulated sources: the robot's insertion joint, m")
    roll = declare(node, "roll_joint", "roll", "Simulated sources: the robot's roll joint, rad")
    history = JointHistory()
    source.follow_robot(history)

    def on_joints(message: JointState) -> None:
        state = robot_joint_state(message, insertion, roll)
        if state is not None:
            history.add(stamp_ns(message.header.stamp) * 1e-9, state)

    node.create_subscription(JointState, topic, on_joints, qos_profile_sensor_data)
    return history
