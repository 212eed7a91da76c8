"""Slicer (OpenIGTLink) and Foxglove bridges on loopback: what a viewer decodes is the wire and
poses in the stated units and frames."""
from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pyigtl
import pytest
from scipy.spatial.transform import Rotation

from viewer_clients import FoxgloveClient, decode_local, decode_polydata
from guidewire.bridges import foxglove_view, slicer

# A known wire in the bench frame (m): along bench +x (the patient's head, superior) and rising in z.
WIRE_M = np.column_stack([np.linspace(0.0, 0.1, 11), np.full(11, 0.02), np.linspace(0.0, 0.03, 11)])
TIP_M = WIRE_M[-1]
TIP_XYZW = Rotation.from_euler("z", 90, degrees=True).as_quat()  # tip x axis along bench +y


@pytest.fixture
def igtl_decoding_polydata(monkeypatch):
    decode_polydata(monkeypatch)


def test_bench_to_slicer_conventions():
    """The bench's supine convention: R = bench +y, A = bench +z, S = bench +x; LPS negates R and A."""
    from guidewire.twin.fluoroscopy import SUPINE_CT_ROTATION

    np.testing.assert_array_equal(slicer.RAS_FROM_BENCH, SUPINE_CT_ROTATION.T)  # one convention with the twin
    np.testing.assert_allclose(slicer.points_mm([[0.1, 0.02, 0.03]], "RAS"), [[20.0, 30.0, 100.0]])
    np.testing.assert_allclose(slicer.points_mm([[0.1, 0.02, 0.03]], "LPS"), [[-20.0, -30.0, 100.0]])
    assert np.linalg.det(slicer.world_from_bench("LPS")) == pytest.approx(1.0)  # a rotation, not a mirror
    with pytest.raises(ValueError, match="coordinates"):
        slicer.points_mm(WIRE_M, "RSA")
    with pytest.raises(ValueError, match="wire points: not finite"):
        slicer.points_mm([[np.nan, 0.0, 0.0]])


