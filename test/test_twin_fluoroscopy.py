import nibabel
import numpy as np
import pytest

from guidewire.twin.fluoroscopy import (AnatomyRenderer, DetectorGeometry, FluoroscopyRenderer, carm_to_bench,
                                        ct_to_bench, wire_chord_lengths, wire_footprint)
from guidewire.twin.wire import GuidewireModel, WireState
from guidewire.twin.config import FluoroscopyConfig


def test_drr_renders_a_dense_bead_where_the_geometry_projects_it(tmp_path):
    # A synthetic CT: air with one dense 3-voxel bead off-centre. diffdrr renders it;
    # our DetectorGeometry (read back from diffdrr's rays) must project the bead's
    # bench position onto the brightest pixel.
    volume = np.full((40, 40, 40), -1000.0, np.float32)
    volume[28:31, 9:12, 20:23] = 2000.0
    volume[0:2, 0:2, 0:2] = 0.0  # diffdrr's HU-to-density mapping needs some soft tissue
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 2 mm voxels
    ct = tmp_path / "bead.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, affine), ct)
    config = FluoroscopyConfig(ct_file=str(ct), cache_dir=str(tmp_path / "cache"), detector_pixels=64,
                               pixel_spacing=0.002, ct_position=(0.01, -0.02, 0.06), ct_rotation=(0.1, -0.2, 0.3),
                               primary_angle=0.3, secondary_angle=-0.2)
    renderer = AnatomyRenderer(config)
    line_integral, geometry = renderer.render(ct_to_bench(config), carm_to_bench(config))
    # Bead centre in the volume-centred RAS frame diffdrr uses (metres).
    bead_voxel = np.array([29.0, 10.0, 21.0])
    bead_ct = (bead_voxel - (np.array(volume.shape) - 1) / 2) * 2.0 / 1000.0
    ct_pose = ct_to_bench(config)
    bead_bench = ct_pose[:3, :3] @ bead_ct + ct_pose[:3, 3]
    (u, v), = geometry.project(bead_bench)[0]
    # The bead covers a plateau of pixels: compare with its intensity-weighted centroid.
    weight = line_integral - np.median(line_integral)
    weight[weight < 0.5 * weight.max()] = 0.0
    rows, cols = np.mgrid[0:64, 0:64]
    centroid = np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, [u, v], atol=0.5)
    # The 3x4 matrix agrees with the ray-plane projection.
    homogeneous = geometry.projection_matrix @ np.append(bead_bench, 1.0)
    np.testing.assert_allclose(homogeneous[:2] / homogeneous[2], [u, v], atol=1e-6)
    # A second render of the same geometry comes from the cache, identical.
    again, _ = AnatomyRenderer(config).render(ct_to_bench(config), carm_to_bench(config))
    np.testing.assert_array_equal(again, line_integral)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


@pytest.fixture(scope="module")
def fluoro(small_fluoroscopy_config):
    c = small_fluoroscopy_config
    return FluoroscopyRenderer(c.fluoroscopy, c.seed), GuidewireModel(c.guidewire, c.seed).state(6.0)


def test_wire_attenuation_is_conserved_across_detector_resolutions(fluoro):
    # Pixel-averaged chords: summed over the image they give the wire's projected
    # cross-section (pi r^2 per unit length) whatever the pixel size, so a wire thinner
    # than a pixel still shows. Compare a fine and a coarse detector on a straight wire.
    from guidewire.twin.fluoroscopy import DetectorGeometry

    renderer, state = fluoro
    g = renderer.geometry
    sums = []
    for factor in (1, 4):
        origin = g.origin - (factor - 1) / (2 * factor) * (g.column_step + g.row_step)
        fine = DetectorGeometry(source=g.source, origin=origin, column_step=g.column_step / factor,
                                row_step=g.row_step / factor, width=96 * factor, height=96 * factor)
        chord = wire_chord_lengths(state, fine)
        pixel_area = np.linalg.norm(fine.column_step) * np.linalg.norm(fine.row_step)
        sums.append(chord.sum() * pixel_area)
        assert chord.max() <= state.diameter * 1000 + 1e-6
    assert sums[0] == pytest.approx(sums[1], rel=0.05)


