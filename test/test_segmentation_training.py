"""The training command on a tiny images/ + masks/ folder: checkpoints, resume, the final model."""
import cv2
import numpy as np
import torch

from guidewire.segmentation.fganet import NetworkConfig, SegmentationNetwork
from guidewire.segmentation.checkpoint import load_checkpoint, save_checkpoint
from guidewire.segmentation.inference import Segmenter
from guidewire.segmentation.losses import distillation_loss
from guidewire.segmentation.threshold import CANDIDATES, choose_threshold
from guidewire.segmentation.train import PatchSampler, epoch_order, read_folder, train

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
    assert network.config == TINY and meta["patch"] == 64 and meta["device"] == "cpu"
    # Resuming continued from the saved weights: they differ from the first epoch's.
    changed = any(not torch.equal(a, b) for a, b in zip(first["network"].values(), network.state_dict().values()))
    assert changed


def test_stop_after_ends_early_on_the_longer_schedule(tmp_path):
    write_folder(tmp_path / "data")
    arguments = dict(network_config=TINY, batch_size=2, patch=64, learning_rate=1e-2, seed=0, threads=1,
                     cldice_outputs=1, command="test", resume=False)
    model_file = train(str(tmp_path / "data"), str(tmp_path / "run"), epochs=3, stop_after=1, **arguments)
    _, meta = load_checkpoint(model_file)
    assert meta["epochs"] == 3 and meta["stopped_after"] == 1 and len(meta["history"]) == 1
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["schedule"]["T_max"] == 3 * 2  # the cosine still spans all three epochs (2 steps each)
    assert state["schedule"]["last_epoch"] == 2


