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
