"""Fuzz (issue 23) of every node with inputs besides the segmentation's (test_fuzz_ros.py): a few
hundred random and corrupted messages of each input type (test/hostile_messages.py), with a recorder
beside the node. The node must stay up, log no traceback and still answer a good message; the bag must
hold every message sent."""
import os
import signal
import zlib

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from hostile_messages import corrupted, hostile_message  # noqa: E402
from ros_support import START_S, node_args, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)
from guidewire.bag import read_bag  # noqa: E402

PER_TOPIC = 120
RELIABLE = QoSProfile(depth=2000, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=2000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
WIDTH, HEIGHT = 64, 48


def now_stamp(node):
    return node.get_clock().now().to_msg()


def image(node, frame: str):
    from sensor_msgs.msg import Image

    pixels = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8)
    message = Image(height=HEIGHT, width=WIDTH, encoding="mono8", step=WIDTH, data=pixels.tobytes())
    message.header.stamp, message.header.frame_id = now_stamp(node), frame
    return message


def camera_info(node, frame: str):
    from sensor_msgs.msg import CameraInfo

    message = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="plumb_bob", d=[0.0] * 5,
                         k=[50.0, 0.0, 31.5, 0.0, 50.0, 23.5, 0.0, 0.0, 1.0],
                         r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                         p=[50.0, 0.0, 31.5, 0.0, 0.0, 50.0, 23.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    message.header.stamp, message.header.frame_id = now_stamp(node), frame
    return message


def array_frame(node):
    from geometry_msgs.msg import Point, Vector3

    from guidewire_perception.msg import MagnetometerArray

    grid = [(x, y) for y in (-0.045, -0.015, 0.015, 0.045) for x in (-0.045, -0.015, 0.015, 0.045)]
    message = MagnetometerArray(rows=4, cols=4, sensor_positions=[Point(x=x, y=y) for x, y in grid],
                                magnetic_field=[Vector3(x=1e-6, y=-2e-6, z=3e-5)] * 16,
                                magnetic_field_covariance=[0.0] * 144, status=bytes(16), temperature=[25.0] * 16)
    message.header.stamp, message.header.frame_id = now_stamp(node), "mag_array"
    return message


def joints(node, insertion: float = 0.12, roll: float = 0.0):
    from sensor_msgs.msg import JointState

    message = JointState(name=["insertion", "roll"], position=[insertion, roll], velocity=[0.0, 0.0])
    message.header.stamp = now_stamp(node)
    return message


def pose(node, frame: str = "bench", xyz=(0.0, 0.0, 0.06)):
    from geometry_msgs.msg import PoseStamped

    message = PoseStamped()
    message.header.stamp, message.header.frame_id = now_stamp(node), frame
    message.pose.position.x, message.pose.position.y, message.pose.position.z = xyz
    message.pose.orientation.w = 1.0
    return message


def registration(node, ct_frame: str = "ct", xyz=(0.0, 0.0, 0.06)):
    from guidewire_perception.msg import RegistrationResult

    message = RegistrationResult(ct_frame_id=ct_frame, ct_to_world=pose(node, xyz=xyz).pose, converged=True,
                                 message="converged", view_frame_ids=["xray_ap_optical"], view_similarity=[0.9])
    message.header.stamp, message.header.frame_id = now_stamp(node), "bench"
    return message


def segmentation(node):
    from guidewire_perception.msg import GuidewireSegmentation

    message = GuidewireSegmentation(mask=image(node, "camera_top_optical"), tip_found=True, tip_u=30.0, tip_v=20.0,
                                    confidence=0.9)
    message.header = message.mask.header
    return message


def fuzz(executor, node, folder, domain, name: str, args: list, inputs: dict, answers):
    """Send each input topic PER_TOPIC hostile messages (half random, half corrupted good ones, topics
    interleaved) with a recorder on them all; then `answers(running_process)` must hold."""
    from diagnostic_msgs.msg import DiagnosticArray

    publishers = {topic: node.create_publisher(kind, topic, LATCHED if latched else RELIABLE)
                  for topic, (kind, _, latched) in inputs.items()}
    recorded = {}
    diagnostics = node.create_subscription(DiagnosticArray, "/diagnostics", lambda array: recorded.update(
        (value.key[len("messages "):], int(value.value)) for status in array.status
        if status.hardware_id == f"recorder/{name}" for value in status.values
        if value.key.startswith("messages ")), 50)
    bag = folder / name
    recorder = node_args("recorder", "recorder", {"topics": list(inputs), "output": str(bag)}, folder)
    # A seed per node that is the same in every process (str hash() is not); GUIDEWIRE_FUZZ_SEED explores others.
    rng = np.random.default_rng([zlib.crc32(name.encode()), int(os.environ.get("GUIDEWIRE_FUZZ_SEED", 0))])
    with running(args, domain, folder / f"{name}.log") as process, \
            running(recorder, domain, folder / f"{name}_recorder.log") as recording:
        # The node's and the recorder's readers matched by every writer, not only known to the graph (a
        # volatile writer sends nothing to a reader it matches later); the count alone is no proof, since
        # this test node's own readers of the topic count too.
        def matched(topic: str) -> bool:
            readers = node.get_subscriptions_info_by_topic(topic)
            return {"recorder", name} <= {r.node_name for r in readers} and \
                publishers[topic].get_subscription_count() >= len(readers)
        assert spin_until(executor, lambda: all(matched(t) for t in publishers), START_S), \
            {t: [r.node_name for r in node.get_subscriptions_info_by_topic(t)] for t in publishers}
        for index in range(PER_TOPIC):
            for topic, (kind, good, _) in inputs.items():
                message = corrupted(rng, good(node)) if index % 2 else hostile_message(rng, kind)
                publishers[topic].publish(message)
            spin_until(executor, lambda: False, 0.01)
        assert spin_until(executor, lambda: answers(process), 60), (folder / f"{name}.log").read_text()[-3000:]
        assert process.poll() is None, (folder / f"{name}.log").read_text()[-3000:]
        sent = {topic: PER_TOPIC for topic in inputs}
        spin_until(executor, lambda: all(recorded.get(t, 0) >= n for t, n in sent.items()), 60)
        recording.send_signal(signal.SIGINT)
        assert recording.wait(timeout=30) == 0
    log = (folder / f"{name}.log").read_text()
    assert "Traceback" not in log and "RuntimeWarning" not in log, log[-3000:]
    counts = {}
    for topic, *_ in read_bag(bag):
        counts[topic] = counts.get(topic, 0) + 1
    assert all(counts.get(t, 0) >= n for t, n in sent.items()), (counts, sent)  # the good ones came after
    node.destroy_subscription(diagnostics)
    for publisher in publishers.values():
        node.destroy_publisher(publisher)


def diagnostic_values(statuses: list, hardware_id: str) -> dict:
    return {v.key: v.value for s in statuses if s.hardware_id == hardware_id for v in s.values}


def test_reconstruction_survives_hostile_inputs_and_still_takes_a_registration(ros):
    domain, node, executor, folder = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image, JointState

    from guidewire_perception.msg import GuidewireSegmentation, MagnetometerArray, RegistrationResult

    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda a: statuses.extend(a.status), 100)
    inputs = {
        "/camera_top/image_raw": (Image, lambda n: image(n, "camera_top_optical"), False),
        "/camera_top/camera_info": (CameraInfo, lambda n: camera_info(n, "camera_top_optical"), False),
        "/camera_side/image_raw": (Image, lambda n: image(n, "camera_side_optical"), False),
        "/camera_side/camera_info": (CameraInfo, lambda n: camera_info(n, "camera_side_optical"), False),
        "/mag_array/frame": (MagnetometerArray, array_frame, False),
        "/robot/joint_states": (JointState, joints, False),
        "/segmentation/result": (GuidewireSegmentation, segmentation, False),
        "/ct_registration/result": (RegistrationResult, registration, True),
    }
    args = node_args("reconstruction_node", "reconstruction",
                     {"second_view": "camera_side", "segmentation_topic": "segmentation/result"}, folder)
    good = node.create_publisher(RegistrationResult, "/ct_registration/result", LATCHED)

    def answers(_) -> bool:  # a good registration after all that: the wire's CT frame is the new one
        good.publish(registration(node, ct_frame="ct_after_fuzz"))
        spin_until(executor, lambda: False, 0.5)
        return diagnostic_values(statuses[-20:], "reconstruction").get("CT frame") == "ct_after_fuzz"

    try:
        fuzz(executor, node, folder, domain, "reconstruction", args, inputs, answers)
    finally:  # latched on the module's node, its results would reach the registration test's reader
        node.destroy_publisher(good)


