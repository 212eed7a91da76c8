"""C-arm view geometry, poses and the registration error metrics.

Frames and units. Public poses are 4x4 homogeneous matrices in metres (SI, as the rest of the
project); the optimiser works in millimetres internally (diffdrr's and the CT's unit).

- CT frame: volume-centred RAS (diffdrr's `read(..., orientation=None)`, as guidewire.twin.fluoroscopy).
- A view's pose: its X-ray source frame in the world: origin at the focal spot, z towards the
  detector, x along the detector's columns, y along its rows (the twin's `carm_to_bench`).
  Images are in diffdrr's layout for that frame (`reverse_x_axis=True`), which is the twin's.
- The registration estimates T_world_ct, the CT-to-world pose; view i's DRR is rendered at
  inverse(T_world_ct) @ T_world_view_i (the source frame in the CT frame).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

MM_PER_M = 1000.0


@dataclass(frozen=True)
class ViewGeometry:
    """One calibrated X-ray view (SI units)."""

    source_to_detector: float  # m
    height: int  # detector rows (pixels)
    width: int  # detector columns
    pixel_spacing: tuple  # (row spacing, column spacing), m
    pose: np.ndarray = field(repr=False)  # 4x4 source frame in the world, m
    principal_point: tuple = (0.0, 0.0)  # (x0, y0) offset of the principal point from the detector centre, m

    def __post_init__(self):
        pose = np.asarray(self.pose, float)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError("view pose must be a finite 4x4 matrix")
        if abs(np.linalg.det(pose[:3, :3]) - 1.0) > 1e-3:
            raise ValueError("view pose rotation is not a rotation matrix")
        if self.source_to_detector <= 0 or min(self.pixel_spacing) <= 0 or self.height < 2 or self.width < 2:
            raise ValueError("view geometry needs a positive source-to-detector distance, spacing and size")
        object.__setattr__(self, "pose", pose)

    def intrinsics_mm(self, factor: float = 1.0) -> tuple:
        """diffdrr DRR arguments for a detector binned by `factor`: (sdd, height, width, delx, dely, x0, y0), mm."""
        h, w = max(2, round(self.height / factor)), max(2, round(self.width / factor))
        return (self.source_to_detector * MM_PER_M, h, w,
                self.pixel_spacing[1] * MM_PER_M * self.width / w, self.pixel_spacing[0] * MM_PER_M * self.height / h,
                self.principal_point[0] * MM_PER_M, self.principal_point[1] * MM_PER_M)

    def pose_mm(self) -> np.ndarray:
        pose = self.pose.copy()
        pose[:3, 3] *= MM_PER_M
        return pose


def to_mm(pose: np.ndarray) -> np.ndarray:
    pose = np.array(pose, float)
    pose[:3, 3] *= MM_PER_M
    return pose


def to_m(pose: np.ndarray) -> np.ndarray:
    pose = np.array(pose, float)
    pose[:3, 3] /= MM_PER_M
    return pose


def skew(v: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(v[..., 0])
    return torch.stack([torch.stack([zero, -v[..., 2], v[..., 1]], -1),
                        torch.stack([v[..., 2], zero, -v[..., 0]], -1),
                        torch.stack([-v[..., 1], v[..., 0], zero], -1)], -2)


def so3_exp(omega: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, smooth at zero (Taylor terms below 1e-4 rad)."""
    theta2 = (omega * omega).sum(-1, keepdim=True).unsqueeze(-1)
    theta = torch.sqrt(theta2 + 1e-24)
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    k = skew(omega)
    eye = torch.eye(3, dtype=omega.dtype).expand_as(k)
    return eye + a * k + b * (k @ k)