@pytest.mark.parametrize("width_px, row", [(2.0, 20.3), (2.6, 31.5), (3.7, 40.0)])
def test_wire_mask_is_as_wide_as_the_projected_wire(width_px, row):
    # A straight wire along the detector's columns, 0.1 mm pixels, magnification 2:
    # every column must have the pixel centres within the projected radius, no more.
    pixel = 1e-4
    geometry = DetectorGeometry(source=np.array([0.0, 0.0, 1.0]), origin=np.array([0.0, 0.0, -1.0]),
                                column_step=np.array([pixel, 0, 0]), row_step=np.array([0, pixel, 0]),
                                width=64, height=64)
    x = np.linspace(-0.01, 0.02, 200)
    centreline = np.column_stack([x, np.full_like(x, row * pixel / 2), np.zeros_like(x)])
    tangents = np.tile([1.0, 0.0, 0.0], (len(x), 1))
    state = WireState(0.0, 0.0, 0.0, centreline, tangents, width_px * pixel / 2)
    footprint = wire_footprint(state, geometry)
    mask = footprint.mask()
    rows = np.arange(64)
    expected = (np.abs(rows - row) <= width_px / 2).astype(np.uint8)
    for column in range(64):
        np.testing.assert_array_equal(mask[:, column], expected)
    # The mean chord falls with the distance from the axis: every wire pixel of the
    # mask attenuates more than every pixel outside it.
    chord = footprint.chord_lengths()
    assert chord[mask == 0].max() < chord[mask == 1].min()


def test_wire_chord_is_zero_away_from_the_wire(fluoro):
    renderer, state = fluoro
    chord = wire_chord_lengths(state, renderer.geometry)
    assert chord.max() > 0
    pixels, _ = renderer.geometry.project(state.centreline)
    far = np.ones_like(chord, bool)
    for u, v in np.rint(pixels).astype(int):
        far[max(v - 3, 0):v + 4, max(u - 3, 0):u + 4] = False
    assert chord[far].max() == 0.0


def test_projected_wire_is_darker_than_its_surroundings(fluoro):
    renderer, state = fluoro
    with_wire = renderer.attenuation(state)
    without = renderer.attenuation(None)
    pixels, _ = renderer.geometry.project(state.centreline)
    u, v = np.rint(pixels).astype(int).T
    inside = renderer.collimator[np.clip(v, 0, 95), np.clip(u, 0, 95)] & (u >= 0) & (u < 96) & (v >= 0) & (v < 96)
    assert inside.sum() > 20
    assert np.median((with_wire - without)[v[inside], u[inside]]) > 0.1


def test_frame_has_collimation_noise_and_window(fluoro):
    renderer, state = fluoro
    frame = renderer.render(state)
    assert frame.dtype == np.uint8 and frame.shape == (96, 96)
    assert (frame[~renderer.collimator] == 0).all() and (frame[renderer.collimator] > 0).all()
    np.testing.assert_array_equal(renderer.render(state), frame)  # noise: a function of the frame's time
    later = renderer.render(state, noise_key=[1])
    assert np.abs(frame.astype(int) - later).max() > 0  # quantum noise differs frame to frame
    narrow = renderer.render(state, window_center=0.5, window_width=0.2)
    assert narrow[renderer.collimator].std() > frame[renderer.collimator].std()  # narrower window, more contrast



def test_anatomy_rays_are_rendered_in_patches_with_the_same_image(tmp_path, monkeypatch):
    """Issue 23: the first (cold-cache) render traced all 512x512 rays at once, 13.8 GB peak. In
    RAY_PATCH x RAY_PATCH batches the image must be the one all rays at once give."""
    from guidewire.twin import fluoroscopy

    rng = np.random.default_rng(0)
    volume = rng.uniform(-1000.0, 1500.0, (24, 24, 24)).astype(np.float32)
    ct = tmp_path / "noise.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.diag([3.0, 3.0, 3.0, 1.0])), ct)
    images = []
    for patch, cache in ((48, "whole"), (8, "patches")):  # 1 batch of 48x48 rays, then 36 of 8x8
        monkeypatch.setattr(fluoroscopy, "RAY_PATCH", patch)
        config = FluoroscopyConfig(ct_file=str(ct), cache_dir=str(tmp_path / cache), detector_pixels=48,
                                   pixel_spacing=0.003)
        renderer = AnatomyRenderer(config)
        images.append(renderer.render(ct_to_bench(config), carm_to_bench(config))[0])
        drr, _ = renderer._drr
        assert drr.patch_size == patch and drr.n_patches == (48 // patch) ** 2
    assert images[0].std() > 0
    np.testing.assert_allclose(images[1], images[0], rtol=1e-5, atol=1e-4)



def test_two_views_at_one_instant_do_not_share_their_noise(default_config):
    # Each view is its own process with the bench's seed: their quantum noise must still be independent.
    from guidewire.twin.fluoroscopy import FluoroscopyRenderer, with_view

    differences = []
    for view in ("ap", "lateral"):
        renderer = FluoroscopyRenderer(with_view(default_config.fluoroscopy, view, detector_pixels=64),
                                       default_config.seed)
        first, second = (renderer.render(None, noise_key=[key]).astype(float) for key in (1, 2))
        differences.append((first - second)[renderer.collimator])
    assert differences[0].std() > 0 and differences[1].std() > 0
    assert abs(np.corrcoef(*differences)[0, 1]) < 0.1  # 0.21 when the views shared a seed