def test_catheter_robot_survives_hostile_commands_and_still_follows_a_good_one(ros):
    domain, node, executor, folder = ros
    from sensor_msgs.msg import JointState

    states = []
    node.create_subscription(JointState, "/robot/joint_states", states.append, 50)
    good = node.create_publisher(JointState, "/robot/joint_commands", RELIABLE)
    args = node_args("catheter_robot", "catheter_robot", {}, folder)

    def answers(_) -> bool:  # 2 mm from where it stands, well inside the travel of the default bench
        if not states:
            return False
        target = min(max(states[-1].position[0], 0.05), 0.15) + 0.002
        good.publish(joints(node, target, 0.3))
        spin_until(executor, lambda: abs(states[-1].position[0] - target) < 1e-4
                   and abs(states[-1].position[1] - 0.3) < 1e-3, 3.0)
        return abs(states[-1].position[0] - target) < 1e-4 and abs(states[-1].position[1] - 0.3) < 1e-3

    fuzz(executor, node, folder, domain, "catheter_robot", args,
         {"/robot/joint_commands": (JointState, joints, False)}, answers)


def test_bench_frames_survive_hostile_registrations_and_still_place_the_ct(ros):
    domain, node, executor, folder = ros
    from geometry_msgs.msg import PoseStamped
    from tf2_msgs.msg import TFMessage

    from guidewire_perception.msg import RegistrationResult

    static = []
    node.create_subscription(TFMessage, "/tf_static", static.append, LATCHED)
    good = node.create_publisher(PoseStamped, "/ct_registration/ct_pose", LATCHED)  # as ct_registration's
    args = node_args("bench_frames", "bench_frames", {}, folder)
    where = (0.011, -0.007, 0.061)

    def ct_translation():
        found = [t.transform.translation for m in static for t in m.transforms if t.child_frame_id == "ct"]
        return (found[-1].x, found[-1].y, found[-1].z) if found else None

    def answers(_) -> bool:
        good.publish(pose(node, xyz=where))
        spin_until(executor, lambda: ct_translation() == pytest.approx(where), 1.0)
        return ct_translation() == pytest.approx(where)

    try:
        fuzz(executor, node, folder, domain, "bench_frames", args,
             {"/ct_registration/ct_pose": (PoseStamped, pose, True),
              "/ct_registration/result": (RegistrationResult, registration, True)}, answers)
    finally:  # latched on the module's node, its pose would reach the later tests' readers
        node.destroy_publisher(good)


