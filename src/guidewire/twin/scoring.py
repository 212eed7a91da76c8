"""What the bench's ground truth says of each node's output: the evaluator that `make run`'s live view
and its report share.

The truth at a stamp is the twin's wire at that time; when the run had a robot, the twin follows the
robot's recorded joint states as the simulated sensors did (guidewire.robot.JointHistory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guidewire.reconstruction.metrics import ShapeErrors, shape_errors
from guidewire.robot import JointHistory, JointState
from guidewire.twin import DigitalTwin
from guidewire.twin.config import BenchConfig
from guidewire.twin.wire import WireState


@dataclass(frozen=True)
class SegmentationScore:
    dice: float  # %, NaN when neither mask has wire pixels
    tip_px: float  # NaN when the true tip is outside the image or the result has none


def dice_percent(prediction: np.ndarray, truth: np.ndarray) -> float:
    prediction, truth = prediction.astype(bool), truth.astype(bool)
    total = prediction.sum() + truth.sum()
    return float("nan") if total == 0 else float(200.0 * (prediction & truth).sum() / total)


class BenchTruth:
    """Ground truth of a run on the simulated bench, at any stamp."""

    def __init__(self, config: BenchConfig | None = None, ct_frame: str = "ct"):
        self.twin = DigitalTwin(config)
        self.ct_frame = ct_frame
        self.robot = JointHistory(keep=1_000_000)  # a whole run's states: a report scores any moment of it
        self.twin.follow_robot(self.robot)
        self._xray_geometry = None

    def add_robot_state(self, stamp_ns: int, state: JointState) -> None:
        """Record the robot's joint state (in stamp order, as a bag or a subscription delivers it)."""
        self.robot.add(stamp_ns * 1e-9, state)

    def wire(self, stamp_ns: int) -> WireState:
        return self.twin.state(stamp_ns * 1e-9)

    @property
    def xray_geometry(self):
        if self._xray_geometry is None:  # the simulated C-arm's cached anatomy holds its detector geometry
            self._xray_geometry = self.twin.fluoroscopy.geometry
        return self._xray_geometry

    def xray_mask(self, stamp_ns: int) -> np.ndarray:
        from guidewire.twin.fluoroscopy import wire_footprint

        return wire_footprint(self.wire(stamp_ns), self.xray_geometry).mask()

    def segmentation(self, stamp_ns: int, mask: np.ndarray, tip_uv: np.ndarray | None) -> SegmentationScore:
        """A segmentation of the simulated C-arm's frame against the projected wire."""
        truth = self.xray_mask(stamp_ns)
        if truth.shape != mask.shape:
            raise ValueError(f"mask {mask.shape} is not the C-arm detector's {truth.shape}")
        tip_error = float("nan")
        true_tip = self.xray_geometry.project(self.wire(stamp_ns).tip[None])[0][0]
        height, width = truth.shape
        inside = 0 <= true_tip[0] <= width - 1 and 0 <= true_tip[1] <= height - 1  # else no tip to find
        if inside and tip_uv is not None and np.all(np.isfinite(tip_uv)):
            tip_error = float(np.linalg.norm(true_tip - tip_uv))
        return SegmentationScore(dice_percent(mask, truth), tip_error)

    def shape(self, stamp_ns: int, centreline: np.ndarray, frame_id: str = "bench") -> ShapeErrors:
        """A reconstructed centreline (m, entry first) against the true wire. In the CT's frame it is
        placed on the bench by the CT's true pose, so its error is the reconstruction's and the
        registration's together: where the wire is in the anatomy."""
        centreline = np.asarray(centreline, float)
        if frame_id == self.ct_frame:
            pose = self.ct_to_bench
            centreline = centreline @ pose[:3, :3].T + pose[:3, 3]
        elif frame_id != "bench":
            raise ValueError(f"no ground truth in frame '{frame_id}' (bench or {self.ct_frame})")
        return shape_errors(centreline, self.wire(stamp_ns).centreline)

    @property
    def ct_to_bench(self) -> np.ndarray:
        from guidewire.twin.fluoroscopy import ct_to_bench

        return ct_to_bench(self.twin.config.fluoroscopy)
