"""Metrics on hand-made masks, and centreline ordering."""
import cv2
import numpy as np
import pytest

from guidewire.segmentation.centreline import extract_centreline
from guidewire.segmentation.metrics import best_threshold, bootstrap_mean, cldice, dice, evaluate_set, failure_cut, \
    foreground_iou, macro_f1, paired_bootstrap, roc_auc, wire_visibility


def masks():
    truth = np.zeros((10, 10), bool)
    truth[2, 1:9] = True  # 8 wire pixels
    prediction = np.zeros((10, 10), bool)
    prediction[2, 1:5] = True  # 4 true positives
    prediction[7, 1:3] = True  # 2 false positives
    return prediction, truth


def test_overlap_metrics_by_hand():
    prediction, truth = masks()  # tp 4, fp 2, fn 4, tn 90
    assert dice(prediction, truth) == pytest.approx(8 / 14)
    assert foreground_iou(prediction, truth) == pytest.approx(4 / 10)
    assert macro_f1(prediction, truth) == pytest.approx(0.5 * (8 / 14 + 180 / 186))


def test_empty_prediction_of_empty_truth_is_perfect_and_of_a_wire_is_zero():
    empty = np.zeros((5, 5), bool)
    assert dice(empty, empty) == 1.0
    wire = empty.copy()
    wire[2] = True
    assert dice(empty, wire) == 0.0 and cldice(empty, wire) == 0.0


def test_cldice_ignores_thickness_but_not_breaks():
    truth = np.zeros((20, 40), bool)
    truth[9:12, 2:38] = True
    thin = np.zeros_like(truth)
    thin[10, 2:38] = True
    assert cldice(thin, truth) == pytest.approx(1.0, abs=0.06)
    assert dice(thin, truth) < 0.6
    broken = truth.copy()
    broken[:, 10:30] = False
    assert cldice(broken, truth) < 0.8


def test_auc_is_the_probability_a_wire_pixel_scores_above_background():
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1])
    truth = np.array([1, 1, 1, 0, 0, 0])
    # Pairs (wire, background): 9, of which 0.3 < 0.7 is the one wrong: 8/9.
    assert roc_auc(scores, truth) == pytest.approx(8 / 9)
    assert roc_auc(np.ones(6), truth) == pytest.approx(0.5)


def test_best_threshold_keeps_the_wire_and_drops_its_faint_halo():
    _, truth = masks()
    probability = np.full(truth.shape, 0.05)
    probability[1:4, 0:10] = 0.25  # a halo one pixel around the wire
    probability[truth] = 0.35
    threshold, sweep = best_threshold([probability], [truth], [0.2, 0.3, 0.4])
    assert threshold == 0.3 and sweep[0.3] == 1.0
    assert sweep[0.2] == pytest.approx(16 / 38)  # the halo's 22 pixels are false positives
    assert sweep[0.4] == 0.0


def test_failure_cut_flags_the_failed_frames_and_as_few_good_ones_as_it_can():
    confidence = [0.70, 0.80, 0.84, 0.86, 0.90, 0.93, 0.95, 0.97]
    failed = [True, True, False, True, False, False, False, False]
    # 0.87 flags all 3 failures and 1 of 5 good frames (F1 6/7); 0.81 flags 2 of 3 and no good one (0.8).
    assert failure_cut(confidence, failed, np.arange(0.60, 0.99, 0.01).round(2)) == 0.87
    assert failure_cut(confidence, failed, [0.60, 0.81]) == 0.81
    # Nothing to flag, or nothing that tells failures apart (flagging all has F1 0.5): the cut flags nothing.
    assert failure_cut(confidence, [False] * 8, [0.81, 0.87]) == 0.0
    assert failure_cut([0.9, 0.9, 0.9], [True, False, False], [0.8, 0.95]) == 0.0


def test_set_scores_pool_oiou_and_average_dice():
    prediction, truth = masks()
    scores = evaluate_set([prediction.astype(float), truth.astype(float)], [truth, truth],
                          [(8, 2), None], [(8, 2), (8, 2)])
    assert scores.dice == pytest.approx((8 / 14 + 1) / 2)
    assert scores.dice_per_image == pytest.approx([8 / 14, 1]) and scores.cldice_per_image[1] == 1
    assert scores.oiou == pytest.approx((4 + 8) / (10 + 8))
    assert scores.miou == pytest.approx((0.4 + 1) / 2)
    assert scores.tip_error_px == 0 and scores.tip_found == 0.5


