import numpy as np

from guidewire.preprocessing import crop_and_normalise, mask_guided_zscore, nonzero_crop_box, pad_to_square_and_resize


def test_pad_2048x1536_to_square_512():
    image = np.full((1536, 2048), 200, np.uint8)
    out = pad_to_square_and_resize(image)
    assert out.shape == (512, 512)
    # 256 padded rows of 2048 become 64 rows of 512: black bands top and bottom, content between.
    assert out[:63].max() == 0 and out[-63:].max() == 0
    assert (out[65:447] == 200).all()


def test_crop_to_nonzero_region():
    image = np.zeros((100, 120), np.uint8)
    image[10:60, 20:90] = 7
    rows, cols = nonzero_crop_box(image)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (10, 60, 20, 90)


def test_mask_guided_zscore_uses_only_the_mask():
    image = np.zeros((10, 10), np.float32)
    image[2:8, 2:8] = np.arange(36).reshape(6, 6) + 100
    normalised = mask_guided_zscore(image)
    inside = normalised[2:8, 2:8]
    assert abs(inside.mean()) < 1e-5 and abs(inside.std() - 1) < 1e-5
    assert (normalised[0] == 0).all()


def test_crop_and_normalise_on_a_collimated_frame():
    image = np.zeros((64, 64), np.uint8)
    image[8:56, 4:60] = np.random.default_rng(0).integers(1, 255, (48, 56))
    normalised, box = crop_and_normalise(image)
    assert normalised.shape == (48, 56)
    assert abs(normalised.mean()) < 1e-5
