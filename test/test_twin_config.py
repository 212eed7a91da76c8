import pytest

from guidewire.twin.config import BenchConfig, ConfigError, load_bench_config
from conftest import ROOT


def test_shipped_yaml_matches_library_defaults():
    # config/bench.yaml documents the defaults; the two must not drift apart.
    assert load_bench_config(ROOT / "config" / "bench.yaml") == BenchConfig()


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"bench\.magnetometer_array\.pich"):
        load_bench_config({"bench": {"magnetometer_array": {"pich": 0.02}}})


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match="unknown key benchh"):
        load_bench_config({"benchh": {}})


def test_negative_pitch_is_named():
    with pytest.raises(ConfigError, match=r"bench\.magnetometer_array\.pitch must be > 0"):
        load_bench_config({"bench": {"magnetometer_array": {"pitch": -0.02}}})


def test_missing_ct_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.nii.gz"
    with pytest.raises(ConfigError, match=f"bench.fluoroscopy.ct_file: CT file not found: {missing}"):
        load_bench_config({"bench": {"fluoroscopy": {"ct_file": str(missing)}}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"bench\.magnetometer_array\.rows has an invalid value"):
        load_bench_config({"bench": {"magnetometer_array": {"rows": "four"}}})


def test_wire_diameter_outside_papers_range():
    with pytest.raises(ConfigError, match=r"bench\.guidewire\.diameter"):
        load_bench_config({"bench": {"guidewire": {"diameter": 0.002}}})


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_bench_config(tmp_path / "absent.yaml")


def test_camera_list_entries_are_checked():
    with pytest.raises(ConfigError, match=r"bench\.stereo\[1\]\.fx must be > 0"):
        load_bench_config({"bench": {"stereo": [{"name": "a"}, {"name": "b", "fx": 0}]}})


@pytest.mark.parametrize("bench, key", [
    ({"magnetometer_array": {"noise_rms": float("nan")}}, r"bench\.magnetometer_array\.noise_rms has an invalid "
                                                          r"value nan \(expected a finite float\)"),
    ({"earth_field": [20e-6, float("nan"), -44e-6]}, r"bench\.earth_field has an invalid value \[2e-05, nan"),
    ({"guidewire": {"insertion_speed": float("nan")}}, r"bench\.guidewire\.insertion_speed has an invalid value nan"),
    ({"guidewire": {"insertion_speed": float("inf")}}, r"bench\.guidewire\.insertion_speed has an invalid value inf"),
    ({"stereo": [{"name": "a", "noise_rms": -2.0}]}, r"bench\.stereo\[0\]\.noise_rms must be >= 0, got -2\.0"),
    ({"fluoroscopy": {"detector_blur": -0.6}}, r"bench\.fluoroscopy\.detector_blur must be >= 0, got -0\.6"),
    ({"guidewire": {"segment_magnet_spacing": -0.02}}, r"bench\.guidewire\.segment_magnet_spacing must be > 0"),
])
def test_non_finite_and_negative_settings_are_named_with_their_value(bench, key):
    """Issue 23: a NaN noise or Earth field made the driver publish -9.2e10 T with status OK; a NaN
    insertion speed froze the wire; negative noise, blur and spacing were taken silently."""
    with pytest.raises(ConfigError, match=key):
        load_bench_config({"bench": bench})


def test_yaml_nan_is_rejected_from_a_file(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text("bench:\n  magnetometer_array:\n    noise_rms: .nan\n")
    with pytest.raises(ConfigError, match=r"noise_rms has an invalid value nan"):
        load_bench_config(path)
