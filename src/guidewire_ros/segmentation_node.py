"""FGA-Net segmentation node: image in; mask, GuidewireSegmentation and an optional overlay out.

A frame that cannot be used (wrong encoding, too small, corrupt) or a model
that cannot be loaded is logged and reported on /diagnostics; the node keeps
serving the next frame. With backend "compiled" it serves eager PyTorch until the
compiled model is built (guidewire.segmentation.serving).
"""
from __future__ import annotations

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from guidewire.imaging import ImageFormatError
from guidewire.segmentation.checkpoint import DEFAULT_WEIGHTS, WeightsError
from guidewire.segmentation.frame import overlay, segment_frame
from guidewire.segmentation.serving import ServedSegmenter
from guidewire_perception.msg import GuidewireSegmentation
from guidewire_ros import convert
from guidewire_ros.common import ERROR, OK, WARN, Diagnostics, declare, publisher_qos, qos_profile, run, \
    runtime_parameters

SUPPORTED_ENCODINGS = ("mono8", "mono16", "8UC1", "16UC1", "32FC1")
MIN_SIDE = 32
# 2048x2048: the largest camera of the bench (2048x1536) and a 2k flat panel pass; a 4000x4000 frame
# took 50 s of CPU here and is rejected at once instead.
DEFAULT_MAX_PIXELS = 2048 * 2048


