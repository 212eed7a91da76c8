"""Multi-view 2D/3D CT-to-X-ray registration on diffdrr (no rclpy).

    from guidewire.registration import register, CTVolume, XrayView, ViewGeometry, RegistrationSettings
    ct = CTVolume("ct.nii.gz", "mask.nii.gz", voxel_mm=(1.4, 1.4, 2.5))
    result = register(views, ct, initial_pose, RegistrationSettings(), progress_callback=print, cancel=event)
"""
from guidewire.registration.api import register
from guidewire.registration.geometry import PoseErrors, ViewGeometry, pose_errors
from guidewire.registration.optimise import (
           RegistrationResult,
           RegistrationSettings,
           ViewError,
           XrayView,
           optimise,
)
from guidewire.registration.volume import CTError, CTVolume

__all__ = ["CTError", "CTVolume", "PoseErrors", "RegistrationResult", "RegistrationSettings", "ViewError",
           "ViewGeometry", "XrayView", "optimise", "pose_errors", "register"]
