from dataclasses import replace

import magpylib
import numpy as np
import pytest

from guidewire.twin.magnetics import (STATUS_OK, STATUS_SATURATED, MagnetometerArrayModel, quantise,
                                      sensor_positions, wire_magnets)
from guidewire.twin.wire import GuidewireModel
from guidewire.twin.config import GuidewireConfig, MagnetometerArrayConfig

MU0 = 4e-7 * np.pi


def straight_tip_magnet_state(length=0.05):
    """A straight wire along +x ending at the origin, carrying only a tip magnet."""
    config = GuidewireConfig(entry_point=(-length, 0.0, 0.0), body_max_curvature=1e-9, tip_max_curvature=1e-9,
                             min_inserted_length=length, max_inserted_length=length, segment_magnet_count=0)
    return config, GuidewireModel(config, seed=0).shape(length, 0.0)


def test_tip_magnet_far_field_matches_dipole_and_falls_as_inverse_cube():
    config, state = straight_tip_magnet_state()
    magnet, = wire_magnets(state, config)
    volume = np.pi * (config.diameter / 2) ** 2 * config.tip_magnet_length
    moment = config.tip_magnet_polarization / MU0 * volume * np.array([1.0, 0.0, 0.0])
    dipole = magpylib.misc.Dipole(moment=moment, position=magnet.position)
    directions = np.array([[0.3, 0.4, -0.866], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for r in (0.1, 0.2):
        observers = magnet.position + r * directions
        np.testing.assert_allclose(magnet.getB(observers), dipole.getB(observers), rtol=2e-3, atol=1e-12)
    near = np.linalg.norm(magnet.getB(magnet.position + 0.1 * directions), axis=1)
    far = np.linalg.norm(magnet.getB(magnet.position + 0.2 * directions), axis=1)
    np.testing.assert_allclose(near / far, 8.0, rtol=2e-3)


def test_tip_magnet_on_axis_field_matches_closed_form():
    # Independent of magpylib: on the axis of an axially polarised cylinder (J, radius R,
    # length L), B(z) = J/2 [(z+L/2)/sqrt((z+L/2)^2+R^2) - (z-L/2)/sqrt((z-L/2)^2+R^2)].
    config, state = straight_tip_magnet_state()
    magnet, = wire_magnets(state, config)
    radius, length, polarization = config.diameter / 2, config.tip_magnet_length, config.tip_magnet_polarization
    distances = np.array([0.004, 0.01, 0.03])
    a, b = distances + length / 2, distances - length / 2
    expected = polarization / 2 * (a / np.sqrt(a ** 2 + radius ** 2) - b / np.sqrt(b ** 2 + radius ** 2))
    observers = magnet.position + np.outer(distances, [1.0, 0.0, 0.0])
    field = magnet.getB(observers)
    np.testing.assert_allclose(field[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(field[:, 1:], 0.0, atol=1e-12)


def test_sensor_grid_geometry():
    config = MagnetometerArrayConfig(rows=4, cols=4, pitch=0.025, height=-0.005)
    positions = sensor_positions(config)
    assert positions.shape == (16, 3)
    np.testing.assert_allclose(positions.mean(0), [0.0, 0.0, -0.005], atol=1e-12)
    np.testing.assert_allclose(positions[1] - positions[0], [0.025, 0.0, 0.0])  # row-major: x along a row
    np.testing.assert_allclose(positions[4] - positions[0], [0.0, 0.025, 0.0])


def test_quantisation_and_saturation():
    config = MagnetometerArrayConfig()
    field = np.array([[1e-6 + 3e-9, 0.0, -2.5e-6], [1300e-6, 0.0, 0.0], [0.0, -5e-3, 0.0]])
    counts, status = quantise(field, config)
    np.testing.assert_array_equal(counts[0], [100, 0, -250])  # 10 nT per count, rounded
    assert list(status) == [STATUS_OK, STATUS_SATURATED, STATUS_SATURATED]
    assert counts[2, 1] == -(2 ** 17)  # 18-bit two's complement clips


def test_array_sample_noise_and_signal(default_config):
    c = default_config
    model = MagnetometerArrayModel(c.magnetometer_array, c.guidewire, c.static_source, c.earth_field, seed=1)
    state = GuidewireModel(c.guidewire, c.seed).state(0.0)
    # One wire at 400 instants: the noise is a function of time, the field of the shape.
    samples = np.stack([model.sample(replace(state, time=0.01 * i)).field for i in range(400)])
    noise = samples - model.true_field(state)
    assert noise.std() == pytest.approx(120e-9, rel=0.1)
    assert np.abs(noise.mean()) < 20e-9
    # The wire is visible above the noise at the nearest sensor, and the background is static.
    assert np.abs(model.wire_field(state)).max() > 10 * 120e-9
    assert (np.abs(model.background) < c.magnetometer_array.measurement_range).all()


def test_vectorised_wire_field_equals_magpylib_objects(default_config):
    from guidewire.twin import DigitalTwin
    from guidewire.twin.magnetics import wire_magnet_placements, wire_magnets_fields

    bench = DigitalTwin(default_config)
    positions = sensor_positions(default_config.magnetometer_array)
    for time in (0.0, 3.3, 11.0):
        state = bench.state(time)
        objects = magpylib.getB(wire_magnets(state, default_config.guidewire), positions, sumup=True)
        vectorised = wire_magnets_fields([wire_magnet_placements(state, default_config.guidewire)], positions)[0]
        np.testing.assert_allclose(vectorised, objects, rtol=1e-9, atol=1e-15)


def test_a_block_of_samples_equals_one_sample_at_a_time(default_config):
    # The driver simulates a block of upcoming samples in one call; the readings,
    # noise included, must be those of sampling each time on its own.
    from guidewire.twin import DigitalTwin
    from guidewire.twin.sources import SimulatedArray

    times = [1.0 + k / 400 for k in range(7)]
    sequential_array = SimulatedArray(DigitalTwin(default_config))
    one_by_one = [sequential_array.read(t) for t in times]
    block = SimulatedArray(DigitalTwin(default_config)).read_ahead(times)
    assert len(block) == len(times)
    for single, batched in zip(one_by_one, block):
        np.testing.assert_allclose(batched.field, single.field, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(batched.status, single.status)
    # The readings are a function of time alone: another process reading the times in another order agrees.
    backwards = SimulatedArray(DigitalTwin(default_config)).read_ahead(times[::-1])[::-1]
    for single, other in zip(one_by_one, backwards):
        np.testing.assert_array_equal(other.field, single.field)
    # Consecutive samples differ: the wire moves and the noise is fresh.
    assert not np.allclose(block[0].field, block[1].field)
