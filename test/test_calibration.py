"""Per-sensor calibration: hard iron, soft iron, axis remap, background; bad files named."""
import numpy as np
import pytest
import yaml

from guidewire.calibration import ArrayCalibration, axis_remap
from guidewire.twin.config import ConfigError


def test_remap_soft_and_hard_iron_in_that_order(tmp_path):
    path = tmp_path / "calibration.yaml"
    path.write_text(yaml.safe_dump({"calibration": {"sensors": [
        {"hard_iron": [1e-6, 2e-6, 3e-6], "soft_iron": [[2, 0, 0], [0, 1, 0], [0, 0, 1]], "axes": ["+y", "-x", "+z"]},
        {}]}}))
    calibration = ArrayCalibration.load(path, 2)
    raw = np.array([[11e-6, 22e-6, 33e-6], [1e-6, 2e-6, 3e-6]])
    # sensor 0: minus hard iron (10, 20, 30) uT, soft iron doubles x (20, 20, 30), array x = +y, y = -x.
    np.testing.assert_allclose(calibration.apply(raw), [[20e-6, -20e-6, 30e-6], [1e-6, 2e-6, 3e-6]])


def test_background_is_subtracted_and_round_trips_through_its_file(tmp_path):
    calibration = ArrayCalibration.identity(2)
    calibration.background = np.array([[1e-6, 0, 0], [0, 1e-6, 0]])
    calibration.save_background(tmp_path / "background.yaml")
    loaded = ArrayCalibration.load(tmp_path / "background.yaml", 2)
    np.testing.assert_allclose(loaded.apply(np.full((2, 3), 1e-6)), [[0, 1e-6, 1e-6], [1e-6, 0, 1e-6]])
    np.testing.assert_allclose(loaded.apply(np.full((2, 3), 1e-6), subtract_background=False), 1e-6)


@pytest.mark.parametrize("content, message", [
    ({"calibration": {"sensors": [{}, {}, {}]}}, "3 entries, the array has 2"),
    ({"calibration": {"sensors": [{"axes": ["+x", "+x", "+z"]}]}}, "twice"),
    ({"calibration": {"sensors": [{"axes": ["+x", "+w", "+z"]}]}}, "'\\+w'"),
    ({"calibration": {"sensors": [{"offset": [0, 0, 0]}]}}, "unknown key 'offset'"),
    ({"calibration": {"background": [[0, 0, 0]]}}, "background \\(2 rows of 3\\) must have shape"),
    # Issue 23: a 2-element hard_iron said only "cannot reshape array of size 2 into shape (3,)".
    ({"calibration": {"sensors": [{"hard_iron": [1e-6, 2e-6]}]}},
     r"calibration.sensors\[0\].hard_iron must have shape \(3,\), got \[1e-06, 2e-06\]"),
    ({"calibration": {"sensors": [{"hard_iron": [0, float("nan"), 0]}]}}, r"hard_iron must be finite"),
    ({"calibration": {"sensors": [{"hard_iron": ["a", 0, 0]}]}}, r"hard_iron must be numbers, got \['a'"),
    ({"calibration": {"sensors": [{"soft_iron": [[1, 0], [0, 1]]}]}}, r"soft_iron must have shape \(3, 3\)"),
    ({"calibration": {"sensors": [{"soft_iron": [[1, 0, 0], [0, 1, 0], [0, 0, 0]]}]}}, "soft_iron is singular"),
])
def test_bad_calibration_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=message):
        ArrayCalibration.load(path, 2)
    with pytest.raises(ConfigError, match="cannot read"):
        ArrayCalibration.load(tmp_path / "absent.yaml", 2)


def test_axis_remap_is_a_signed_permutation():
    np.testing.assert_array_equal(axis_remap(["-z", "+x", "y"]), [[0, 0, -1], [1, 0, 0], [0, 1, 0]])


def test_a_recorded_background_leaves_out_missing_samples_and_is_subtracted_and_kept(tmp_path):
    from guidewire.calibration import CalibratedField

    kept = tmp_path / "background.yaml"
    field = CalibratedField.open("", 2, subtract_background=True, background_file=str(kept))
    assert field.background_state == "none"
    field.record_background(3)
    samples = [np.array([[1e-6, 0, 0], [np.nan] * 3]), np.array([[3e-6, 0, 0], [5e-6, 0, 0]])]
    assert field.apply(samples[0])[1] is None and field.apply(samples[1])[1] is None
    published, recorded = field.apply(np.array([[2e-6, 0, 0], [7e-6, 0, 0]]))
    np.testing.assert_allclose(recorded.background, [[2e-6, 0, 0], [6e-6, 0, 0]])
    np.testing.assert_allclose(published, [[0, 0, 0], [1e-6, 0, 0]], atol=1e-18)
    assert field.background_state == "subtracted"
    again = CalibratedField.open("", 2, background_file=str(kept))
    np.testing.assert_allclose(again.calibration.background, recorded.background)
    assert again.background_state == "recorded"
