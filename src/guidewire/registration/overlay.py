"""DRRs at a registered pose and their edges drawn over the X-ray views (node overlay, bench figure)."""
from __future__ import annotations

import numpy as np
import torch

from guidewire.registration.geometry import to_mm
from guidewire.registration.optimise import XrayView
from guidewire.registration.volume import CTVolume


def drr_of_view(ct: CTVolume, view: XrayView, ct_pose: np.ndarray, n_points: int = 256) -> np.ndarray:
    """Line integrals (H, W) of the CT at `ct_pose` (CT-to-world, m) seen by the view, at its resolution."""
    camera = torch.tensor(np.linalg.inv(to_mm(ct_pose)) @ view.geometry.pose_mm(), dtype=torch.float32)[None]
    with torch.no_grad():
        return ct.render(camera, view.geometry.intrinsics_mm(), "trilinear", n_points)[0, 0].numpy()


def edges(image: np.ndarray) -> np.ndarray:
    """Canny edges (bool) of an image of any range."""
    import cv2

    u8 = cv2.normalize(np.asarray(image, np.float32), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.Canny(cv2.GaussianBlur(u8, (0, 0), 1.0), 30, 90) > 0


def edge_overlay(ct: CTVolume, views: list[XrayView], ct_pose: np.ndarray, colour=(40, 255, 40),
                 n_points: int = 256) -> np.ndarray:
    """The views side by side (RGB uint8, scaled to the tallest), each with the edges of its DRR at
    `ct_pose` in `colour`: where the edges follow the anatomy, the pose is right."""
    import cv2

    height = max(v.image.shape[0] for v in views)
    tiles = []
    for view in views:
        image = np.asarray(view.image, np.float32)
        gray = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        rgb = np.repeat(gray[..., None], 3, -1)
        rgb[edges(drr_of_view(ct, view, ct_pose, n_points))] = colour
        if rgb.shape[0] != height:
            width = round(rgb.shape[1] * height / rgb.shape[0])
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST)
        tiles.append(rgb)
    return np.concatenate(tiles, axis=1)
