"""TF and RViz against the running pipeline on a private domain: /tf_static holds every frame of the
README's frame list (ct once a registration arrives), every frame_id on every topic the nodes
publish is in TF, and every display of the RViz configs shows a topic the pipeline publishes with
the type the display expects, in a fixed frame that TF has."""
import re
import time

import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402

from conftest import ROOT  # noqa: E402
from ros_support import START_S, node_args, ros, running, spin_until, tiny_weights  # noqa: E402,F401 (fixtures)

DISPLAY_TYPES = {"rviz_default_plugins/Image": "sensor_msgs/msg/Image",
                 "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
                 "rviz_default_plugins/Marker": "visualization_msgs/msg/Marker",
                 "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
                 "rviz_default_plugins/Pose": "geometry_msgs/msg/PoseStamped",
                 "rviz_default_plugins/PoseWithCovariance": "geometry_msgs/msg/PoseWithCovarianceStamped"}
# Messages about joints or the nodes themselves, not about space: their frame_id may be empty.
FRAMELESS_TYPES = {"sensor_msgs/msg/JointState", "diagnostic_msgs/msg/DiagnosticArray",
                   "diagnostic_msgs/msg/DiagnosticStatus"}
INFRASTRUCTURE = {"/rosout", "/parameter_events"}
# Some output of every node (the rest is found on the graph as the nodes come up).
REQUIRED = {"/robot/joint_states", "/bench/ground_truth/wire", "/mag_array/frame", "/camera_top/image_raw",
            "/xray/camera_info", "/segmentation/overlay", "/guidewire/cloud", "/guidewire/tip_pose",
            "/guidewire/status"}
STATIC_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def readme_frames() -> set[str]:
    text = (ROOT / "README.md").read_text()
    paragraph = text[text.index("Frames (REP-103/105):"):text.index("Topics carry SI units")]
    return set(re.findall(r"`([a-z_]+)`", paragraph))


def rviz_displays(name: str) -> tuple[dict, str]:
    config = yaml.safe_load((ROOT / "rviz" / name).read_text())["Visualization Manager"]
    topics = {d["Topic"]["Value"]: DISPLAY_TYPES[d["Class"]] for d in config["Displays"] if "Topic" in d}
    return topics, config["Global Options"]["Fixed Frame"]


def frame_ids(message) -> list[str]:
    """Every frame named in a message: its headers' frame_id and TransformStamped's child_frame_id."""
    if hasattr(message, "frame_id") and hasattr(message, "stamp"):
        return [message.frame_id]
    found = [message.child_frame_id] if hasattr(message, "child_frame_id") else []
    for field, kind in message.get_fields_and_field_types().items():
        if "/" in kind and field != "texture":  # a Marker's texture image is unused unless it is textured
            value = getattr(message, field)
            for item in value if isinstance(value, list) else [value]:
                found += frame_ids(item)
    return found


