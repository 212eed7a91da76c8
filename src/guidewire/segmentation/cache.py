"""The user cache of exported graphs (compiled packages, ONNX files): where each is kept, keyed
by everything its code depends on, and the pruning of those not used for a while."""
from __future__ import annotations

import hashlib
import os
import platform
import time
from pathlib import Path

import torch

from guidewire.segmentation import deformable, fganet
from guidewire.segmentation.precision import cpu_model, resolve_precision

CACHE_UNUSED_DAYS = 30  # cached exports not loaded for this long are deleted when a new one is built


def cache_folder(kind: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "guidewire_perception" / kind


def cached_export(path: Path, export) -> Path:
    """A cache entry: marked used (its modification time set to now) if it exists, else written
    by export(path), after which the entries unused for CACHE_UNUSED_DAYS are pruned."""
    if path.is_file():
        try:
            os.utime(path)
        except OSError:  # a read-only shared cache is still usable
            pass
    else:
        export(path)
        prune_cache(path.parent)
    return path


def prune_cache(folder: Path, unused_days: float = CACHE_UNUSED_DAYS) -> list[Path]:
    """Delete the exports in a cache folder not used for unused_days, and return them. Each new
    checkpoint, code version, torch or CPU keys a new export (5 MB compiled for the shipped
    network, 140 MB at paper width), so without this the cache only grows."""
    oldest = time.time() - unused_days * 86400
    pruned = []
    for export in folder.iterdir():
        try:
            if export.is_file() and export.stat().st_mtime < oldest:
                export.unlink()
                pruned.append(export)
        except OSError:  # another process pruned it first, or the cache is read-only
            pass
    return pruned


def export_key(weights: str | Path) -> "hashlib._Hash":
    """What every exported graph depends on: the checkpoint's content and the network's source
    (a change to how a module computes, such as the deformable sampling's form, is a new graph)."""
    key = hashlib.sha256(Path(weights).read_bytes())
    for module in (fganet, deformable):
        key.update(Path(module.__file__).read_bytes())
    return key


def cached_onnx_path(weights: str | Path) -> Path:
    """Where the ONNX export of a checkpoint is kept: a user cache keyed by the checkpoint and
    the network's code, so the installed package stays read-only and new weights get a new export."""
    return cache_folder("onnx") / f"{Path(weights).stem}-{export_key(weights).hexdigest()[:16]}.onnx"


def cached_compiled_path(weights: str | Path, size: int, precision: str) -> Path:
    """Where a compiled package is kept. Machine code is specific to the torch version, the
    CPU's vector instructions and the thread count (inductor writes it into its OpenMP
    pragmas), so all of them key the cache along with the checkpoint and the network's code."""
    key = export_key(weights)
    key.update(f"{torch.__version__}|{platform.machine()}|{cpu_model()}|{torch.get_num_threads()}".encode())
    name = f"{Path(weights).stem}-{size}-{resolve_precision(precision)}-{key.hexdigest()[:16]}.pt2"
    return cache_folder("compiled") / name
