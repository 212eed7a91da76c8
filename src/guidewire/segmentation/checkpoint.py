"""Segmentation checkpoints: the network's configuration, its weights and metadata (the
chosen threshold and confidence cut) in one file, and the shipped one."""
from __future__ import annotations

from pathlib import Path

import torch

from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "fganet_small.pt"


class WeightsError(RuntimeError):
    """Weights that are missing, unreadable or do not fit the network."""


def save_checkpoint(path: str | Path, network: SegmentationNetwork, **meta) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save({"network": network.config.to_dict(), "state_dict": network.state_dict(), "meta": meta}, temporary)
    temporary.replace(path)  # a crash mid-save never leaves a half checkpoint


def load_checkpoint(path: str | Path) -> tuple[SegmentationNetwork, dict]:
    """The network (eval mode) and the checkpoint's metadata, or a WeightsError that says why not."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"segmentation weights not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        network = SegmentationNetwork(NetworkConfig(**checkpoint["network"]))
        network.load_state_dict(checkpoint["state_dict"])
    except WeightsError:
        raise
    except Exception as error:  # torch/pickle raise many types for a damaged file
        raise WeightsError(f"cannot load segmentation weights {path}: {type(error).__name__}: {error}") from error
    return network.eval(), dict(checkpoint.get("meta", {}))