class SegmentationNode(Node):
    def __init__(self):
        super().__init__("segmentation")
        weights = declare(self, "weights", "", f"FGA-Net checkpoint (.pt); '' = the shipped {DEFAULT_WEIGHTS.name}")
        backend = declare(self, "backend", "torch",
                          "Inference backend: torch (eager), compiled (AOTInductor, built once into the user "
                          "cache) or onnx")
        window = declare(self, "window", 512, "Sliding-window side in pixels (multiple of 32)", 32, 4096)
        threads = declare(self, "threads", 0, "Inference threads; 0 = library default", 0, 1024)
        precision = declare(self, "precision", "auto",
                            "torch and compiled backends' arithmetic: float32, bfloat16 (fast only on CPUs with "
                            "AMX/AVX512-BF16), or auto (bfloat16 where the CPU has it, float32 elsewhere)")
        device = declare(self, "device", "cpu", "torch backend's device: cpu, or a GPU such as cuda or cuda:1")
        confidence_cut = declare(self, "confidence_cut", -1.0,
                                 "Results with a lower confidence are flagged low_confidence; -1 = the cut stored "
                                 "in the checkpoint (chosen on training frames), 0 = flag none", -1.0, 1.0)
        self.confidence_cut = None if confidence_cut < 0 else confidence_cut
        wire_width_px = declare(self, "wire_width_px", 0.0,
                                "Wire width in px in the incoming frames: they are resampled so that the wire is "
                                "as wide as the network expects (the checkpoint's wire_width_px, 3 px for the "
                                "shipped one; logged at start); 0 = segment frames as they come", 0.0, 1000.0)
        preprocessing = declare(self, "preprocessing", "",
                                "Crop and normalisation: paper (crop to the non-zero region, z-score) or robust "
                                "(a blank border of any value, percentile normalisation); '' = the checkpoint's")
        test_time_mirrors = declare(self, "test_time_mirrors", False,
                                    "Average the probabilities of the frame's four mirror images: 4x the "
                                    "inference time, +1.5 Dice on the shipped network's own generator, no "
                                    "measured gain on generators it never saw (bench/results/segmentation_cross.md)")
        image_topic = declare(self, "image_topic", "xray/image_raw", "Mono image topic to segment")
        self.publish_overlay = declare(self, "publish_overlay", True, "Publish an rgb8 overlay for RViz")
        self.max_pixels = declare(self, "max_pixels", DEFAULT_MAX_PIXELS,
                                  "Largest frame taken, width x height in pixels: a larger one is rejected before "
                                  "it is decoded (segmenting takes time in proportion)", 1024, 100_000_000)
        input_qos = qos_profile(declare(self, "input_qos", "sensor_data", "Subscription QoS"))
        output_qos = publisher_qos(self, default_depth=30)
        self.diagnostics = Diagnostics(self, "segmentation/fganet")
        self.served, self.model_error = None, ""
        try:
            self.served = ServedSegmenter(weights or DEFAULT_WEIGHTS, backend, window, threads, precision, device,
                                          self.get_logger().info, self.get_logger().error, preprocessing or None,
                                          wire_width_px or None, test_time_mirrors)
            segmenter = self.served.segmenter
            self.get_logger().info(f"loaded {weights or DEFAULT_WEIGHTS} ({segmenter.backend}, {segmenter.precision}, "
                                   f"{device}, preprocessing {segmenter.preprocessing}, expects a "
                                   f"{segmenter.expected_wire_width_px:g} px wire, resampling frames by "
                                   f"{segmenter.scale:.2f}{', with its mirror images' if test_time_mirrors else ''}),"
                                   f" segmenting {image_topic}")
        except (WeightsError, ValueError) as error:
            self.model_error = str(error)
            self.get_logger().error(f"no segmentation model: {error}")
        self.mask_publisher = self.create_publisher(Image, "segmentation/mask", output_qos)
        self.result_publisher = self.create_publisher(GuidewireSegmentation, "segmentation/result", output_qos)
        self.overlay_publisher = self.create_publisher(Image, "segmentation/overlay", output_qos)
        self.create_subscription(Image, image_topic, self._segment, input_qos)
        self.processed = self.rejected = self.low_confidence = 0
        self.latency_ms: list[float] = []
        self.last_error = ""
        self.diagnostics.start(self._report)
        runtime_parameters(self, {"confidence_cut": self._set_confidence_cut,
                                  "publish_overlay": lambda v: setattr(self, "publish_overlay", v),
                                  "max_pixels": lambda v: setattr(self, "max_pixels", v)})
        if self.served is not None:
            self.served.start()  # last: see ServedSegmenter.start

    def _set_confidence_cut(self, cut: float) -> None:
        self.confidence_cut = None if cut < 0 else cut

    @property
    def segmenter(self):
        return self.served.segmenter if self.served is not None else None

    def close(self) -> None:
        self.diagnostics.close()
        if self.served is not None:
            self.served.close()

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self.last_error = reason
        self.get_logger().error(f"skipping frame: {reason}", throttle_duration_sec=1.0)

    def _segment(self, message: Image) -> None:
        if self.segmenter is None:
            return self._reject(f"no segmentation model: {self.model_error}")
        if message.width * message.height > self.max_pixels:
            return self._reject(f"frame {message.width}x{message.height} has more than max_pixels "
                                f"({self.max_pixels}) pixels")
        if message.encoding not in SUPPORTED_ENCODINGS:
            return self._reject(f"encoding '{message.encoding}' is not a mono image "
                                f"(use one of {', '.join(SUPPORTED_ENCODINGS)})")
        try:
            image = convert.image_array(message)
        except ImageFormatError as error:
            return self._reject(f"corrupt image: {error}")
        if min(image.shape) < MIN_SIDE:
            return self._reject(f"image {image.shape[1]}x{image.shape[0]} is smaller than {MIN_SIDE} px")
        started = self.get_clock().now()
        try:
            result = segment_frame(self.segmenter, image, self.confidence_cut)
        except ValueError as error:  # a frame the segmenter refuses (guidewire.segmentation.inference)
            return self._reject(str(error))
        except RuntimeError as error:  # a backend's own failure: this frame is lost, the node goes on
            return self._reject(f"{self.segmenter.backend} backend failed: {error}")
        header = message.header
        mask = convert.image_message(result.mask, "mono8", header)
        now = self.get_clock().now()
        out = convert.segmentation(result, mask, now.to_msg())
        self.mask_publisher.publish(mask)
        self.result_publisher.publish(out)
        if self.publish_overlay:
            self.overlay_publisher.publish(convert.image_message(overlay(image, result), "rgb8", header))
        self.processed += 1
        self.low_confidence += result.low_confidence
        self.latency_ms.append((now - started).nanoseconds / 1e6)

    def _report(self) -> None:
        segmenter = self.segmenter
        values = {"frames_segmented": self.processed, "frames_rejected": self.rejected,
                  "frames_low_confidence": self.low_confidence, "backend": segmenter.backend if segmenter else "none"}
        if self.latency_ms:
            values["latency_ms_median"] = f"{np.median(self.latency_ms):.1f}"
        level, text = OK, "ok"
        if segmenter is None:
            level, text = ERROR, f"no segmentation model: {self.model_error}"
        elif self.rejected:
            level, text = ERROR, f"{self.rejected} frames rejected: {self.last_error}"
        elif self.served.compile_error:
            level, text = WARN, f"compiled backend unavailable, running eager PyTorch: {self.served.compile_error}"
        elif self.latency_ms and 2 * self.low_confidence >= len(self.latency_ms):
            # Most of the period's frames, not any one: single faint frames are common (see the
            # bench's confidence table) and would make the status flicker.
            level, text = WARN, f"wire likely lost: {self.low_confidence} of {len(self.latency_ms)} frames " \
                                "below the confidence cut"
        self.diagnostics.publish(level, text, values)
        self.rejected = self.low_confidence = 0
        self.latency_ms.clear()


def main() -> None:
    run(SegmentationNode)


if __name__ == "__main__":
    main()