def test_magnetometer_driver_survives_hostile_robot_states_and_keeps_publishing_the_field(ros):
    domain, node, executor, folder = ros
    from sensor_msgs.msg import JointState

    from guidewire_perception.msg import MagnetometerArray

    frames = []
    node.create_subscription(MagnetometerArray, "/mag_array/frame", frames.append, 50)
    good = node.create_publisher(JointState, "/robot/joint_states", RELIABLE)
    args = node_args("magnetometer_driver", "magnetometer_driver", {"rate_hz": 50.0}, folder)

    def answers(_) -> bool:  # a good state: frames after it are whole and finite
        good.publish(joints(node))
        start = len(frames)
        spin_until(executor, lambda: len(frames) > start + 5, 2.0)
        fields = [np.array([[v.x, v.y, v.z] for v in f.magnetic_field]) for f in frames[start:]]
        return len(fields) > 5 and all(f.shape == (16, 3) and np.isfinite(f).all() for f in fields)

    fuzz(executor, node, folder, domain, "magnetometer_driver", args,
         {"/robot/joint_states": (JointState, joints, False)}, answers)
    # Every frame sampled: a state beyond the robot's travel moves the simulated wire only as far as the robot
    # could, and one that is not finite is no state at all.
    assert "[ERROR]" not in (folder / "magnetometer_driver.log").read_text()


def test_ct_registration_survives_hostile_views_and_still_answers(ros):
    domain, node, executor, folder = ros
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image
    from std_srvs.srv import Trigger

    from guidewire_perception.msg import RegistrationResult

    results = []
    node.create_subscription(RegistrationResult, "/ct_registration/result", results.append, LATCHED)
    inputs = {}
    for view in ("xray_ap", "xray_lateral"):
        frame = f"{view}_optical"
        inputs[f"/{view}/image_raw"] = (Image, lambda n, f=frame: image(n, f), False)
        inputs[f"/{view}/camera_info"] = (CameraInfo, lambda n, f=frame: camera_info(n, f), False)
        inputs[f"/{view}/pose"] = (PoseStamped, pose, False)
    # Tiny stages: a corrupted view that still makes a geometry is registered in a second, not minutes.
    args = node_args("ct_registration", "ct_registration",
                     {"scales": [8], "iterations": [2], "n_points": [16], "publish_overlay": False}, folder)
    client = node.create_client(Trigger, "/ct_registration/register")
    answered, instant = [], []

    good_publishers = {topic: node.create_publisher(kind, topic, RELIABLE) for topic, (kind, _, _) in inputs.items()}

    def answers(_) -> bool:  # with one good image, CameraInfo and pose of one instant per view, a registration
        if not answered:    # starts on the service and ends in a result (whichever way)
            if not client.wait_for_service(timeout_sec=0.1):
                return False
            instant.append(now_stamp(node))  # one instant for all three of both views
            for topic, (_, good, _) in inputs.items():
                message = good(node)
                message.header.stamp = instant[-1]
                good_publishers[topic].publish(message)
            spin_until(executor, lambda: False, 0.5)
            future = client.call_async(Trigger.Request())
            assert spin_until(executor, future.done, 30)
            if not future.result().success:
                return False  # the good views still on their way: asked again
            answered.append(future.result())
        return any(r.header.stamp == instant[-1] for r in results)

    fuzz(executor, node, folder, domain, "ct_registration", args, inputs, answers)
    for publisher in good_publishers.values():
        node.destroy_publisher(publisher)
    print("register:", answered[0].message, [r.message for r in results[-1:]])