def test_ct_pose_of_the_nominal_supine_ct_is_the_identity_rotation():
    """The twin's CT at its nominal supine pose has the world's RAS axes: in Slicer the volume is
    only shifted, in mm; in LPS the same holds with the shift's R and A negated."""
    from guidewire.twin.config import load_bench_config
    from guidewire.twin.fluoroscopy import ct_to_bench

    config = load_bench_config(None).fluoroscopy
    config = type(config)(**{**config.__dict__, "ct_rotation": (0.0, 0.0, 0.0), "ct_position": (0.1, 0.02, 0.03)})
    ras = slicer.ct_matrix(ct_to_bench(config), "RAS")
    np.testing.assert_allclose(ras[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(ras[:3, 3], [20.0, 30.0, 100.0])
    lps = slicer.ct_matrix(ct_to_bench(config), "LPS")
    np.testing.assert_allclose(lps[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(lps[:3, 3], [-20.0, -30.0, 100.0])


@contextlib.contextmanager
def slicer_connection():
    """A Slicer server on a free loopback port and a pyigtl client connected to it."""
    server = slicer.SlicerServer("127.0.0.1", 0)
    client = pyigtl.OpenIGTLinkClient("127.0.0.1", server.port)
    try:
        deadline = time.monotonic() + 10
        while not server.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server, client
    finally:
        client.stop()
        server.stop()


def test_openigtlink_loopback_wire_and_tip_in_mm_ras(igtl_decoding_polydata):
    stamp = 1_700_000_000.25
    with slicer_connection() as (server, client):
        assert server.send([slicer.wire_polydata(slicer.points_mm(WIRE_M), stamp),
                            slicer.transform_message(slicer.tip_matrix(TIP_M, TIP_XYZW), slicer.TIP_DEVICE, stamp)])
        wire = client.wait_for_message(slicer.WIRE_DEVICE, timeout=10)
        tip = client.wait_for_message(slicer.TIP_DEVICE, timeout=10)
    assert wire is not None and tip is not None
    # Millimetres, RAS: bench (x, y, z) m -> (1000 y, 1000 z, 1000 x) mm.
    expected = 1000.0 * WIRE_M[:, [1, 2, 0]]
    np.testing.assert_allclose(wire.points, expected, atol=1e-4)
    assert wire.line_count == 1 and list(wire.lines) == [11, *range(11)]  # one polyline, insertion end first
    np.testing.assert_allclose(tip.matrix[:3, 3], [20.0, 30.0, 100.0], atol=1e-4)
    # The tip's x axis (bench +y) is R in RAS.
    np.testing.assert_allclose(tip.matrix[:3, 0], [1.0, 0.0, 0.0], atol=1e-6)
    assert tip.timestamp == pytest.approx(stamp, abs=1e-6)


def test_openigtlink_wire_as_point():
    with slicer_connection() as (server, client):
        assert server.send([slicer.wire_point_message(slicer.points_mm(WIRE_M, "LPS"), 1.0, diameter_mm=0.5)])
        wire = client.wait_for_message(slicer.WIRE_DEVICE, timeout=10)
    np.testing.assert_allclose(wire.positions, 1000.0 * WIRE_M[:, [1, 2, 0]] * [-1, -1, 1], atol=1e-4)
    assert wire.diameters == pytest.approx([0.5] * 11)


def test_slicer_server_serves_a_client_that_reconnects_and_idles_without_one():
    """Slicer disconnecting and connecting again (pyigtl's own handler spins and takes no new client)."""
    server = slicer.SlicerServer("127.0.0.1", 0)
    try:
        first = pyigtl.OpenIGTLinkClient("127.0.0.1", server.port)
        deadline = time.monotonic() + 10
        while not server.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        first.stop()
        while server.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.is_connected()
        cpu = time.process_time()
        time.sleep(2.0)
        assert time.process_time() - cpu < 0.5  # no thread spinning on the closed connection (1.3 s in 3 s)
        second = pyigtl.OpenIGTLinkClient("127.0.0.1", server.port)
        while not server.is_connected() and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert server.send([slicer.transform_message(np.eye(4), slicer.CT_DEVICE, 1.0)])
        assert second.wait_for_message(slicer.CT_DEVICE, timeout=10) is not None
        second.stop()
    finally:
        server.stop()


def test_slicer_server_queues_nothing_without_a_client():
    server = slicer.SlicerServer("127.0.0.1", 0)
    try:
        assert not server.send([slicer.wire_polydata(slicer.points_mm(WIRE_M), 1.0)])
        assert not server.outgoing_messages
    finally:
        server.stop()


def test_foxglove_client_receives_the_wire():
    view = foxglove_view.LiveView("127.0.0.1", 0)
    stop = threading.Event()
    scene = foxglove_view.wire_scene(WIRE_M, TIP_M, TIP_XYZW, 0.0005, "bench", 1_700_000_000_250_000_000)

    def publish():  # a live view has no history: keep logging until the client has subscribed
        while not stop.is_set():
            view.log("/guidewire/scene", scene, 1_700_000_000_250_000_000)
            time.sleep(0.05)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        client = FoxgloveClient("127.0.0.1", view.port)
        received = client.receive("/guidewire/scene", timeout=10)
        client.close()
    finally:
        stop.set()
        thread.join()
        view.close()
    assert received is not None
    log_time, update = received
    assert log_time == 1_700_000_000_250_000_000
    entity = update.entities[0]
    assert entity.frame_id == "bench" and entity.timestamp.seconds == 1_700_000_000
    line = np.array([[p.x, p.y, p.z] for p in entity.lines[0].points])
    np.testing.assert_allclose(line, WIRE_M, atol=1e-12)  # metres, bench frame, as ROS
    assert entity.lines[0].thickness == pytest.approx(0.001)  # drawn at least 1 mm wide
    arrow = entity.arrows[0].pose
    np.testing.assert_allclose([arrow.position.x, arrow.position.y, arrow.position.z], TIP_M)


def test_foxglove_view_writes_mcap_without_a_server(tmp_path):
    from mcap.reader import make_reader

    path = tmp_path / "view.mcap"
    view = foxglove_view.LiveView(serve=False, mcap_path=str(path))
    assert view.port is None
    view.log("/guidewire/scene", foxglove_view.wire_scene(WIRE_M, TIP_M, TIP_XYZW, 0.0005, "bench", 7), 7)
    view.close()
    with open(path, "rb") as file:
        [(schema, channel, message)] = list(make_reader(file).iter_messages())
    assert (channel.topic, schema.name, channel.message_encoding) == ("/guidewire/scene", "foxglove.SceneUpdate",
                                                                      "protobuf")
    assert message.log_time == 7


def test_foxglove_messages():
    cloud = decode_local(foxglove_view.wire_cloud(WIRE_M, np.full(11, 0.001), "bench", 5))
    assert cloud.frame_id == "bench" and cloud.point_stride == 16 and [f.name for f in cloud.fields] == \
        ["x", "y", "z", "sigma"]
    np.testing.assert_allclose(np.frombuffer(cloud.data, "<f4").reshape(-1, 4),
                               np.column_stack([WIRE_M, np.full(11, 0.001)]), rtol=1e-6)
    arrows = decode_local(foxglove_view.field_scene([[0, 0, 0], [0.01, 0, 0]], [[0.0, 0.0, 50e-6], [np.nan, 0, 0]],
                                                    200.0, "mag_array", 5))
    [arrow] = arrows.entities[0].arrows  # the sensor without a field has none
    # +x turned onto +z; 50 uT at 200 m/T is 10 mm long.
    rotated = Rotation.from_quat([arrow.pose.orientation.x, arrow.pose.orientation.y, arrow.pose.orientation.z,
                                  arrow.pose.orientation.w]).apply([1.0, 0.0, 0.0])
    np.testing.assert_allclose(rotated, [0.0, 0.0, 1.0], atol=1e-9)
    assert arrow.shaft_length + arrow.head_length == pytest.approx(0.01)
    # A direction whose squares overflow (a corrupt frame the bridge refuses, drawn here directly) still turns.
    np.testing.assert_allclose(Rotation.from_quat(foxglove_view.x_to([0.0, 1e200, 0.0])).apply([1.0, 0.0, 0.0]),
                               [0.0, 1.0, 0.0], atol=1e-9)
    image = decode_local(foxglove_view.raw_image(2, 3, "mono8", 3, bytes(range(6)), "xray_source", 5))
    assert (image.width, image.height, image.encoding, image.step, image.data) == (3, 2, "mono8", 3, bytes(range(6)))
    with pytest.raises(ValueError, match="server"):
        foxglove_view.LiveView(serve=False)
