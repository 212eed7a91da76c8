"""The wire and poses for 3D Slicer over OpenIGTLink (pyigtl).

Units and frames, stated once:
- OpenIGTLink carries millimetres; ROS and the library carry metres, so every coordinate
  is multiplied by 1000 here (ros2_igtl_bridge's known bug is sending metres as millimetres).
- Slicer's world is RAS (right, anterior, superior), and its OpenIGTLinkIF module puts the
  coordinates of a received TRANSFORM, POINT or POLYDATA into that world as they are. So the
  default is RAS; LPS (DICOM, ITK) on request, for receivers that expect it.
- The bench frame (REP-103: x forward, y left, z up) becomes patient coordinates by the bench's
  supine-patient convention (the twin's CT pose, guidewire.twin.fluoroscopy: head towards bench
  +x): R = bench +y, A = bench +z, S = bench +x. The origin stays the bench origin.
"""
from __future__ import annotations

import socket
import socketserver

import numpy as np
import pyigtl
from pyigtl.comm import OpenIGTLinkBase
from scipy.spatial.transform import Rotation

from guidewire.geometry import on_bench

COORDINATES = ("RAS", "LPS")
MM_PER_M = 1000.0
DEFAULT_PORT = 18944  # OpenIGTLink's registered port, Slicer's connector default
# Rows: the R, A and S axes in bench coordinates (supine patient, head towards bench +x).
RAS_FROM_BENCH = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])
# Device names (at most 20 characters): Slicer names its nodes after them.
WIRE_DEVICE, TIP_DEVICE, CT_DEVICE = "Guidewire", "GuidewireTipToWorld", "CTToWorld"


def world_from_bench(coordinates: str) -> np.ndarray:
    """3x3 rotation from bench axes to the receiver's world axes (RAS or LPS)."""
    if coordinates == "RAS":
        return RAS_FROM_BENCH
    if coordinates == "LPS":
        return LPS_FROM_RAS @ RAS_FROM_BENCH
    raise ValueError(f"coordinates must be one of {', '.join(COORDINATES)}, got {coordinates!r}")


def finite(name: str, values, shape: tuple) -> np.ndarray:
    """`values` as a float array of `shape` (-1 = any length) with finite entries, else ValueError naming it."""
    array = np.asarray(values, float)
    if array.ndim != len(shape) or any(s not in (-1, n) for s, n in zip(shape, array.shape)):
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: not finite")
    return array


def points_mm(points_m, coordinates: str = "RAS") -> np.ndarray:
    """(n, 3) bench points in metres -> (n, 3) world points in millimetres."""
    points = on_bench("wire points", finite("wire points", points_m, (-1, 3)))
    return MM_PER_M * points @ world_from_bench(coordinates).T


def tip_matrix(position_m, orientation_xyzw, coordinates: str = "RAS") -> np.ndarray:
    """4x4 tip-to-world transform (mm): the tip's own axes kept (x along the wire out of the tip)."""
    rotation = Rotation.from_quat(finite("tip orientation", orientation_xyzw, (4,))).as_matrix()
    world = world_from_bench(coordinates)
    matrix = np.eye(4)
    matrix[:3, :3] = world @ rotation
    matrix[:3, 3] = MM_PER_M * world @ on_bench("tip position", finite("tip position", position_m, (3,)))
    return matrix


def ct_matrix(ct_to_bench, coordinates: str = "RAS") -> np.ndarray:
    """4x4 CT-to-world transform (mm) from the CT frame's pose in the bench (4x4, metres; the CT
    frame is the project's volume-centred RAS). In LPS both sides are LPS, so a volume loaded in
    either convention (centred) is placed by the same transform of its own convention."""
    pose = finite("CT pose", ct_to_bench, (4, 4))
    on_bench("CT position", pose[:3, 3])
    matrix = np.eye(4)
    matrix[:3, :3] = RAS_FROM_BENCH @ pose[:3, :3]
    matrix[:3, 3] = MM_PER_M * RAS_FROM_BENCH @ pose[:3, 3]
    if coordinates == "LPS":
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ matrix @ flip
    world_from_bench(coordinates)  # rejects an unknown convention
    return matrix


def transform_message(matrix: np.ndarray, device_name: str, stamp_s: float) -> pyigtl.TransformMessage:
    return pyigtl.TransformMessage(matrix, timestamp=stamp_s, device_name=device_name)


def wire_polydata(points: np.ndarray, stamp_s: float, device_name: str = WIRE_DEVICE) -> pyigtl.PolyDataMessage:
    """The wire as one polyline (a VTK cell array: point count, then the indices), a model in Slicer."""
    lines = np.concatenate([[len(points)], np.arange(len(points))]).astype(np.uint32)
    return pyigtl.PolyDataMessage(points=np.asarray(points, np.float32), lines=lines, timestamp=stamp_s,
                                  device_name=device_name)


def wire_point_message(points: np.ndarray, stamp_s: float, diameter_mm: float,
                       device_name: str = WIRE_DEVICE) -> pyigtl.PointMessage:
    """The wire as POINT (a markups point list in Slicer), insertion end first."""
    return pyigtl.PointMessage(positions=np.asarray(points, np.float32),
                               names=[f"{device_name}-{i}" for i in range(len(points))],
                               diameters=float(diameter_mm), timestamp=stamp_s, device_name=device_name)


class ClientHandler(socketserver.BaseRequestHandler):
    """One client's connection: what it sends is read, what is queued is sent, until it leaves.

    pyigtl's handler cannot tell a closed connection from a quiet one: after Slicer disconnects it
    spins a core (measured: 1.3 CPU-s in 3 s) and stays 'connected', accepting no new client, until
    a send fails. Here a peek that returns no bytes ends the connection, and an idle wait is the
    socket's 10 ms timeout."""

    def handle(self):
        server = self.server
        server._connected = True
        self.request.settimeout(0.01)
        try:
            while not server.communication_thread_stop_requested:
                try:
                    if not self.request.recv(1, socket.MSG_PEEK):
                        break  # the client closed the connection
                    server._receive_message_from_socket(self.request)
                except socket.timeout:
                    pass
                while server._send_queued_message_from_socket(self.request):
                    pass
        except OSError:
            pass  # the connection broke: the next client may connect
        finally:
            server._connected = False


class SlicerServer(pyigtl.OpenIGTLinkServer):
    """An OpenIGTLink server that Slicer connects to (OpenIGTLinkIF, a client connector).

    pyigtl's own constructor binds only loopback or eth0 and takes over SIGINT and SIGTERM;
    this one binds `host` (port 0: a free one, read back in `port`) and leaves the signals to the
    caller, which calls stop(). One client at a time, as pyigtl serves."""

    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        OpenIGTLinkBase.__init__(self)
        socketserver.TCPServer.__init__(self, (host, port), ClientHandler)
        self.host, self.port = self.server_address[:2]
        self.start()

    def send(self, messages) -> bool:
        """Queue messages for the connected client without waiting; False (nothing queued) while
        none is connected, so a late client does not get a backlog of stale poses."""
        if not self.is_connected():
            return False
        for message in messages:
            self.send_message(message, wait=False)
        return True