def test_bfloat16_training_keeps_float32_weights_and_learns(tmp_path):
    write_folder(tmp_path / "data")
    arguments = dict(network_config=TINY, batch_size=2, patch=64, learning_rate=1e-2, seed=0, threads=1,
                     cldice_outputs=1, command="test", resume=False)
    model_file = train(str(tmp_path / "data"), str(tmp_path / "run"), epochs=3, bfloat16=True, **arguments)
    network, meta = load_checkpoint(model_file)
    assert meta["bfloat16"] is True
    assert all(p.dtype == torch.float32 for p in network.parameters())  # autocast, not a bf16 copy
    losses = [h["loss"] for h in meta["history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_fine_tuning_into_doubled_stages_starts_from_the_widened_checkpoint(tmp_path):
    write_folder(tmp_path / "data")
    arguments = dict(batch_size=2, patch=64, seed=0, threads=1, cldice_outputs=1, command="test")
    narrow = train(str(tmp_path / "data"), str(tmp_path / "narrow"), TINY, epochs=1, learning_rate=1e-2,
                   resume=False, **arguments)
    wide = NetworkConfig(widths=(4, 4, 8, 16, 16, 16))
    # A zero learning rate keeps the starting weights (batch statistics still move).
    model_file = train(str(tmp_path / "data"), str(tmp_path / "wide"), wide, epochs=1, learning_rate=0.0,
                       resume=False, init=str(narrow), **arguments)
    (narrow_network, _), (wide_network, _) = load_checkpoint(narrow), load_checkpoint(model_file)
    assert wide_network.config == wide
    # Stage 3 doubled from 8 to 16 channels: each narrow filter became two adjacent copies.
    narrow_filters, wide_filters = narrow_network.encoder[3][0][0].weight, wide_network.encoder[3][0][0].weight
    assert torch.equal(wide_filters[0::2], narrow_filters) and torch.equal(wide_filters[1::2], narrow_filters)


def test_the_threshold_chosen_on_training_frames_is_stored_and_used(tmp_path):
    write_folder(tmp_path / "data")
    model_file = train(str(tmp_path / "data"), str(tmp_path / "run"), TINY, epochs=1, batch_size=2, patch=64,
                       learning_rate=1e-2, seed=0, resume=False, threads=1, cldice_outputs=1, command="test")
    threshold, sweep, cut = choose_threshold(model_file, tmp_path / "data", every=1, threads=1)
    assert list(sweep) == list(CANDIDATES) and sweep[threshold] == max(sweep.values())
    _, meta = load_checkpoint(model_file)
    assert meta["threshold"] == threshold and meta["threshold_chosen_on"]["frames"] == 4
    assert meta["command"] == "test" and len(meta["history"]) == 1  # the training record is kept
    # The confidence cut is stored with how it split those frames, which it counts (4 in all).
    assert meta["confidence_cut"] == cut["confidence_cut"] and meta["confidence_cut_split"]["failed_frames"] <= 4
    flagged = cut["failed_frames_flagged"] + cut["other_frames_flagged"]
    assert cut["failed_frames_flagged"] <= cut["failed_frames"] and (flagged > 0) == (cut["confidence_cut"] > 0)
    segmenter = Segmenter(model_file)
    assert segmenter.threshold == threshold and segmenter.confidence_cut == cut["confidence_cut"]
    # Chosen again under bf16 inference: the record says under which.
    choose_threshold(model_file, tmp_path / "data", every=2, threads=1, precision="bfloat16")
    chosen_on = load_checkpoint(model_file)[1]["threshold_chosen_on"]
    assert chosen_on["precision"] == "bfloat16" and chosen_on["backend"] == "torch" and chosen_on["frames"] == 2


def test_distillation_loss_is_least_where_the_student_says_what_the_teacher_says():
    teacher = torch.tensor([[-4.0, -0.5, 0.5, 4.0]]).view(1, 1, 2, 2)
    for temperature in (1.0, 2.0):
        student = teacher.clone().requires_grad_()
        at_teacher = distillation_loss(student, teacher, temperature)
        at_teacher.backward()
        assert torch.allclose(student.grad, torch.zeros_like(teacher), atol=1e-7)
        for shift in (-1.0, 1.0):
            assert distillation_loss(teacher + shift, teacher, temperature) > at_teacher
    # T^2 scaling: for logits near 0 the gradient hardly depends on the temperature.
    gradients = []
    for temperature in (1.0, 4.0):
        student = torch.zeros(1, 1, 2, 2, requires_grad=True)
        distillation_loss(student, torch.full((1, 1, 2, 2), 0.2), temperature).backward()
        gradients.append(student.grad)
    assert torch.allclose(gradients[0], gradients[1], rtol=0.05)


def test_patches_turn_and_flip_the_teachers_logits_with_the_image_and_mask(tmp_path):
    write_folder(tmp_path / "data")
    samples = read_folder(tmp_path / "data")
    teacher = [np.where(mask > 0, 3.0, -3.0).astype(np.float16) for _, _, mask in samples]
    for patch in (32, 96):  # a crop inside the frame, and a frame padded out to the patch
        images, masks, teacher_batch = PatchSampler(samples, patch, seed=1, teacher_logits=teacher).batch(
            [0, 1, 2, 3, 0, 1, 2, 3])
        assert images.shape == masks.shape == teacher_batch.shape == (8, 1, patch, patch)
        inside = teacher_batch > -10  # padding is told "background" far more surely than any frame pixel
        assert torch.equal(teacher_batch[inside] > 0, masks[inside] > 0)
        assert torch.all(masks[~inside] == 0) and (patch == 32 or (~inside).any())


def test_distilling_a_teacher_that_sees_wire_everywhere_raises_the_students_wire_probability(tmp_path):
    write_folder(tmp_path / "data")
    teacher = SegmentationNetwork(TINY).eval()
    torch.nn.init.constant_(teacher.heads[0].bias, 6.0)
    torch.nn.init.zeros_(teacher.heads[0].weight)
    save_checkpoint(tmp_path / "teacher.pt", teacher)
    # A high learning rate, so that six steps move the tiny network far enough to see.
    arguments = dict(network_config=TINY, epochs=3, batch_size=2, patch=64, learning_rate=0.1, seed=0,
                     threads=1, cldice_outputs=1, command="test", resume=False)
    plain = train(str(tmp_path / "data"), str(tmp_path / "plain"), **arguments)
    distilled = train(str(tmp_path / "data"), str(tmp_path / "distilled"), teacher=str(tmp_path / "teacher.pt"),
                      distill_weight=5.0, **arguments)
    image = cv2.imread(str(tmp_path / "data" / "images" / "0.png"), cv2.IMREAD_GRAYSCALE)
    mean_probability = {name: Segmenter(path).probability(image).mean()
                        for name, path in (("plain", plain), ("distilled", distilled))}
    assert mean_probability["distilled"] > mean_probability["plain"] + 0.2
    meta = load_checkpoint(distilled)[1]
    assert meta["teacher"] == str(tmp_path / "teacher.pt") and meta["distillation"]["weight"] == 5.0
    # The teacher's logits are kept for --resume, and used again rather than computed anew.
    cache = tmp_path / "distilled" / "teacher_logits.npz"
    stamp = cache.stat().st_mtime_ns
    train(str(tmp_path / "data"), str(tmp_path / "distilled"), teacher=str(tmp_path / "teacher.pt"),
          **{**arguments, "epochs": 4, "resume": True})
    assert cache.stat().st_mtime_ns == stamp


def test_hard_frames_are_drawn_more_often_and_every_frame_still_comes_back():
    rng = np.random.default_rng(0)
    assert sorted(epoch_order(rng, np.ones(8), 0.0)) == list(range(8))  # off: every frame once
    difficulty = np.full(100, 0.05)
    difficulty[7] = 0.9
    draws = np.bincount(np.concatenate([epoch_order(rng, difficulty, 0.5) for _ in range(200)]), minlength=100)
    # Frame 7's share: 0.5/100 + 0.5 * 0.9/5.85 = 8.2 %, against 0.93 % for each of the others.
    assert draws[7] > 5 * np.median(draws) and draws.min() > 0


def test_training_finds_the_frame_whose_mask_the_image_does_not_show(tmp_path):
    write_folder(tmp_path / "data")
    # Frame 3's mask marks a line its image does not hold: no network segments that one.
    mask = np.zeros((64, 64), np.uint8)
    cv2.line(mask, (5, 60), (60, 5), 255, 2)
    cv2.imwrite(str(tmp_path / "data" / "masks" / "3.png"), mask)
    model_file = train(str(tmp_path / "data"), str(tmp_path / "run"), TINY, epochs=10, batch_size=1, patch=64,
                       learning_rate=3e-2, seed=0, resume=False, threads=1, cldice_outputs=1, command="test",
                       hard_fraction=0.5)
    difficulty = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["difficulty"]
    assert load_checkpoint(model_file)[1]["hard_fraction"] == 0.5
    assert np.argmax(difficulty) == 3 and all(0 <= d <= 1 for d in difficulty)
