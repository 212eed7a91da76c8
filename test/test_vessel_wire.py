"""The held-out vessel-following wire generator keeps its contract and draws varied shapes."""

import time

import numpy as np
import pytest

from guidewire.validation.vessel_wire import VesselWire, vessel_wire

SEEDS = range(50)
LENGTHS = (0.08, 0.1234, 0.16, 0.22)
ENTRY = np.array([-0.12, 0.0, 0.025])
WORKSPACE = ((-0.125, 0.095), (-0.06, 0.06), (0.004, 0.07))


def _angles(a, b):
    """Angle (rad) between corresponding rows of two arrays of unit vectors."""
    return np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0))


def check_contract(wire, length, *, entry_point=ENTRY, entry_direction=(1.0, 0.0, 0.0),
                   workspace=WORKSPACE, spacing=0.001, max_curvature=60.0):
    c, t = wire.centreline, wire.tangents
    assert isinstance(wire, VesselWire)
    assert c.ndim == 2 and c.shape[1] == 3 and c.shape == t.shape
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(t))
    assert wire.inserted_length == pytest.approx(length, rel=1e-12)

    # arc length and equal spacing: N - 1 = round(L / spacing) segments of L / (N - 1)
    seg = np.linalg.norm(np.diff(c, axis=0), axis=1)
    assert len(seg) == max(2, round(length / spacing))
    assert abs(seg.sum() - length) <= 1e-3 * length
    np.testing.assert_allclose(seg, length / len(seg), rtol=1e-9)
    assert abs(seg[0] - spacing) <= 0.5 * spacing / len(seg) + 1e-12

    # start
    np.testing.assert_allclose(c[0], entry_point, atol=1e-12)
    d0 = np.asarray(entry_direction, float) / np.linalg.norm(entry_direction)
    np.testing.assert_allclose(t[0], d0, atol=1e-6)

    # workspace
    lo, hi = np.asarray(workspace, float).T
    assert np.all(c >= lo) and np.all(c <= hi), (c.min(axis=0), c.max(axis=0))

    # unit tangents, towards the tip, consistent with the points, curvature bounded
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-9)
    chords = np.diff(c, axis=0) / seg[:, None]
    kappa_tangent = _angles(t[1:], t[:-1]) / seg
    kappa_chord = _angles(chords[1:], chords[:-1]) / seg[1:]
    assert kappa_tangent.max() <= max_curvature, kappa_tangent.max()
    assert kappa_chord.max() <= max_curvature, kappa_chord.max()
    # tangent continuity: each chord lies between the tangents at its ends
    mismatch = np.maximum(_angles(chords, t[:-1]), _angles(chords, t[1:]))
    assert mismatch.max() <= 0.5 * max_curvature * seg.max() + 1e-9


@pytest.mark.parametrize("length", LENGTHS)
def test_contract_default_bench(length):
    for seed in SEEDS:
        check_contract(vessel_wire(seed, length), length)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spacing": 0.0005},
        {"spacing": 0.002},
        {"max_curvature": 30.0},
        {"max_curvature": 120.0},
        {"entry_direction": (2.0, 0.5, 0.4)},
        {"entry_point": (-0.10, 0.04, 0.01), "entry_direction": (1.0, -1.0, 0.0)},
        {"entry_point": (0.0, 0.0, 0.04), "entry_direction": (0.0, 0.0, -1.0)},
    ],
)
def test_contract_other_arguments(kwargs):
    for seed in range(12):
        for length in (0.08, 0.22):
            check_contract(vessel_wire(seed, length, **kwargs), length, **kwargs)


def test_arrays_are_read_only():
    wire = vessel_wire(3, 0.1)
    with pytest.raises(ValueError):
        wire.centreline[0, 0] = 1.0
    with pytest.raises(ValueError):
        wire.tangents[0, 0] = 1.0


def test_deterministic():
    for seed in (0, 7, 123456789, -5):
        a, b = vessel_wire(seed, 0.15), vessel_wire(seed, 0.15)
        assert np.array_equal(a.centreline, b.centreline)
        assert np.array_equal(a.tangents, b.tangents)


def test_different_seeds_give_different_shapes():
    wires = np.stack([vessel_wire(seed, 0.16).centreline for seed in SEEDS])
    diff = np.linalg.norm(wires[:, None] - wires[None, :], axis=-1).max(axis=-1)  # (S, S) max point distance
    off_diagonal = diff[~np.eye(len(wires), dtype=bool)]
    assert off_diagonal.min() > 0.005, off_diagonal.min()


def test_shapes_are_varied():
    zr, end_angle, end_y, max_gap = [], [], [], []
    for length in (0.12, 0.22):
        for seed in SEEDS:
            wire = vessel_wire(seed, length)
            c, t = wire.centreline, wire.tangents
            zr.append(np.ptp(c[:, 2]))
            end_angle.append(np.degrees(np.arccos(np.clip(t[0] @ t[-1], -1.0, 1.0))))
            end_y.append(c[-1, 1])
            # largest distance of a point from the chord entry -> tip: 0 for a straight wire
            chord = (c[-1] - c[0]) / np.linalg.norm(c[-1] - c[0])
            rel = c - c[0]
            max_gap.append(np.linalg.norm(rel - (rel @ chord)[:, None] * chord, axis=1).max() / length)
    zr, end_angle, end_y, max_gap = map(np.asarray, (zr, end_angle, end_y, max_gap))
    # the wire rises and falls, not a planar curve at one height
    assert np.median(zr) > 0.003, np.median(zr)
    assert np.mean(zr > 0.010) > 0.25
    assert zr.max() < 0.066
    # it turns both ways, sometimes doubles back, sometimes runs nearly straight
    assert np.mean(end_y > 0.01) > 0.15 and np.mean(end_y < -0.01) > 0.15
    assert np.sum(end_angle > 90.0) >= 4, np.sort(end_angle)[-5:]  # heading back towards the entry
    assert np.sum(max_gap < 0.05) >= 4, np.sort(max_gap)[:5]  # within 5 % of the length of a straight line


def test_fast():
    vessel_wire(0, 0.22)  # warm up
    start = time.perf_counter()
    count = 0
    for seed in range(40):
        for length in (0.08, 0.22):
            vessel_wire(1000 + seed, length)
            count += 1
    per_wire = (time.perf_counter() - start) / count
    assert per_wire < 0.020, per_wire


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        vessel_wire(0, 0.1, entry_point=(0.2, 0.0, 0.02))
    with pytest.raises(ValueError):
        vessel_wire(0, -0.1)
    with pytest.raises(ValueError):
        vessel_wire(0, 0.1, spacing=0.0)
    with pytest.raises(ValueError):
        vessel_wire(0, 0.1, entry_direction=(0.0, 0.0, 0.0))
