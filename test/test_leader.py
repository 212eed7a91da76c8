"""Follow-the-leader (guidewire.reconstruction.leader): the track of earlier tips, the fit that uses it and
the command line over the case folders of one insertion."""
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import yaml

from guidewire.reconstruction import (ArrayField, LeaderPath, LeaderSettings, PathTrack, WireMagnets, WirePrior,
                                      reconstruct, reconstruct_with_leader, shape_errors)
from guidewire.reconstruction.case import write_case
from guidewire.reconstruction.metrics import z_coverage
from guidewire.reconstruction.views import arc_lengths, points_at
from guidewire.twin.config import load_bench_config
from guidewire.twin.lab import Lab, LabErrors, wire_state_from_centreline
from guidewire.validation.vessel_wire import vessel_wire


def test_track_averages_tips_by_inverse_variance_and_leaves_out_the_distal_section():
    track = PathTrack(LeaderSettings(bin_length=0.002, distal_free=0.015, lumen_sigma=0.001, curvature_sigma=1e6))
    track.add(0.0401, [0.01, 0.0, 0.0], 0.001)
    track.add(0.0409, [0.02, 0.0, 0.0], 0.002)  # same bin, a quarter of the weight
    track.add(0.0601, [0.03, 0.0, 0.0], 0.001)
    path = track.path(0.0601 + 0.015)  # the last tip is in the distal section of a wire that long
    assert len(path.along) == 1
    assert path.positions[0] == pytest.approx([0.012, 0.0, 0.0])
    assert path.along[0] == pytest.approx((4 * 0.0401 + 0.0409) / 5)
    assert path.sigma[0] == pytest.approx(np.hypot(0.001 / np.sqrt(1.25), 0.001))
    assert len(track.path(0.08).along) == 2
    assert track.path(0.05) is None
    track.clear()
    assert track.path(0.2) is None


def test_track_refuses_non_finite_tips_by_name():
    track = PathTrack()
    with pytest.raises(ValueError, match="finite"):
        track.add(0.05, [np.nan, 0.0, 0.0], 0.001)
    with pytest.raises(ValueError, match="inserted length"):
        track.add(-0.01, [0.0, 0.0, 0.0], 0.001)


def test_disagreement_weighs_only_the_points_a_fit_places_well():
    track = PathTrack(LeaderSettings(lumen_sigma=0.001, placed_sigma=0.002, curvature_sigma=1e6))
    for length in np.arange(0.02, 0.12, 0.002):
        track.add(length, [length, 0.0, 0.0], 0.0003)
    path = track.path(0.12)
    line = np.column_stack([np.linspace(0.0, 0.12, 121), np.zeros(121), np.zeros(121)])
    placed = np.full(121, 0.001)
    assert track.disagreement(path, line, placed, 0.12) < 0.2
    lifted = line + [0.0, 0.0, 0.005]  # 5 mm off the path: (5 / hypot(1, ~1))^2, about 12
    assert track.disagreement(path, lifted, placed, 0.12) > 8
    assert track.disagreement(path, lifted, np.full(121, 0.01), 0.12) == 0.0  # nothing placed well enough


def test_a_misplaced_tip_does_not_bend_the_path():
    """A fit that went wrong by 20 mm among tips on a straight line: the path stays on the line."""
    track = PathTrack()
    lengths = np.arange(0.03, 0.15, 0.002)
    for length in lengths:
        track.add(length, [length, 0.0, 0.02], 0.0005)
    track.add(0.0901, [0.09, 0.0, 0.04], 0.0005)
    path = track.path(0.2)
    assert np.abs(path.positions[:, 2] - 0.02).max() < 0.001
    np.testing.assert_allclose(path.positions[:, 0], path.along, atol=2e-4)


def test_the_path_of_earlier_tips_places_a_one_view_wire_that_follows_its_leader():
    """An insertion in a lab with every error on, frames 40-120 mm: the first L of one vessel wire at each
    step (it follows its leader exactly: the method's own assumption, so this shows that the fit uses the
    path, not how well the assumption holds; bench_reconstruction_sequence.py scores that on an
    independent generator). At 120 mm the fit with the path is much closer than the frame alone."""
    config = load_bench_config()
    g = config.guidewire
    lab, magnets = Lab(config), WireMagnets.of_guidewire(g)
    wire = vessel_wire(6001, 0.12, entry_point=g.entry_point, entry_direction=g.entry_direction)
    along = arc_lengths(wire.centreline)
    track = PathTrack()
    for index, length in enumerate(np.arange(0.04, 0.1201, 0.004)):
        truth = wire_state_from_centreline(wire.centreline[along <= length + 1e-9], g.diameter)
        case = lab.case(truth, LabErrors.typical(), 6001, frame_seed=index)
        array = ArrayField(case.sensor_positions, case.field, case.background, case.noise, case.status == 0)
        prior = WirePrior(inserted_length=truth.length, entry_point=np.asarray(g.entry_point),
                          entry_direction=np.asarray(g.entry_direction), magnets=magnets)
        following, note = reconstruct_with_leader(track, case.top_camera, case.top_centreline, prior, array)
        assert note in ("no path yet", ""), (index, note)  # a wire that follows its tip: the path is never refused
    alone = reconstruct(case.top_camera, case.top_centreline, prior, array)
    with_path, without = shape_errors(following.points, truth.centreline), shape_errors(alone.points, truth.centreline)
    print("with the path:", with_path.as_mm(), "alone:", without.as_mm())
    assert len(track) >= 15 and note == ""
    assert with_path.rmse < 0.6 * without.rmse and with_path.rmse < 0.0025