def test_a_bench_frames_started_after_the_registration_still_places_the_ct(ros, tmp_path):
    """Issue 25: the registration publishes its CT pose once, latched; a bench_frames started (or
    respawned) after that still puts ct on /tf_static, at that pose."""
    domain, node, executor, _ = ros
    from geometry_msgs.msg import PoseStamped
    from tf2_msgs.msg import TFMessage

    registration = PoseStamped()
    registration.header.frame_id = "bench"
    registration.header.stamp = node.get_clock().now().to_msg()
    position, orientation = registration.pose.position, registration.pose.orientation
    position.x, position.y, position.z = 0.012, -0.034, 0.071
    orientation.z = orientation.w = 0.5 ** 0.5  # a quarter turn about z
    static = []
    writer = node.create_publisher(PoseStamped, "ct_registration/ct_pose", STATIC_QOS)
    writer.publish(registration)  # once, before bench_frames exists
    reader = node.create_subscription(TFMessage, "/tf_static", static.append, STATIC_QOS)

    def ct() -> list:
        return [t for m in static for t in m.transforms if t.child_frame_id == "ct"]
    try:
        with running(node_args("bench_frames", "bench_frames", {}, tmp_path), domain, tmp_path / "frames.log"):
            log = lambda: (tmp_path / "frames.log").read_text()  # noqa: E731
            assert spin_until(executor, lambda: static, START_S), log()
            assert spin_until(executor, ct, 10), ([t.child_frame_id for t in static[-1].transforms], log())
    finally:  # latched on the module's node, the pose would reach the next test's bench_frames
        node.destroy_publisher(writer)
        node.destroy_subscription(reader)
    placed = ct()[-1]
    assert placed.header.frame_id == "bench" and placed.header.stamp == registration.header.stamp
    t, r = placed.transform.translation, placed.transform.rotation
    assert (t.x, t.y, t.z) == pytest.approx((0.012, -0.034, 0.071), abs=1e-9)
    assert abs(r.z * orientation.z + r.w * orientation.w) == pytest.approx(1.0, abs=1e-9)  # q or -q
    assert (r.x, r.y) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_a_registration_that_did_not_converge_leaves_the_ct_where_it_was(ros, tmp_path):
    """A failed registration publishes its result too, with its initial or best-so-far pose and
    converged false: that pose must not place or move ct, neither for a bench_frames that joins after
    the results (latched) nor for a running one; the diagnostics say why it was ignored."""
    domain, node, executor, _ = ros
    from diagnostic_msgs.msg import DiagnosticArray
    from tf2_msgs.msg import TFMessage

    from guidewire_perception.msg import RegistrationResult

    def result(xyz, converged: bool, message: str):
        found = RegistrationResult(ct_frame_id="ct", converged=converged, message=message)
        found.header.frame_id, found.header.stamp = "bench", node.get_clock().now().to_msg()
        found.ct_to_world.position.x, found.ct_to_world.position.y, found.ct_to_world.position.z = xyz
        found.ct_to_world.orientation.w = 1.0
        return found

    static, reports = [], []

    def ct() -> tuple | None:
        found = [t.transform.translation for m in static for t in m.transforms if t.child_frame_id == "ct"]
        return (found[-1].x, found[-1].y, found[-1].z) if found else None

    def said(reason: str) -> bool:
        return any(reason in r.message for r in reports)
    # As the registration node's writer: reliable, transient-local, its qos_depth (5) of history.
    writer = node.create_publisher(RegistrationResult, "ct_registration/result",
                                   QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                              reliability=ReliabilityPolicy.RELIABLE))
    readers = [node.create_subscription(TFMessage, "/tf_static", static.append, STATIC_QOS),
               node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: reports.extend(
                   s for s in m.status if s.name.startswith("bench_frames")), 50)]
    converged, failed = (0.012, -0.034, 0.071), (0.1, 0.2, 0.3)
    writer.publish(result(converged, True, "converged"))  # both before bench_frames exists
    writer.publish(result(failed, False, "not converged: still moving"))
    try:
        with running(node_args("bench_frames", "bench_frames", {}, tmp_path), domain, tmp_path / "frames.log"):
            log = lambda: (tmp_path / "frames.log").read_text()  # noqa: E731
            assert spin_until(executor, lambda: ct() is not None and (
                said("still moving") or ct() != pytest.approx(converged, abs=1e-9)), START_S), (ct(), log())
            assert ct() == pytest.approx(converged, abs=1e-9), log()
            # Live: a new converged pose moves ct, a failed one after it does not.
            moved = (-0.005, 0.015, 0.065)
            writer.publish(result(moved, True, "converged"))
            assert spin_until(executor, lambda: ct() == pytest.approx(moved, abs=1e-9), 10), (ct(), log())
            writer.publish(result(failed, False, "failed: cancelled"))
            assert spin_until(executor, lambda: said("cancelled") or ct() != pytest.approx(moved, abs=1e-9), 10), \
                (ct(), log())
            spin_until(executor, lambda: False, 0.5)  # a move would be on /tf_static by now
            assert ct() == pytest.approx(moved, abs=1e-9), log()
            assert said("'ct' stays at the last converged pose")
    finally:  # latched on the module's node, the results would reach the next test's bench_frames
        node.destroy_publisher(writer)
        for reader in readers:
            node.destroy_subscription(reader)


