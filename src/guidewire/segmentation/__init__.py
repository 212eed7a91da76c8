"""FGA-Net guidewire segmentation (paper: shared/papers/fga-net-segmentation.txt)."""
