"""The training command on a tiny images/ + masks/ folder: checkpoints, resume, the final model."""
import cv2
import numpy as np
import torch

from guidewire.segmentation.fganet import NetworkConfig
from guidewire.segmentation.inference import load_checkpoint
from guidewire.segmentation.train import train

TINY = NetworkConfig(widths=(4, 4, 8, 8, 8, 8))


def write_folder(folder, count=4):
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for index in range(count):
        image = rng.integers(120, 200, (64, 64)).astype(np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        start, end = rng.integers(0, 64, 2), rng.integers(0, 64, 2)
        cv2.line(image, tuple(int(v) for v in start), tuple(int(v) for v in end), 40, 2)
        cv2.line(mask, tuple(int(v) for v in start), tuple(int(v) for v in end), 255, 2)
        cv2.imwrite(str(folder / "images" / f"{index}.png"), image)
        cv2.imwrite(str(folder / "masks" / f"{index}.png"), mask)


def test_training_checkpoints_resumes_and_writes_a_loadable_model(tmp_path):
    write_folder(tmp_path / "data")
    arguments = dict(network_config=TINY, batch_size=2, patch=64, learning_rate=1e-2, seed=0, threads=1,
                     cldice_outputs=1, command="test")
    train(str(tmp_path / "data"), str(tmp_path / "run"), epochs=1, resume=False, **arguments)
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert first["epoch"] == 0 and len(first["history"]) == 1
    model_file = train(str(tmp_path / "data"), str(tmp_path / "run"), epochs=2, resume=True, **arguments)
    network, meta = load_checkpoint(model_file)
    assert [h["epoch"] for h in meta["history"]] == [1, 2]  # epoch 1 was not trained again
    assert network.config == TINY and meta["patch"] == 64
    # Resuming continued from the saved weights: they differ from the first epoch's.
    changed = any(not torch.equal(a, b) for a, b in zip(first["network"].values(), network.state_dict().values()))
    assert changed