def test_path_errors_correlated_along_the_wire_widen_the_sigma_of_the_same_fit():
    """A path off the true wire by errors that run on along it (AR(1), 6 mm, 1.5 mm per axis): with the
    correlation modelled the fit is the same, its 1-sigma about twice as wide where the path holds it (the
    variance of a long average of AR(1) errors is (1 + rho) / (1 - rho) = 6 times an independent one's),
    and |z error| <= 2 sigma holds on most points, where counting the path's points as independent fell
    far short."""
    config = load_bench_config()
    g = config.guidewire
    lab, magnets = Lab(config), WireMagnets.of_guidewire(g)
    wire = vessel_wire(6003, 0.12, entry_point=g.entry_point, entry_direction=g.entry_direction)
    truth = wire_state_from_centreline(wire.centreline, g.diameter)
    case = lab.case(truth, LabErrors.typical(), 6003, frame_seed=0)
    array = ArrayField(case.sensor_positions, case.field, case.background, case.noise, case.status == 0)
    prior = WirePrior(inserted_length=truth.length, entry_point=np.asarray(g.entry_point),
                      entry_direction=np.asarray(g.entry_direction), magnets=magnets)
    along = np.arange(0.004, 0.1, 0.002)
    on_wire = points_at(truth.centreline, arc_lengths(truth.centreline), along)
    rng, rho = np.random.default_rng(0), np.exp(-0.002 / 0.006)
    coverage = {0.0: [], 0.006: []}
    for _ in range(8):
        errors = [rng.normal(0.0, 0.0015, 3)]
        for _ in along[1:]:
            errors.append(rho * errors[-1] + np.sqrt(1 - rho ** 2) * rng.normal(0.0, 0.0015, 3))
        path = LeaderPath(along=along, positions=on_wire + np.array(errors), sigma=np.full(len(along), 0.0015))
        fits = {length: reconstruct(case.top_camera, case.top_centreline,
                                    replace(prior, path=replace(path, correlation_length=length)), array)
                for length in coverage}
        independent, correlated = fits[0.0], fits[0.006]
        np.testing.assert_array_equal(correlated.points, independent.points)
        held = arc_lengths(independent.points) < along[-1]
        assert 1.5 < np.median(correlated.sigma[held] / independent.sigma[held]) < 3.0
        for length, fit in fits.items():
            coverage[length].append(z_coverage(fit.points, fit.sigma, truth.centreline))
    print({length: np.round(values, 2) for length, values in coverage.items()})
    assert np.mean(coverage[0.006]) > 0.8 and np.mean(coverage[0.0]) < np.mean(coverage[0.006]) - 0.15


def test_track_gives_its_path_the_correlation_length_of_its_settings():
    track = PathTrack(LeaderSettings(correlation_length=0.004, curvature_sigma=1e6))
    for length in (0.02, 0.024, 0.03):
        track.add(length, [length, 0.0, 0.0], 0.0005)
    path = track.path(0.05)
    correlation = path.correlation()
    assert path.correlation_length == 0.004
    np.testing.assert_allclose(correlation, np.exp(-np.abs(np.subtract.outer(path.along, path.along)) / 0.004))
    np.testing.assert_array_equal(replace(path, correlation_length=0.0).correlation(), np.eye(3))


def test_command_line_follows_the_leader_over_case_folders_of_one_insertion(tmp_path):
    """Frames of one insertion as case folders, one result per frame; the path carried from frame to frame."""
    config = load_bench_config()
    g = config.guidewire
    lab, magnets = Lab(config), WireMagnets.of_guidewire(g)
    wire = vessel_wire(6002, 0.1, entry_point=g.entry_point, entry_direction=g.entry_direction)
    along = arc_lengths(wire.centreline)
    folders, track = [], PathTrack()
    for index, length in enumerate(np.arange(0.04, 0.1001, 0.006)):
        truth = wire_state_from_centreline(wire.centreline[along <= length + 1e-9], g.diameter)
        case = lab.case(truth, LabErrors.typical(), 6002, frame_seed=index,
                        images={"camera_side": (None, None)})
        prior = WirePrior(inserted_length=truth.length, entry_point=np.asarray(g.entry_point),
                          entry_direction=np.asarray(g.entry_direction), magnets=magnets)
        array = ArrayField(case.sensor_positions, case.field, case.background, case.noise, case.status == 0)
        folders.append(tmp_path / f"frame_{index:02d}")
        write_case(folders[-1], case.top_camera, case.top_image, prior, array)
        in_process, _ = reconstruct_with_leader(track, case.top_camera, case.top_centreline, prior, array)
    done = subprocess.run([sys.executable, "-m", "guidewire.reconstruction", *map(str, folders), "--out",
                           str(tmp_path / "shapes"), "--follow-the-leader"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    results = [yaml.safe_load((tmp_path / "shapes" / f"{folder.name}.yaml").read_text()) for folder in folders]
    assert all(result["method"] == "physics + leader" for result in results)
    assert results[0]["note"] == "no path yet" and "note" not in results[-1]  # the last frame used the path
    # The same fits as in this process (the images written and read back, segmented alike).
    np.testing.assert_allclose(results[-1]["centreline"], in_process.points, atol=1e-6)
