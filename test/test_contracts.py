"""The ground floor: statuses agree with the message and the chip's decoding, the factories
name what they do not know, and the hardware drivers import without the heavy libraries."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from guidewire import contracts
from guidewire.contracts import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE
from guidewire.hardware import ak09940a as ak
from guidewire.hardware.serial_array import FLAG_INVALID, FLAG_NO_ANSWER, FLAG_READY, SerialFrame, frame_to_reading


def message_constants(name: str) -> dict[str, int]:
    text = (ROOT / "msg" / f"{name}.msg").read_text()
    return {key: int(value) for key, value in re.findall(r"^uint8 (STATUS_\w+) = (\d+)", text, re.MULTILINE)}


def test_status_constants_are_the_messages():
    constants = message_constants("MagnetometerArray")
    assert constants == {name: getattr(contracts, name) for name in constants}
    assert set(constants) == {name for name in dir(contracts) if name.startswith("STATUS_") and name != "STATUS_NAMES"}
    assert set(contracts.STATUS_NAMES) == set(constants.values())


# (ready, invalid, no answer, clipped) -> status, as MagnetometerArray.msg documents each one
FLAG_TABLE = [
    ((1, 0, 0, 0), STATUS_OK),
    ((0, 0, 0, 0), STATUS_STALE),  # no new conversion
    ((1, 0, 0, 1), STATUS_SATURATED),
    ((0, 0, 0, 1), STATUS_SATURATED),
    ((1, 1, 0, 0), STATUS_STALE),  # ST2.INV: the sample is not to be used
    ((1, 1, 0, 1), STATUS_STALE),
    ((1, 0, 1, 0), STATUS_MISSING),
    ((1, 1, 1, 1), STATUS_MISSING),
]


def test_the_chip_decoding_maps_flags_to_the_contract_statuses():
    flags = np.array([row for row, _ in FLAG_TABLE], bool)
    status = ak.sensor_status(flags[:, 0], flags[:, 1], flags[:, 2], flags[:, 3])
    assert status.tolist() == [expected for _, expected in FLAG_TABLE]


def test_serial_frames_and_i2c_bursts_decode_the_same_flags_alike():
    count = len(FLAG_TABLE)
    counts = np.array([[1000, -2000, ak.COUNT_LIMIT if row[3] else 3000] for row, _ in FLAG_TABLE])
    serial_flags = np.array([FLAG_READY * r + FLAG_INVALID * i + FLAG_NO_ANSWER * m for (r, i, m, _), _ in FLAG_TABLE],
                            np.uint8)
    tmps = np.full(count, 0x2B, np.uint8)
    serial = frame_to_reading(SerialFrame(0, 0, counts, tmps, serial_flags))
    chip = ak.array_reading(counts, tmps, *np.array([row[:3] for row, _ in FLAG_TABLE], bool).T)
    assert serial.status.tolist() == chip.status.tolist() == [expected for _, expected in FLAG_TABLE]
    np.testing.assert_array_equal(serial.field, chip.field)
    np.testing.assert_array_equal(serial.temperature, chip.temperature)
    invalid_or_missing = np.array([row[1] or row[2] for row, _ in FLAG_TABLE])
    np.testing.assert_array_equal(np.isnan(serial.field).all(axis=1), invalid_or_missing)
    np.testing.assert_array_equal(np.isnan(serial.temperature), [row[2] == 1 for row, _ in FLAG_TABLE])


def test_factories_name_an_unknown_backend_and_their_choices():
    with pytest.raises(ValueError, match=r"unknown backend 'spi' \(choose from sim, i2c, serial\)"):
        contracts.open_array("spi")
    with pytest.raises(ValueError, match="unknown source 'webcam'"):
        contracts.open_frames("webcam")


BLOCKED = ("magpylib", "cv2", "torch", "scipy", "diffdrr", "onnxruntime", "rclpy")
IMPORT_WITHOUT_HEAVY = f"""
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked: a hardware driver must not need it")

sys.meta_path.insert(0, Blocked())
import guidewire.contracts, guidewire.calibration, guidewire.pacing
import guidewire.hardware.ak09940a, guidewire.hardware.i2c_array, guidewire.hardware.serial_array
import guidewire.hardware.cameras
from guidewire.contracts import ARRAY_BACKENDS, FRAME_SOURCES, _opener
for name in ("i2c", "serial"):
    _opener(ARRAY_BACKENDS, "backend", name)
for name in ("device", "video", "folder", "dicom"):
    _opener(FRAME_SOURCES, "source", name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r} or m.startswith("guidewire.twin"))
assert not loaded, loaded
print("ok")
"""


def test_hardware_backends_import_without_magpylib_opencv_or_torch():
    run = subprocess.run([sys.executable, "-c", IMPORT_WITHOUT_HEAVY], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