def test_tf_has_every_frame_the_topics_and_rviz_need(ros, tmp_path, tiny_weights):
    domain, node, executor, _ = ros
    from geometry_msgs.msg import PoseStamped
    from tf2_msgs.msg import TFMessage

    from guidewire_perception.msg import RegistrationResult

    from guidewire_ros.common import message_class

    from diagnostic_msgs.msg import DiagnosticArray

    static, frame_reports = [], []
    node.create_subscription(TFMessage, "/tf_static", static.append, STATIC_QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: frame_reports.extend(
        s for s in m.status if s.name.startswith("bench_frames")), 50)
    ct_pose = node.create_publisher(PoseStamped, "ct_registration/ct_pose", STATIC_QOS)  # latched, as the node's
    # A 64 px C-arm renders its anatomy in seconds, once per machine (the shared cache); the stereo pair as in the lab.
    bench = tmp_path / "bench.yaml"
    bench.write_text(yaml.safe_dump({"bench": {"fluoroscopy": {"detector_pixels": 64, "pixel_spacing": 0.0032}}}))
    common = {"bench_config": str(bench)}
    nodes = {
        "robot": node_args("catheter_robot", "catheter_robot", common, tmp_path),
        "frames": node_args("bench_frames", "bench_frames", common, tmp_path),
        "driver": node_args("magnetometer_driver", "magnetometer_driver", common | {"rate_hz": 50.0}, tmp_path),
        "stereo": node_args("camera_capture", "stereo_capture", common | {"source": "sim_stereo", "rate_hz": 1.0},
                            tmp_path),
        "xray": node_args("camera_capture", "fluoro_capture", common | {"source": "sim_xray", "camera_name": "xray",
                                                                        "rate_hz": 2.0}, tmp_path),
        "segmentation": node_args("segmentation_node", "segmentation", {"weights": str(tiny_weights),
                                                                     "publish_overlay": True}, tmp_path),
        "reconstruction": node_args("reconstruction_node", "reconstruction",
                                    common | {"method": "image_only", "second_view": "camera_side",
                                              "max_rate_hz": 1.0}, tmp_path)}  # frames, not accuracy: the cheap fit
    messages, subscriptions = {}, {}

    def published() -> dict[str, str]:
        """Topics with a publisher other than this test, and their type."""
        return {topic: types[0] for topic, types in node.get_topic_names_and_types()
                if topic not in INFRASTRUCTURE and any(info.node_name != node.get_name()
                                                       for info in node.get_publishers_info_by_topic(topic))}

    def every_topic_heard() -> bool:
        for topic, type_name in published().items():
            if topic not in subscriptions and topic != "/tf_static":
                subscriptions[topic] = node.create_subscription(
                    message_class(type_name), topic, lambda m, t=topic: messages.setdefault(t, m),
                    qos_profile_sensor_data)
        return set(subscriptions) <= set(messages) and REQUIRED <= set(messages)

    with running(nodes["robot"], domain, tmp_path / "robot.log"), \
            running(nodes["frames"], domain, tmp_path / "frames.log"), \
            running(nodes["driver"], domain, tmp_path / "driver.log"), \
            running(nodes["stereo"], domain, tmp_path / "stereo.log"), \
            running(nodes["xray"], domain, tmp_path / "xray.log"), \
            running(nodes["segmentation"], domain, tmp_path / "segmentation.log"), \
            running(nodes["reconstruction"], domain, tmp_path / "reconstruction.log"):
        def tf_frames() -> set[str]:
            return {f for m in static for t in m.transforms for f in (t.header.frame_id, t.child_frame_id)}
        # Seven processes importing numpy, torch and diffdrr at once take 20-35 s to start on a loaded 2-core machine.
        assert spin_until(executor, lambda: readme_frames() - {"ct"} <= tf_frames(), 90), \
            (readme_frames() - tf_frames(), (tmp_path / "frames.log").read_text())
        assert "ct" not in tf_frames()  # not before a registration
        registration = PoseStamped()
        registration.header.frame_id = "nowhere"  # a pose in a frame TF does not have is refused, and said

        registration.pose.position.z, registration.pose.orientation.w = 0.06, 1.0
        # Sent once: latched, it reaches bench_frames' transient-local reader whenever that matches.
        ct_pose.publish(registration)
        assert spin_until(executor, lambda: any("'nowhere'" in r.message for r in frame_reports), 10)
        assert "ct" not in tf_frames()
        registration.header.frame_id = "bench"
        ct_pose.publish(registration)
        assert spin_until(executor, lambda: "ct" in tf_frames(), 10)
        # The same registration as the node's latched result: the reconstruction then also publishes the wire
        # in the CT's frame, whose frame must be in TF like every other.
        result = RegistrationResult(ct_frame_id="ct", ct_to_world=registration.pose, converged=True)
        result.header.frame_id = "bench"
        node.create_publisher(RegistrationResult, "ct_registration/result", STATIC_QOS).publish(result)
        started = time.monotonic()
        heard = spin_until(executor, every_topic_heard, 60)
        print(f"every topic heard {time.monotonic() - started:.1f} s after the CT frame")
        topics = published()
    assert heard, (sorted((set(subscriptions) | REQUIRED) - set(messages)),
                   (tmp_path / "reconstruction.log").read_text()[-2000:])
    frames = tf_frames()
    assert readme_frames() <= frames
    parents = {t.child_frame_id: t.header.frame_id for t in static[-1].transforms}
    for frame in frames - {"bench"}:  # one tree: every frame reaches bench
        seen = {frame}
        while frame != "bench":
            frame = parents[frame]
            assert frame not in seen
            seen.add(frame)

    for topic, message in messages.items():
        named = frame_ids(message)
        if topics[topic] in FRAMELESS_TYPES:
            named = [f for f in named if f]
        else:
            assert named and all(named), (topic, named)
        assert set(named) <= frames, (topic, set(named) - frames)

    for config in ("pipeline.rviz", "sensors.rviz"):
        expected, fixed_frame = rviz_displays(config)
        assert fixed_frame in frames, config
        for topic, message_type in expected.items():
            assert topics.get(topic) == message_type, (config, topic)
    assert rviz_displays("pipeline.rviz")[1] == "bench" and len(rviz_displays("pipeline.rviz")[0]) == 10