def test_centreline_runs_from_the_border_to_the_tip_and_drops_spurs():
    mask = np.zeros((60, 80), np.uint8)
    path = np.array([[0, 30], [30, 30], [50, 20], [60, 12]])
    cv2.polylines(mask, [path.astype(np.int32)], False, 1, 3)
    cv2.line(mask, (30, 30), (32, 45), 1, 2)  # a spur, shorter than the wire
    centreline = extract_centreline(mask)
    assert centreline.points[0][0] < 3  # insertion end at the left border
    assert np.hypot(*(centreline.tip - (60, 12))) < 3
    assert centreline.points[:, 1].max() < 36  # the spur to row 45 is not on the path
    off = centreline.off_path  # it is kept apart: a spur may be wire too (a projection cusp's far side)
    assert off[:, 1].max() >= 43 and np.all(np.abs(off[:, 0] - 31) <= 2) and off[:, 1].min() >= 31
    steps = np.hypot(*np.diff(centreline.points, axis=0).T)
    assert steps.max() <= np.sqrt(2) + 1e-9  # one connected, ordered pixel path
    assert extract_centreline(np.zeros((5, 5))) is None


def test_paired_bootstrap_separates_a_consistent_lead_from_noise():
    rng = np.random.default_rng(1)
    baseline = rng.uniform(0.6, 0.9, 64)
    lead = baseline + 0.02 + rng.normal(0, 0.01, 64)  # better on almost every image
    mean, low, high = paired_bootstrap(lead, baseline)
    assert low <= mean <= high and 0 < low and abs(mean - 0.02) < 0.005
    noise = baseline + rng.normal(0, 0.05, 64)  # no lead: the interval straddles zero
    mean, low, high = paired_bootstrap(noise, baseline)
    assert low < 0 < high
    paired, shuffled = paired_bootstrap(lead, baseline), paired_bootstrap(lead, rng.permutation(baseline))
    assert paired[2] - paired[1] < shuffled[2] - shuffled[1]  # pairing removes the images' own spread


def test_bootstrap_over_poses_widens_the_interval_when_frames_of_a_pose_move_together():
    rng = np.random.default_rng(2)
    poses = np.repeat(np.arange(16), 16)
    # Each pose shifts all its frames alike (shared anatomy), plus a little per-frame noise.
    dice_per_frame = 0.85 + rng.normal(0, 0.05, 16)[poses] + rng.normal(0, 0.01, len(poses))
    mean, low, high = bootstrap_mean(dice_per_frame)
    pose_mean, pose_low, pose_high = bootstrap_mean(dice_per_frame, groups=poses)
    assert mean == pose_mean == pytest.approx(dice_per_frame.mean())
    assert pose_low < mean < pose_high
    # 16 independent poses, not 256 independent frames: about sqrt(16) times wider.
    assert 2.5 < (pose_high - pose_low) / (high - low) < 6
    # Groups of one are the frame bootstrap itself.
    assert bootstrap_mean(dice_per_frame, groups=np.arange(len(poses))) == (mean, low, high)


def test_wire_visibility_measures_length_in_view_and_contrast_to_noise_against_collimated_background():
    rows, cols = np.mgrid[0:40, 0:60]
    image = np.where((rows + cols) % 2 == 0, 90, 110).astype(np.uint8)  # background mean 100, std 10
    image[:, :5] = 0  # outside the collimator, within 6 px of the wire's end: not background
    truth = np.zeros(image.shape, bool)
    truth[19:22, 10:50] = True
    image[truth] = 70
    length, contrast_to_noise = wire_visibility(image, truth)
    assert 36 <= length <= 40  # the 40 px wire's skeleton
    assert contrast_to_noise == pytest.approx(3.0, abs=0.01)  # (100 - 70) / 10
    half_hidden = truth.copy()
    image[:, 30:] = 0  # the collimator now hides the wire's right half
    assert wire_visibility(image, half_hidden)[0] <= 20
    assert wire_visibility(image, np.zeros_like(truth)) == (0, pytest.approx(float("nan"), nan_ok=True))


def test_a_wire_broken_by_a_gap_is_followed_to_its_tip_and_a_crossing_lead_is_not():
    mask = np.zeros((200, 200), bool)
    mask[0:90, 99:101] = True  # the wire enters at the top edge, the mask breaks where it crosses the spine
    mask[140:170, 99:101] = True  # ... and carries on beyond the gap to the tip at row 169
    mask[120:122, 20:70] = True  # a lead across the wire's line, to the left: not its continuation
    broken = extract_centreline(mask)
    assert broken.tip[1] < 95  # the largest piece alone ends at the gap
    bridged = extract_centreline(mask, max_gap_px=60)
    assert np.hypot(*(bridged.tip - (99.5, 169))) < 2 and bridged.points[0][1] < 3
    steps = np.hypot(*np.diff(bridged.points, axis=0).T)
    assert steps.max() < 1.5  # the gap is bridged by points about 1 px apart
    assert bridged.points[:, 0].min() > 95  # the lead is not on the path
    assert extract_centreline(mask, max_gap_px=40).tip[1] < 95  # a gap longer than allowed is not bridged
