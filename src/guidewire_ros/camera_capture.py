"""Camera capture node: sensor_msgs/Image + CameraInfo per camera; a stereo pair shares one stamp."""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from guidewire.capture import (DicomCineSource, EndOfStream, FolderSource, FrameError, SimulatedFluoroscopy,
                               SimulatedStereo, VideoSource)
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, twin_from_parameter, declare, image_message, \
    publisher_qos, run

SOURCES = ("sim_stereo", "sim_xray", "device", "video", "folder", "dicom")


def camera_info_for(bench, name: str) -> CameraInfo:
    """Calibration of a simulated camera in the ROS camera_info convention."""
    info = CameraInfo()
    if name in bench.cameras:
        camera = bench.cameras[name].camera
        info.width, info.height = camera.width, camera.height
        info.distortion_model = "plumb_bob"
        info.d = camera.distortion.tolist()
        info.k = camera.intrinsics.ravel().tolist()
        info.r = np.eye(3).ravel().tolist()
        info.p = np.hstack([camera.intrinsics, np.zeros((3, 1))]).ravel().tolist()
        return info
    # The C-arm: P maps points of the source (focal-spot) frame to detector pixels.
    renderer = bench.fluoroscopy
    projection = renderer.geometry.projection_matrix @ renderer.carm_pose
    projection /= projection[2, 2]
    info.width, info.height = renderer.geometry.width, renderer.geometry.height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = projection[:, :3].ravel().tolist()
    info.r = np.eye(3).ravel().tolist()
    info.p = projection.ravel().tolist()
    return info


class CameraCapture(Node):
    def __init__(self):
        super().__init__("camera_capture")
        self.source_name = declare(self, "source", "sim_stereo", f"Frame source: {', '.join(SOURCES)}")
        self.rate = declare(self, "rate_hz", 15.0, "Capture rate, Hz")
        location = declare(self, "location", "", "Device index, video file, image folder or DICOM file")
        camera_name = declare(self, "camera_name", "camera", "Camera name for single-camera sources")
        self.loop = declare(self, "loop", False, "Restart a file or folder at its end")
        bench_config = declare(self, "bench_config", "", "Bench YAML for sim sources; '' = embedded defaults")
        qos = publisher_qos(self, default_depth=30)
        self.source, bench = self._open(self.source_name, location, camera_name, bench_config)
        self.image_publishers = {name: self.create_publisher(Image, f"{name}/image_raw", qos)
                                 for name in self.source.names}
        self.info_publishers = {name: self.create_publisher(CameraInfo, f"{name}/camera_info", qos)
                                for name in self.source.names}
        self.camera_infos = {name: camera_info_for(bench, name) if bench else None for name in self.source.names}
        self.frame_ids = {name: f"{name}_optical" for name in self.source.names}
        self.diagnostics = Diagnostics(self, f"camera/{self.source_name}")
        self.published = self.errors = 0
        self.last_error = ""
        self.finished = False
        self.timer = self.create_timer(1.0 / self.rate, self._capture)
        self.create_timer(1.0, self._report)
        self.get_logger().info(f"{self.source_name}: {', '.join(self.source.names)} at {self.rate:g} Hz")

    def _open(self, source: str, location: str, camera_name: str, bench_config: str):
        if source == "sim_stereo":
            bench = twin_from_parameter(bench_config)
            return SimulatedStereo(bench), bench
        if source == "sim_xray":
            bench = twin_from_parameter(bench_config)
            self.get_logger().info("sim_xray: loading the C-arm's anatomy DRR (rendered once per machine and "
                                   "cached: about a minute the first time)")
            return SimulatedFluoroscopy(bench, camera_name if camera_name != "camera" else "xray"), bench
        if source in ("device", "video"):
            return VideoSource(location, camera_name, self.loop), None
        if source == "folder":
            return FolderSource(location, camera_name, self.loop), None
        if source == "dicom":
            return DicomCineSource(location, camera_name, self.loop), None
        raise ValueError(f"unknown source '{source}' (choose from {', '.join(SOURCES)})")

    def _capture(self) -> None:
        if self.finished:
            return
        now = self.get_clock().now()
        try:
            frames = self.source.grab(now.nanoseconds * 1e-9)
        except EndOfStream as end:
            self.finished = True
            self.get_logger().info(f"{end}; set loop:=true to repeat")
            return
        except FrameError as error:
            self.errors += 1
            self.last_error = str(error)
            self.get_logger().error(f"skipping frame: {error}", throttle_duration_sec=1.0)
            return
        stamp = now.to_msg()  # one stamp for every camera of the grab: the stereo pair stays synchronous
        for name, image in frames.items():
            encoding = "mono8" if image.ndim == 2 and image.dtype == np.uint8 else \
                "mono16" if image.ndim == 2 and image.dtype == np.uint16 else "bgr8"
            message = image_message(image, encoding, Header(stamp=stamp, frame_id=self.frame_ids[name]))
            self.image_publishers[name].publish(message)
            info = self.camera_infos[name] or CameraInfo(width=message.width, height=message.height)
            info.header = message.header
            self.info_publishers[name].publish(info)
        self.published += 1

    def _report(self) -> None:
        level, message = OK, "ok"
        if self.finished:
            level, message = WARN, "end of stream"
        if self.errors:
            level, message = ERROR, f"{self.errors} bad frames: {self.last_error}"
        self.diagnostics.publish(level, message, {"frames_published": self.published, "bad_frames": self.errors,
                                                  "target_rate_hz": self.rate})
        self.errors = 0


def main() -> None:
    run(CameraCapture)


if __name__ == "__main__":
    main()
