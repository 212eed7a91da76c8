"""A fitted wire expressed in the registered CT's frame."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from guidewire.reconstruction import WireEstimate
from guidewire.reconstruction.frames import estimate_in_frame


def estimate() -> WireEstimate:
    s = np.linspace(0.0, 0.1, 11)
    points = np.column_stack([s, 0.01 * np.sin(20 * s), np.full_like(s, 0.05)])
    return WireEstimate(points=points, sigma=np.full(len(s), 0.0005), tip_position=points[-1],
                        tip_direction=np.array([1.0, 0.2, 0.0]) / np.hypot(1.0, 0.2), tip_sigma=0.0004, length=0.1,
                        field_rms=1e-7, chi2_per_dof=0.5, converged=True, used_sensors=16,
                        offset_field=np.array([1e-6, 0.0, 0.0]))


def rigid(rotvec, translation) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    transform[:3, 3] = translation
    return transform


def test_points_tip_and_direction_follow_the_transform_and_the_shape_is_kept():
    world = estimate()
    transform = rigid([0.3, -0.2, 1.1], [0.01, -0.02, 0.07])
    in_ct = estimate_in_frame(world, transform)
    expected = (transform @ np.column_stack([world.points, np.ones(len(world.points))]).T).T[:, :3]
    np.testing.assert_allclose(in_ct.points, expected, atol=1e-12)
    np.testing.assert_allclose(in_ct.tip_position, expected[-1], atol=1e-12)
    np.testing.assert_allclose(in_ct.tip_direction, transform[:3, :3] @ world.tip_direction, atol=1e-12)
    # The tip frame's x axis is the tip direction in either frame.
    np.testing.assert_allclose(Rotation.from_quat(in_ct.tip_orientation).apply([1.0, 0.0, 0.0]),
                               in_ct.tip_direction, atol=1e-9)
    # Distances along and between points, the sigmas and the fit's figures are unchanged.
    np.testing.assert_allclose(np.linalg.norm(np.diff(in_ct.points, axis=0), axis=1),
                               np.linalg.norm(np.diff(world.points, axis=0), axis=1), atol=1e-12)
    np.testing.assert_array_equal(in_ct.sigma, world.sigma)
    assert (in_ct.tip_sigma, in_ct.length, in_ct.chi2_per_dof) == (world.tip_sigma, world.length, world.chi2_per_dof)
    # Back again with the inverse: the world estimate, so the map is the transform and not an approximation.
    back = estimate_in_frame(in_ct, np.linalg.inv(transform))
    np.testing.assert_allclose(back.points, world.points, atol=1e-12)
    np.testing.assert_allclose(back.offset_field, world.offset_field, atol=1e-18)


@pytest.mark.parametrize("transform, problem", [
    (np.diag([2.0, 2.0, 2.0, 1.0]), "not a rigid"),
    (np.diag([1.0, 1.0, -1.0, 1.0]), "not a rigid"),
    (np.full((4, 4), np.nan), "finite 4x4"),
    (np.eye(3), "finite 4x4"),
])
def test_a_transform_that_is_not_rigid_is_refused(transform, problem):
    with pytest.raises(ValueError, match=problem):
        estimate_in_frame(estimate(), transform)
