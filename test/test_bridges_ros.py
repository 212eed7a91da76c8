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

from ros_support import node_args, ros, running, spin_until  # noqa: E402,F401 (ros: fixture)
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
    from geometry_msgs.msg import PoseStamped
    from guidewire_perception.msg import GuidewireShape

    from guidewire_ros import convert

    decode_polydata(monkeypatch)
    igtl_port, foxglove_port = free_port(), free_port()
    shapes = node.create_publisher(GuidewireShape, "guidewire/shape", 10)
    ct_poses = node.create_publisher(PoseStamped, "ct_registration/ct_pose", 10)
    diagnostics = []
    node.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: diagnostics.extend(s for s in m.status if "_bridge" in s.name), 50)
    current = {"shape": shape_message(WIRE_M)}
    ct = convert.pose_stamped(convert.header(1_700_000_000_000_000_000, "bench"), [0.05, 0.0, 0.0],
                              supine_ct_turned_on_the_table())  # and 5 cm along bench x (superior)

    def publish():
        shapes.publish(current["shape"])
        ct_poses.publish(ct)

    timer = node.create_timer(0.1, publish)
    received = {}
    with running(node_args("slicer_bridge", "slicer_bridge", {"port": igtl_port}, folder), domain,
                 folder / "slicer.log") as slicer_process, \
            running(node_args("foxglove_bridge", "foxglove_bridge", {"port": foxglove_port}, folder), domain,
                    folder / "foxglove.log") as foxglove_process:
        def foxglove_client():
            client = FoxgloveClient("127.0.0.1", foxglove_port, timeout=20)
            received["foxglove"] = client.receive("/guidewire/scene", timeout=20)
            client.close()

        thread = threading.Thread(target=foxglove_client)
        thread.start()
        igtl = pyigtl.OpenIGTLinkClient("127.0.0.1", igtl_port)  # connects (again) until the node serves
        try:
            for device in ("Guidewire", "GuidewireTipToWorld", "CTToWorld"):
                assert spin_until(executor, lambda: device in igtl.incoming_messages, 20), \
                    (device, (folder / "slicer.log").read_text())
                received[device] = igtl.wait_for_message(device, timeout=0)
            assert spin_until(executor, lambda: not thread.is_alive(), 20)
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
    assert received["foxglove"] is not None, (folder / "foxglove.log").read_text()
    log_time, update = received["foxglove"]
    assert log_time == 1_700_000_000_250_000_000
    line = update.entities[0].lines[0]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in line.points], WIRE_M, atol=1e-12)
    assert update.entities[0].frame_id == "bench"
