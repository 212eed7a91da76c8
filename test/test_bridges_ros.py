"""The Slicer and Foxglove bridge nodes on a private domain, fed a known GuidewireShape and CT
pose: a pyigtl client decodes the wire and poses in mm and RAS, a Foxglove WebSocket client
receives the wire in metres, and a bad shape is said on /diagnostics while the nodes serve on."""
import socket
import threading

import numpy as np
import pyigtl
import pytest
from scipy.spatial.transform import Rotation

rclpy = pytest.importorskip("rclpy")

from ros_support import START_S, node_args, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)
from viewer_clients import FoxgloveClient, decode_polydata  # noqa: E402

WIRE_M = np.column_stack([np.linspace(0.0, 0.1, 11), np.full(11, 0.02), np.linspace(0.0, 0.03, 11)])
TIP_XYZW = Rotation.from_euler("z", 90, degrees=True).as_quat()  # the tip's x axis along bench +y


def supine_ct_turned_on_the_table() -> np.ndarray:
    """The twin's supine CT turned 90 degrees about the vertical (bench z): the head towards bench +y."""
    from guidewire.twin.fluoroscopy import SUPINE_CT_ROTATION

    return (Rotation.from_euler("z", 90, degrees=True) * Rotation.from_matrix(SUPINE_CT_ROTATION)).as_quat()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shape_message(points):
    from guidewire_ros import convert
    from guidewire_perception.msg import GuidewireShape

    message = GuidewireShape(header=convert.header(1_700_000_000_250_000_000, "bench"), length=0.105,
                             diameter=0.0005, modalities=GuidewireShape.MODALITY_CAMERA)
    message.centreline = convert.points(points)
    message.position_stddev = [0.001] * len(points)
    message.tip_pose = convert.pose_stamped(message.header, points[-1], TIP_XYZW).pose
    return message