def shape(node):
    from geometry_msgs.msg import Point

    from guidewire_perception.msg import GuidewireShape

    message = GuidewireShape(centreline=[Point(x=0.01 * i, y=0.0, z=0.05) for i in range(10)],
                             position_stddev=[0.0005] * 10, length=0.09, diameter=0.0009,
                             modalities=GuidewireShape.MODALITY_CAMERA)
    message.tip_pose.position.x, message.tip_pose.position.z, message.tip_pose.orientation.w = 0.09, 0.05, 1.0
    message.header.stamp, message.header.frame_id = now_stamp(node), "bench"
    return message


def transforms(node):
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage

    transform = TransformStamped(child_frame_id="camera_top_optical")
    transform.header.stamp, transform.header.frame_id = now_stamp(node), "bench"
    transform.transform.rotation.w = 1.0
    return TFMessage(transforms=[transform])


def answered_by_an_ok_report(node, executor, hardware_id: str, good: dict, latched: set = frozenset()):
    """An answer: with good messages on every input the node's next report is OK again (each input's
    problem is cleared by its next good message); the topics in `latched` published transient-local."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    statuses = []
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda a: statuses.extend(
        s for s in a.status if s.hardware_id == hardware_id), 50)
    publishers = {topic: node.create_publisher(type(make(node)), topic, LATCHED if topic in latched else RELIABLE)
                  for topic, make in good.items()}

    def answers(_) -> bool:
        for topic, make in good.items():
            publishers[topic].publish(make(node))
        start = len(statuses)
        spin_until(executor, lambda: len(statuses) > start + 1, 3.0)  # the report after the good messages
        return len(statuses) > start + 1 and statuses[-1].level == DiagnosticStatus.OK

    return answers, statuses


def test_slicer_bridge_survives_hostile_shapes_and_poses_and_is_well_again_on_good_ones(ros):
    domain, node, executor, folder = ros
    from geometry_msgs.msg import PoseStamped

    from guidewire_perception.msg import GuidewireShape

    inputs = {"/guidewire/shape": (GuidewireShape, shape, False),
              "/ct_registration/ct_pose": (PoseStamped, pose, True)}  # latched, as ct_registration's
    answers, statuses = answered_by_an_ok_report(node, executor, "slicer_bridge",
                                                 {topic: good for topic, (_, good, _) in inputs.items()},
                                                 {"/ct_registration/ct_pose"})
    args = node_args("slicer_bridge", "slicer_bridge", {"port": 20000 + domain}, folder)
    fuzz(executor, node, folder, domain, "slicer_bridge", args, inputs, answers)
    assert any(s.level != b"\x00" for s in statuses), "the hostile shapes and poses were never said to be unusable"


def test_foxglove_bridge_survives_hostile_inputs_and_is_well_again_on_good_ones(ros):
    domain, node, executor, folder = ros
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from guidewire_perception.msg import GuidewireShape, MagnetometerArray

    inputs = {"/guidewire/shape": (GuidewireShape, shape, False),
              "/xray/image_raw": (Image, lambda n: image(n, "xray_optical"), False),
              "/mag_array/frame": (MagnetometerArray, array_frame, False),
              "/tf": (TFMessage, transforms, False)}
    answers, statuses = answered_by_an_ok_report(node, executor, "foxglove_bridge",
                                                 {topic: good for topic, (_, good, _) in inputs.items()})
    args = node_args("foxglove_bridge", "foxglove_bridge",
                     {"serve": False, "mcap_path": str(folder / "foxglove.mcap"), "rate_hz": 100.0,
                      "image_rate_hz": 30.0, "field_rate_hz": 100.0}, folder)
    fuzz(executor, node, folder, domain, "foxglove_bridge", args, inputs, answers)
    assert any(s.level != b"\x00" for s in statuses), "the hostile inputs were never said to be unusable"
