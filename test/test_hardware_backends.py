"""I2C and serial backends against byte-level fakes (a register-level bus; a pseudo-terminal)."""
import os
import time

import numpy as np
import pytest

from fake_hardware import FakeI2CBus
from guidewire.contracts import STATUS_MISSING, STATUS_OK, STATUS_SATURATED, STATUS_STALE
from guidewire.hardware import ak09940a as ak
from guidewire.hardware.i2c_array import SENSOR_ADDRESSES, I2CArray
from guidewire.hardware.serial_array import FLAG_INVALID, FLAG_NO_ANSWER, FLAG_READY, FrameDecoder, SerialArray, \
    SerialFrame, encode_frame


def sensor(bus, index):
    return bus.sensors[(index // 4, SENSOR_ADDRESSES[index % 4])]


def test_i2c_array_sets_up_every_sensor_and_reads_signed_counts_in_tesla():
    bus = FakeI2CBus()
    counts = np.random.default_rng(0).integers(-120000, 120000, (16, 3))
    for index in range(16):
        sensor(bus, index).counts = counts[index]
    array = I2CArray(bus, rows=4, cols=4, pitch=0.025, rate_hz=100)
    for index in range(16):
        assert (ak.CNTL4, ak.SOFT_RESET) in sensor(bus, index).writes
        assert sensor(bus, index).registers[ak.CNTL3] == 0x08  # continuous 100 Hz
    reading = array.read()
    np.testing.assert_allclose(reading.field, counts * 10e-9)
    assert np.all(reading.status == STATUS_OK)
    assert reading.temperature[0] == pytest.approx(30 - 0x2B / 1.72)
    np.testing.assert_allclose(array.positions[1] - array.positions[0], [0.025, 0, 0])


def test_i2c_flags_map_to_status_and_a_dead_sensor_is_missing_until_it_answers():
    bus = FakeI2CBus()
    array = I2CArray(bus, rows=4, cols=4, pitch=0.025, rate_hz=400)
    sensor(bus, 1).counts = np.array([ak.COUNT_LIMIT, 0, 0])
    sensor(bus, 2).invalid = True
    sensor(bus, 3).stalled = True
    sensor(bus, 5).answering = False
    reading = array.read()
    assert list(reading.status[:6]) == [STATUS_OK, STATUS_SATURATED, STATUS_STALE, STATUS_STALE, STATUS_OK,
                                        STATUS_MISSING]
    assert np.isnan(reading.field[[2, 5]]).all() and np.isfinite(reading.field[[0, 1, 3, 4, 6]]).all()
    assert array.bus_errors == 1
    sensor(bus, 5).answering = True
    sensor(bus, 5).registers[ak.CNTL3] = 0  # it lost power: must be set up again
    reading = array.read()
    assert reading.status[5] == STATUS_OK and sensor(bus, 5).registers[ak.CNTL3] == 0x0C


def test_i2c_rejects_a_chip_that_is_not_an_ak09940a_and_unsupported_rates():
    bus = FakeI2CBus()
    sensor(bus, 7).registers[ak.WIA2] = 0xA1  # an AK09940, not the A
    with pytest.raises(ak.SensorError, match="sensor 7 .*not an AK09940A.*0xa1"):
        I2CArray(bus, rows=4, cols=4, pitch=0.025, rate_hz=100)
    with pytest.raises(ValueError, match="low-power"):
        I2CArray(FakeI2CBus(), rows=4, cols=4, pitch=0.025, rate_hz=1000)


def frame(sequence, counts, flags=None):
    n = len(counts)
    return SerialFrame(sequence, 1000 * sequence, np.asarray(counts), np.full(n, 0x2B, np.uint8),
                       np.full(n, FLAG_READY, np.uint8) if flags is None else np.asarray(flags, np.uint8))


def test_decoder_resynchronises_after_noise_and_a_corrupt_frame_and_counts_gaps():
    counts = np.arange(48).reshape(16, 3) - 24
    good = [encode_frame(frame(s, counts * (s + 1))) for s in (10, 11, 13)]
    corrupt = bytearray(encode_frame(frame(12, counts)))
    corrupt[20] ^= 0xFF
    stream = b"\x00\xA5garbage" + good[0] + good[1] + bytes(corrupt) + good[2]
    decoder = FrameDecoder(16)
    frames = []
    for chunk in range(0, len(stream), 7):  # arbitrary read boundaries
        frames += decoder.feed(stream[chunk:chunk + 7])
    assert [f.sequence for f in frames] == [10, 11, 13]
    np.testing.assert_array_equal(frames[2].counts, counts * 14)
    assert decoder.crc_errors >= 1 and decoder.dropped == 1


def test_serial_array_reads_frames_from_a_pseudo_terminal():
    controller, device = os.openpty()
    name = os.ttyname(device)
    array = SerialArray(name, rows=4, cols=4, pitch=0.025, timeout=0.5)
    try:
        counts = np.full((16, 3), 1000)
        flags = np.full(16, FLAG_READY)
        flags[4] |= FLAG_INVALID
        flags[9] = FLAG_NO_ANSWER
        os.write(controller, encode_frame(frame(1, counts, flags)) + encode_frame(frame(2, -counts)))
        first, second = array.read(), array.read()
        assert first.field[0] == pytest.approx([10e-6] * 3)
        assert first.status[4] == STATUS_STALE and first.status[9] == STATUS_MISSING
        assert np.isnan(first.field[[4, 9]]).all()
        assert second.field[0] == pytest.approx([-10e-6] * 3) and np.all(second.status == STATUS_OK)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no frame"):
            array.read()
        assert time.monotonic() - started < 2
    finally:
        array.close()
        os.close(controller)
        os.close(device)


def test_a_folder_source_takes_its_calibration_from_a_camera_info_url(tmp_path):
    from guidewire.contracts import ConfigError, FrameSettings, open_frames

    images = tmp_path / "images"
    images.mkdir()
    import cv2

    cv2.imwrite(str(images / "0.png"), np.zeros((48, 64), np.uint8))
    calibration = tmp_path / "camera.yaml"
    calibration.write_text("""image_width: 64
image_height: 48
camera_name: top
camera_matrix: {rows: 3, cols: 3, data: [80, 0, 31.5, 0, 80, 23.5, 0, 0, 1]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0.1, 0, 0, 0, 0]}
rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
projection_matrix: {rows: 3, cols: 4, data: [80, 0, 31.5, 0, 0, 80, 23.5, 0, 0, 0, 1, 0]}
""")
    source = open_frames("folder", FrameSettings(location=str(images), camera_name="top",
                                                 camera_info_url=f"file://{calibration}"))
    known = source.calibration("top")
    assert (known.width, known.height) == (64, 48) and known.intrinsics[0, 2] == 31.5
    assert known.projection.shape == (3, 4) and known.distortion[0] == pytest.approx(0.1)
    assert open_frames("folder", FrameSettings(location=str(images))).calibration("camera") is None
    calibration.write_text("image_width: 64\n")
    with pytest.raises(ConfigError, match="image_height"):
        open_frames("folder", FrameSettings(location=str(images), camera_info_url=str(calibration)))
