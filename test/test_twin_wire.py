import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from guidewire.twin.wire import GuidewireModel, discrete_curvature


@pytest.fixture(scope="module")
def model(default_config):
    return GuidewireModel(default_config.guidewire, default_config.seed)


def test_same_seed_same_wire_and_other_seed_differs(default_config):
    a = GuidewireModel(default_config.guidewire, 3).state(4.2)
    b = GuidewireModel(default_config.guidewire, 3).state(4.2)
    c = GuidewireModel(default_config.guidewire, 4).state(4.2)
    np.testing.assert_array_equal(a.centreline, b.centreline)
    assert np.abs(a.centreline - c.centreline).max() > 1e-3


@pytest.mark.parametrize("seed", range(8))
def test_length_and_curvature_bounds(default_config, seed):
    config = default_config.guidewire
    model = GuidewireModel(config, seed)
    for time in np.linspace(0, model.cycle_period, 9):
        state = model.state(time)
        assert config.min_inserted_length - 1e-9 <= state.inserted_length <= config.max_inserted_length + 1e-9
        # Inextensible: the polyline's length equals the inserted length.
        assert state.length == pytest.approx(state.inserted_length, rel=1e-3)
        assert discrete_curvature(state.centreline).max() <= config.tip_max_curvature * 1.02
        assert state.centreline[:, 2].min() > 0.005, "wire must stay above the platform"
        np.testing.assert_allclose(np.linalg.norm(state.tangents, axis=1), 1.0, atol=1e-9)


def test_insertion_cycle_advances_then_retracts(model, default_config):
    config = default_config.guidewire
    half = model.cycle_period / 2
    assert model.inserted_length(0.0) == pytest.approx(config.min_inserted_length)
    assert model.inserted_length(half) == pytest.approx(config.max_inserted_length)
    assert model.inserted_length(half / 2) == pytest.approx(
        config.min_inserted_length + config.insertion_speed * half / 2)
    assert model.inserted_length(model.cycle_period) == pytest.approx(config.min_inserted_length)


def test_insertion_moves_material_points_along_the_wire(model):
    # Advancing by exactly one sample spacing: the new shape's last points are the old
    # wire's material points, now one spacing further from the entry point.
    spacing = model.config.point_spacing
    before = model.shape(0.15, 0.3)
    after = model.shape(0.15 + spacing, 0.3)
    assert len(after.centreline) == len(before.centreline) + 1
    assert after.length == pytest.approx(before.length + spacing, rel=1e-3)


def test_roll_rotates_the_shape_about_the_entry_axis(model):
    # A wire entering along x, rolled by 90 degrees, equals the unrolled wire
    # rotated by 90 degrees about the entry axis through the entry point.
    entry = np.asarray(model.config.entry_point)
    base = model.shape(0.15, 0.0)
    rolled = model.shape(0.15, np.pi / 2)
    rotation = Rotation.from_rotvec(np.asarray(model.config.entry_direction) * np.pi / 2)
    np.testing.assert_allclose(rotation.apply(base.centreline - entry) + entry, rolled.centreline, atol=1e-9)
