"""The held-out insertion-sequence generator keeps its contract, and its wire is not follow-the-leader."""

import numpy as np
import pytest

from guidewire.validation.insertion_sequence import (
    InsertionFrame,
    insertion_sequence,
    lumen_axis,
    tip_path_departure,
)

ENTRY = np.array([-0.12, 0.0, 0.025])
DIRECTION = np.array([1.0, 0.0, 0.0])
WORKSPACE = ((-0.125, 0.095), (-0.06, 0.06), (0.004, 0.07))
# an insertion to 90 mm with a 6 mm retraction on the way
LENGTHS = np.concatenate([np.arange(0.03, 0.0701, 0.004), [0.067, 0.064, 0.068], np.arange(0.072, 0.0901, 0.004)])
SEEDS = (11, 12, 13)


@pytest.fixture(scope="module")
def sequences():
    return {seed: insertion_sequence(seed, LENGTHS) for seed in SEEDS}


def _curvature(points):
    seg = np.diff(points, axis=0)
    size = np.linalg.norm(seg, axis=1)
    unit = seg / size[:, None]
    turn = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1.0, 1.0))
    return turn / size[1:]


def test_contract(sequences):
    lo, hi = np.asarray(WORKSPACE).T
    for seed, frames in sequences.items():
        lumen = lumen_axis(seed, LENGTHS.max())
        assert np.all(lumen.radius >= 0.001) and np.all(lumen.radius <= 0.003)
        assert len(frames) == len(LENGTHS)
        for frame, length in zip(frames, LENGTHS):
            c = frame.centreline
            assert isinstance(frame, InsertionFrame) and frame.inserted_length == length
            assert c.ndim == 2 and c.shape[1] == 3 and np.all(np.isfinite(c))
            seg = np.linalg.norm(np.diff(c, axis=0), axis=1)
            assert len(seg) == round(length / 0.001)
            assert abs(seg.sum() - length) < 1e-9
            np.testing.assert_allclose(seg, 0.001, rtol=0.05)
            np.testing.assert_allclose(c[0], ENTRY, atol=1e-12)
            np.testing.assert_allclose((c[1] - c[0]) / seg[0], DIRECTION, atol=1e-9)
            assert np.all(c >= lo) and np.all(c <= hi)
            dist, radius, _ = lumen.distance(c)
            assert np.all(dist <= radius + 1e-4), (seed, length, (dist - radius).max())
            assert _curvature(c).max() <= 60.0, (seed, length, _curvature(c).max())


def test_deterministic_and_seeded(sequences):
    again = insertion_sequence(SEEDS[0], LENGTHS)
    for a, b in zip(again, sequences[SEEDS[0]]):
        np.testing.assert_array_equal(a.centreline, b.centreline)
    tips = [frames[-1].centreline[-1] for frames in sequences.values()]
    assert min(np.linalg.norm(tips[i] - tips[j]) for i in range(3) for j in range(i)) > 0.002


def test_not_follow_the_leader(sequences):
    for seed, frames in sequences.items():
        lumen = lumen_axis(seed, LENGTHS.max())
        departure = tip_path_departure(frames)
        assert departure.max() > 2e-4, seed  # the body has left the path its tip took...
        assert departure.max() < 2.0 * lumen.radius.max(), seed  # ...but stays within a lumen's width of it
        # nor is a frame the first part of a later one: the body relaxes as the wire goes on
        first, last = frames[0].centreline, frames[-1].centreline
        moved = np.linalg.norm(last[: len(first)] - first, axis=1)
        assert moved.max() > 2e-4, seed
        # but smoothly: consecutive frames' common parts stay within a lumen's width
        for a, b in zip(frames[:-1], frames[1:]):
            n = min(len(a.centreline), len(b.centreline))
            assert np.linalg.norm(a.centreline[:n] - b.centreline[:n], axis=1).max() < 2.0 * lumen.radius.max()


def test_other_entry_and_spacing():
    frames = insertion_sequence(3, [0.02, 0.05], entry_point=(0.0, 0.0, 0.035), entry_direction=(0.0, 1.0, 0.2),
                                spacing=0.0005)
    d0 = np.array([0.0, 1.0, 0.2]) / np.linalg.norm([0.0, 1.0, 0.2])
    lumen = lumen_axis(3, 0.05, entry_point=(0.0, 0.0, 0.035), entry_direction=(0.0, 1.0, 0.2))
    for frame in frames:
        c = frame.centreline
        assert len(c) == round(frame.inserted_length / 0.0005) + 1
        np.testing.assert_allclose((c[1] - c[0]) / np.linalg.norm(c[1] - c[0]), d0, atol=1e-9)
        dist, radius, _ = lumen.distance(c)
        assert np.all(dist <= radius + 1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lengths": []},
        {"lengths": [0.05, -0.01]},
        {"lengths": [0.05, float("nan")]},
        {"lengths": [0.05], "spacing": 0.0},
        {"lengths": [0.05], "entry_point": (-0.124, 0.0, 0.025)},
        {"lengths": [0.05], "entry_direction": (0.0, 0.0, 0.0)},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        insertion_sequence(1, **kwargs)