def perturb(pose: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Rotate a CT pose about its own origin (the volume centre) by exp(rotation) in world axes,
    then translate by `translation` (world, same unit as the pose)."""
    R = so3_exp(rotation) @ pose[:3, :3]
    t = pose[:3, 3] + translation
    top = torch.cat([R, t.unsqueeze(-1)], dim=1)
    return torch.cat([top, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=pose.dtype)], dim=0)


def rotation_angle_deg(R: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0))))


def transform(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


@dataclass
class PoseErrors:
    mtre_mm: float  # mean 3D distance of the fiducials mapped by the true and estimated CT poses
    mrpe_mm: float  # mean reprojection distance over the views, at the detector, scaled to the CT centre's depth
    rotation_deg: float
    translation_mm: float  # of the CT centre
    mrpe_per_view_mm: list


def pose_errors(estimate: np.ndarray, truth: np.ndarray, fiducials_mm: np.ndarray,
                views: list[ViewGeometry] | None = None) -> PoseErrors:
    """Errors of an estimated CT-to-world pose (metres) against the truth; fiducials in the CT frame (mm)."""
    est, tru = to_mm(estimate), to_mm(truth)
    a, b = transform(est, fiducials_mm), transform(tru, fiducials_mm)
    mtre = float(np.linalg.norm(a - b, axis=1).mean())
    per_view = []
    for view in views or []:
        sdd = view.source_to_detector * MM_PER_M
        inv = np.linalg.inv(view.pose_mm())
        pa, pb = transform(inv, a), transform(inv, b)
        da = sdd * pa[:, :2] / pa[:, 2:3]
        db = sdd * pb[:, :2] / pb[:, 2:3]
        depth = transform(inv, tru[:3, 3][None])[0, 2]  # the CT centre's distance from the source
        per_view.append(float(np.linalg.norm(da - db, axis=1).mean() * depth / sdd))
    rel = est[:3, :3] @ tru[:3, :3].T
    return PoseErrors(mtre, float(np.mean(per_view)) if per_view else float("nan"), rotation_angle_deg(rel),
                      float(np.linalg.norm(est[:3, 3] - tru[:3, 3])), per_view)


def random_perturbation(rng: np.random.Generator, max_rotation_deg: float, max_translation_mm: float) -> np.ndarray:
    """A 4x4 (mm) rotation about the CT centre and translation drawn uniformly per axis in
    +-max_rotation_deg (Euler xyz, world axes) and +-max_translation_mm."""
    from scipy.spatial.transform import Rotation

    delta = np.eye(4)
    delta[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-max_rotation_deg, max_rotation_deg, 3),
                                        degrees=True).as_matrix()
    delta[:3, 3] = rng.uniform(-max_translation_mm, max_translation_mm, 3)
    return delta


def apply_perturbation(pose_m: np.ndarray, delta_mm: np.ndarray) -> np.ndarray:
    """Rotate the CT pose about its centre (world axes) and translate, as `perturb`."""
    out = np.array(pose_m, float)
    out[:3, :3] = delta_mm[:3, :3] @ out[:3, :3]
    out[:3, 3] = out[:3, 3] + delta_mm[:3, 3] / MM_PER_M
    return out


def view_geometry_from_pinhole(intrinsics: np.ndarray, width: int, height: int, frame_pose: np.ndarray,
                               source_to_detector: float = 1.0) -> ViewGeometry:
    """The ViewGeometry of a C-arm published as a pinhole camera (ROS CameraInfo K and the pose of
    K's frame in the world, m). Only source-to-detector over pixel spacing is observable in K;
    `source_to_detector` splits it (the DRR's rays, hence the registration, do not depend on the
    split). K with negative focal lengths is in this module's source-frame convention (the twin's
    CameraInfo); positive ones are a ROS optical frame, turned 180 degrees about its axis here.
    ValueError for a skewed or mirrored K or an off-centre principal point (not supported)."""
    K = np.asarray(intrinsics, float).reshape(3, 3)
    fx, fy = K[0, 0], K[1, 1]
    if not np.all(np.isfinite(K)) or fx == 0 or fy == 0 or abs(K[0, 1]) > 1e-6 * abs(fx):
        raise ValueError(f"camera K must be a finite pinhole matrix without skew, got {K.tolist()}")
    if np.sign(fx) != np.sign(fy):
        raise ValueError("camera K is mirrored (focal lengths of opposite sign)")
    off = (K[0, 2] - (width - 1) / 2, K[1, 2] - (height - 1) / 2)
    if max(abs(off[0]), abs(off[1])) > 1.0:
        raise ValueError(f"principal point {K[0, 2]:.1f}, {K[1, 2]:.1f} is off the detector centre by "
                         f"{off[0]:.1f}, {off[1]:.1f} px: not supported")
    pose = np.asarray(frame_pose, float)
    if fx > 0:
        pose = pose @ np.diag([-1.0, -1.0, 1.0, 1.0])
    # Python floats: numpy scalars would make diffdrr's detector float64 against float32 poses.
    return ViewGeometry(float(source_to_detector), int(height), int(width),
                        (float(source_to_detector / abs(fy)), float(source_to_detector / abs(fx))), pose)