def test_bridges_serve_the_wire_to_slicer_and_foxglove(ros, monkeypatch):
    domain, node, executor, folder = ros
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped, TransformStamped
    from guidewire_perception.msg import GuidewireShape, MagnetometerArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from guidewire_ros import convert

    decode_polydata(monkeypatch)
    igtl_port, foxglove_port = free_port(), free_port()
    shapes = node.create_publisher(GuidewireShape, "guidewire/shape", 10)
    ct_poses = node.create_publisher(PoseStamped, "ct_registration/ct_pose",  # latched, as ct_registration's
                                     QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                                reliability=ReliabilityPolicy.RELIABLE))
    images = node.create_publisher(Image, "xray/image_raw", 10)
    arrays = node.create_publisher(MagnetometerArray, "mag_array/frame", 10)
    static = node.create_publisher(TFMessage, "/tf_static", QoSProfile(depth=1,
                                                                      durability=DurabilityPolicy.TRANSIENT_LOCAL))
    stamp = convert.header(1_700_000_000_000_000_000, "xray_source")
    image = convert.image_message(np.arange(24, dtype=np.uint8).reshape(4, 6), "mono8", stamp)
    array = convert.magnetometer_array(convert.header(1_700_000_000_000_000_000, "mag_array"), 1, 1, 2,
                                       convert.points([[0.0, 0.0, 0.0], [0.025, 0.0, 0.0]]),
                                       np.array([[0.0, 0.0, 50e-6], [1e-6, 0.0, 0.0]]), [0.0] * 18,
                                       np.zeros(2), np.zeros(2))
    below = TransformStamped(header=convert.header(0, "bench"), child_frame_id="mag_array")
    below.transform.translation.z, below.transform.rotation.w = -0.03, 1.0
    static.publish(TFMessage(transforms=[below]))
    diagnostics = []
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: diagnostics.extend(s for s in m.status if "_bridge" in s.name), 50)
    current = {"shape": shape_message(WIRE_M)}
    ct = convert.pose_stamped(convert.header(1_700_000_000_000_000_000, "bench"), [0.05, 0.0, 0.0],
                              supine_ct_turned_on_the_table())  # and 5 cm along bench x (superior)

    def publish():
        shapes.publish(current["shape"])
        ct_poses.publish(ct)
        images.publish(image)
        arrays.publish(array)

    timer = node.create_timer(0.1, publish)
    received = {}
    with running(node_args("slicer_bridge", "slicer_bridge", {"port": igtl_port}, folder), domain,
                 folder / "slicer.log") as slicer_process, \
            running(node_args("foxglove_bridge", "foxglove_bridge", {"port": foxglove_port}, folder), domain,
                    folder / "foxglove.log") as foxglove_process:
        def foxglove_client():
            client = FoxgloveClient("127.0.0.1", foxglove_port, timeout=START_S)
            for topic in ("/guidewire/scene", "/xray/image_raw", "/mag_array/field", "/tf_static"):
                received[topic] = client.receive(topic, timeout=20)
            client.close()

        thread = threading.Thread(target=foxglove_client)
        thread.start()
        igtl = pyigtl.OpenIGTLinkClient("127.0.0.1", igtl_port)  # connects (again) until the node serves
        try:
            for device in ("Guidewire", "GuidewireTipToWorld", "CTToWorld"):
                assert spin_until(executor, lambda: device in igtl.incoming_messages, START_S), \
                    (device, (folder / "slicer.log").read_text())
                received[device] = igtl.wait_for_message(device, timeout=0)
            assert spin_until(executor, lambda: not thread.is_alive(), START_S)
            thread.join()
            # A shape with a NaN: said on /diagnostics, nothing sent, the node serves on.
            current["shape"] = shape_message(np.vstack([WIRE_M[:-1], [np.nan, 0.0, 0.0]]))
            failed = lambda name: any(name in d.name and d.level == DiagnosticStatus.ERROR  # noqa: E731
                                      and "not finite" in d.message for d in diagnostics)
            assert spin_until(executor, lambda: failed("slicer_bridge") and failed("foxglove_bridge"), 10), \
                (folder / "slicer.log").read_text() + (folder / "foxglove.log").read_text()
            assert slicer_process.poll() is None and foxglove_process.poll() is None
        finally:
            igtl.stop()
            node.destroy_timer(timer)
            node.destroy_publisher(ct_poses)  # latched on the module's node: it would reach the next test's bridge

    # Slicer: mm and RAS (R = bench +y, A = bench +z, S = bench +x), the data's stamp.
    wire = received["Guidewire"]
    np.testing.assert_allclose(wire.points, 1000.0 * WIRE_M[:, [1, 2, 0]], atol=1e-4)
    assert list(wire.lines) == [11, *range(11)]
    assert wire.timestamp == pytest.approx(1_700_000_000.25, abs=1e-6)
    tip = received["GuidewireTipToWorld"].matrix
    np.testing.assert_allclose(tip[:3, 3], [20.0, 30.0, 100.0], atol=1e-4)
    np.testing.assert_allclose(tip[:3, 0], [1.0, 0.0, 0.0], atol=1e-6)  # the tip's x (bench +y) is R
    ct_matrix = received["CTToWorld"].matrix
    np.testing.assert_allclose(ct_matrix[:3, 3], [0.0, 0.0, 50.0], atol=1e-4)  # 5 cm superior
    # Turned about the vertical, which is A: the CT's S (its head) points to the world's R.
    np.testing.assert_allclose(ct_matrix[:3, :3], Rotation.from_euler("y", 90, degrees=True).as_matrix(), atol=1e-6)
    np.testing.assert_allclose(ct_matrix[:3, 2], [1.0, 0.0, 0.0], atol=1e-6)
    # Foxglove: the wire in metres in the bench frame, at the data's stamp.
    assert all(received[t] for t in ("/guidewire/scene", "/xray/image_raw", "/mag_array/field", "/tf_static")), \
        ({t: bool(m) for t, m in received.items()}, (folder / "foxglove.log").read_text())
    log_time, update = received["/guidewire/scene"]
    assert log_time == 1_700_000_000_250_000_000
    line = update.entities[0].lines[0]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in line.points], WIRE_M, atol=1e-12)
    assert update.entities[0].frame_id == "bench"
    _, frame = received["/xray/image_raw"]
    assert (frame.width, frame.height, frame.encoding, frame.frame_id) == (6, 4, "mono8", "xray_source")
    assert frame.data == bytes(range(24))
    _, field = received["/mag_array/field"]
    arrows = field.entities[0].arrows
    assert field.entities[0].frame_id == "mag_array" and len(arrows) == 2
    # 200 m/T: 50 uT is 10 mm, 1 uT 0.2 mm.
    assert [a.shaft_length + a.head_length for a in arrows] == pytest.approx([0.01, 0.0002])
    _, frames = received["/tf_static"]
    assert [(t.parent_frame_id, t.child_frame_id) for t in frames.transforms] == [("bench", "mag_array")]
    assert frames.transforms[0].translation.z == pytest.approx(-0.03)


def test_a_slicer_bridge_started_after_the_registration_still_sends_the_ct(ros):
    """The registration publishes its CT pose once, latched: a bridge started (or restarted) after it
    still sends CTToWorld, at that pose."""
    domain, node, executor, folder = ros
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from guidewire.bridges import slicer
    from guidewire_ros import convert

    port = free_port()
    ct = convert.pose_stamped(convert.header(1_700_000_000_500_000_000, "bench"), [0.02, -0.01, 0.04],
                              supine_ct_turned_on_the_table())
    writer = node.create_publisher(PoseStamped, "ct_registration/ct_pose",  # as ct_registration's
                                   QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                              reliability=ReliabilityPolicy.RELIABLE))
    writer.publish(ct)  # once, before the bridge exists
    try:
        with running(node_args("slicer_bridge", "slicer_bridge", {"port": port}, folder), domain,
                     folder / "slicer_late.log"):
            igtl = pyigtl.OpenIGTLinkClient("127.0.0.1", port)
            try:
                assert spin_until(executor, lambda: "CTToWorld" in igtl.incoming_messages, START_S), \
                    (folder / "slicer_late.log").read_text()
                matrix = igtl.wait_for_message("CTToWorld", timeout=0).matrix
            finally:
                igtl.stop()
    finally:  # latched on the module's node, the pose would reach a later test's bridge
        node.destroy_publisher(writer)
    np.testing.assert_allclose(matrix[:3, 3], [-10.0, 40.0, 20.0], atol=1e-4)  # RAS mm: R = +y, A = +z, S = +x
    np.testing.assert_allclose(matrix, slicer.ct_matrix(convert.matrix_from_pose(ct.pose), "RAS"), atol=1e-6)
