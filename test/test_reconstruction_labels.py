"""The stereo label maker on a bag recorded from the twin: its labels lie on the true wire."""
import subprocess
import sys

import numpy as np
import yaml

from guidewire.bag import BagWriter, suite_typestore
from guidewire.reconstruction import shape_errors
from guidewire.reconstruction.case import load_case
from guidewire.twin import DigitalTwin
from guidewire.twin.cameras import make_camera


def _header(typestore, stamp_ns, frame_id):
    Time = typestore.types["builtin_interfaces/msg/Time"]
    Header = typestore.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)


def _write_twin_bag(path, twin, times):
    ts = suite_typestore()
    Image, CameraInfo = ts.types["sensor_msgs/msg/Image"], ts.types["sensor_msgs/msg/CameraInfo"]
    ROI = ts.types["sensor_msgs/msg/RegionOfInterest"]
    Point, Vector3 = ts.types["geometry_msgs/msg/Point"], ts.types["geometry_msgs/msg/Vector3"]
    Array = ts.types["guidewire_perception/msg/MagnetometerArray"]
    writer = BagWriter(path)
    for name in ("camera_top", "camera_side"):
        writer.add_topic(f"/{name}/image_raw", "sensor_msgs/msg/Image")
        writer.add_topic(f"/{name}/camera_info", "sensor_msgs/msg/CameraInfo")
    writer.add_topic("/mag_array/frame", "guidewire_perception/msg/MagnetometerArray")
    array = twin.config.magnetometer_array
    positions = twin.magnetometer.positions - [0.0, 0.0, array.height]  # array frame
    for time in times:
        stamp = int(time * 1e9)
        state = twin.state(time)
        for name, renderer in twin.cameras.items():
            image = renderer.render(state)
            camera = make_camera(renderer.config)
            header = _header(ts, stamp, f"{name}_optical")
            message = Image(header=header, height=image.shape[0], width=image.shape[1], encoding="mono8",
                            is_bigendian=0, step=image.shape[1], data=image.ravel())
            writer.write(f"/{name}/image_raw", stamp, ts.serialize_cdr(message, "sensor_msgs/msg/Image"))
            info = CameraInfo(header=header, height=image.shape[0], width=image.shape[1],
                              distortion_model="plumb_bob", d=np.asarray(camera.distortion, float),
                              k=camera.intrinsics.ravel(), r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0,
                              binning_y=0, roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(f"/{name}/camera_info", stamp, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
        sample = twin.magnetometer.sample(state)
        frame = Array(header=_header(ts, stamp, "mag_array"), sequence=0, rows=4, cols=4,
                      sensor_positions=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions],
                      magnetic_field=[Vector3(x=float(x), y=float(y), z=float(z)) for x, y, z in sample.field],
                      magnetic_field_covariance=np.zeros(144), status=sample.status.astype(np.uint8),
                      temperature=np.full(16, 25.0, np.float32))
        writer.write("/mag_array/frame", stamp, ts.serialize_cdr(frame, "guidewire_perception/msg/MagnetometerArray"))
    writer.close()


def test_labels_from_a_recorded_stereo_bag(tmp_path):
    twin = DigitalTwin()
    times = [1.0, 2.5, 4.0]
    _write_twin_bag(tmp_path / "bag", twin, times)
    background = tmp_path / "background.yaml"
    background.write_text(yaml.safe_dump({"calibration": {"background": twin.magnetometer.background.tolist()}}))
    done = subprocess.run([sys.executable, "-m", "guidewire.reconstruction.labels", str(tmp_path / "bag"),
                           str(tmp_path / "set"), "--background", str(background)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "written: 3" in done.stdout
    folders = sorted((tmp_path / "set").iterdir())
    for folder, time in zip(folders, times):
        label = yaml.safe_load((folder / "label.yaml").read_text())
        errors = shape_errors(np.asarray(label["centreline"]), twin.state(time).centreline)
        assert errors.rmse < 0.001 and errors.tip < 0.002, errors
        case = load_case(folder)  # a case the reconstruction command reads
        assert case.array is not None and case.array.background is not None and case.method == "physics"


def test_a_bag_without_camera_info_is_named(tmp_path):
    writer = BagWriter(tmp_path / "bag")
    writer.add_topic("/mag_array/frame", "guidewire_perception/msg/MagnetometerArray")
    writer.close()
    done = subprocess.run([sys.executable, "-m", "guidewire.reconstruction.labels", str(tmp_path / "bag"),
                           str(tmp_path / "set")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "no CameraInfo for camera_top, camera_side" in done.stderr
