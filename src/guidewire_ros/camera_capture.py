"""Camera capture node: sensor_msgs/Image + CameraInfo per camera; a stereo pair shares one stamp."""
from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from guidewire.contracts import FRAME_SOURCES, EndOfStream, FrameError, FrameSettings, open_frames
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, publisher_qos, run, runtime_parameters
from guidewire_ros.robot_link import follow_robot


class CameraCapture(Node):
    def __init__(self):
        super().__init__("camera_capture")
        self.source_name = declare(self, "source", "sim_stereo", f"Frame source: {', '.join(FRAME_SOURCES)}")
        self.rate = declare(self, "rate_hz", 15.0, "Capture rate, Hz (changes at run time)", 0.01, 1000.0)
        settings = FrameSettings(
            location=declare(self, "location", "", "Device index, video file, image folder or DICOM file"),
            camera_name=declare(self, "camera_name", "camera", "Camera name for single-camera sources"),
            loop=declare(self, "loop", False, "Restart a file or folder at its end (read at start-up)"),
            bench_config=declare(self, "bench_config", "", "Bench YAML for sim sources; '' = embedded defaults"),
            camera_info_url=declare(self, "camera_info_url", "",
                                    "device/video/folder/dicom: camera_calibration YAML (file:// URL or path) "
                                    "for camera_info; '' = camera_info carries only the image size"),
            view=declare(self, "view", "", "sim_xray: C-arm view (ap, lateral, oblique; '' = the bench's angles); "
                         "the camera is then xray_<view> unless camera_name is set"),
            detector_pixels=declare(self, "detector_pixels", 0, "sim_xray: detector pixels a side, binned over the "
                                    "same field (small and cheap for registration views); 0 = the bench's", 0, 4096))
        qos = publisher_qos(self, default_depth=30)
        if self.source_name == "sim_xray":
            self.get_logger().info("sim_xray: loading the C-arm's anatomy DRR (rendered once per machine and "
                                   "cached: about a minute the first time)")
        self.source = open_frames(self.source_name, settings)
        follow_robot(self, self.source)  # simulated cameras see the robot's wire
        self.image_publishers = {name: self.create_publisher(Image, f"{name}/image_raw", qos)
                                 for name in self.source.names}
        self.info_publishers = {name: self.create_publisher(CameraInfo, f"{name}/camera_info", qos)
                                for name in self.source.names}
        self.calibrations = {name: self.source.calibration(name) for name in self.source.names}
        self.frame_ids = {name: f"{name}_optical" for name in self.source.names}
        # Sources that know where they are (the twin's C-arm) also publish the pose of each view's frame
        # (for the C-arm: its source frame, guidewire.registration.geometry's convention) in the world.
        self.pose_publishers = {name: self.create_publisher(PoseStamped, f"{name}/pose", qos)
                                for name in self.source.names} if hasattr(self.source, "pose") else {}
        self.world_frame = declare(self, "world_frame", "bench", "Frame of the published view poses")
        self.diagnostics = Diagnostics(self, f"camera/{self.source_name}")
        self.published = self.errors = 0
        self.last_error = ""
        self.finished = False
        self.timer = self.create_timer(1.0 / self.rate, self._capture)
        self.diagnostics.start(self._report)
        runtime_parameters(self, {"rate_hz": self._set_rate})
        self.get_logger().info(f"{self.source_name}: {', '.join(self.source.names)} at {self.rate:g} Hz")

    def _set_rate(self, rate: float) -> None:
        self.destroy_timer(self.timer)
        self.rate = rate
        self.timer = self.create_timer(1.0 / rate, self._capture)

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
            message = convert.image_message(image, convert.camera_encoding(image),
                                            Header(stamp=stamp, frame_id=self.frame_ids[name]))
            self.image_publishers[name].publish(message)
            self.info_publishers[name].publish(convert.camera_info(self.calibrations[name], message))
            if name in self.pose_publishers:
                self.pose_publishers[name].publish(PoseStamped(header=Header(stamp=stamp, frame_id=self.world_frame),
                                                               pose=convert.pose_from_matrix(self.source.pose(name))))
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

    def close(self) -> None:
        self.diagnostics.close()
        self.source.close()


def main() -> None:
    run(CameraCapture)


if __name__ == "__main__":
    main()
