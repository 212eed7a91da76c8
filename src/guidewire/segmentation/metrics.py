"""The FGA-Net paper's segmentation metrics, plus clDice and tip error.

Per-image metrics (Dice, Macro-F1, IoU, clDice) are averaged over images;
AUC and OIoU pool all pixels of the set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.stats import rankdata
from skimage.morphology import skeletonize


def _counts(prediction: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    p, t = prediction.astype(bool), truth.astype(bool)
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p & ~t))
    fn = int(np.count_nonzero(~p & t))
    return tp, fp, fn, p.size - tp - fp - fn


def _ratio(numerator: float, denominator: float) -> float:
    # Both empty (no wire, none predicted) is a perfect score, not 0/0.
    return 1.0 if denominator == 0 else numerator / denominator


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, _ = _counts(prediction, truth)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def foreground_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    tp, fp, fn, _ = _counts(prediction, truth)
    return _ratio(tp, tp + fp + fn)


def macro_f1(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the foreground and background F1."""
    tp, fp, fn, tn = _counts(prediction, truth)
    return 0.5 * (_ratio(2 * tp, 2 * tp + fp + fn) + _ratio(2 * tn, 2 * tn + fn + fp))


def cldice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Centreline Dice (Shit et al. 2021) with skimage skeletons."""
    p, t = prediction.astype(bool), truth.astype(bool)
    skeleton_p, skeleton_t = skeletonize(p), skeletonize(t)
    precision = _ratio(np.count_nonzero(skeleton_p & t), np.count_nonzero(skeleton_p))
    sensitivity = _ratio(np.count_nonzero(skeleton_t & p), np.count_nonzero(skeleton_t))
    return _ratio(2 * precision * sensitivity, precision + sensitivity)


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties counted half);
    scikit-learn is not a dependency for this one formula."""
    scores, truth = np.ravel(scores), np.ravel(truth).astype(bool)
    positives, negatives = np.count_nonzero(truth), np.count_nonzero(~truth)
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# Below this Dice a frame's mask has lost the wire, or taken something else (an ECG lead) for it.
FAILED_DICE = 0.6


def failure_cut(confidence, failed, candidates) -> float:
    """The confidence cut that best flags the frames whose segmentation failed (`failed`, e.g.
    Dice < FAILED_DICE): the candidate with the best F1 score of flagged frames as a detector of
    failed ones (the lowest such cut on ties), among those that flag a larger share of failed
    frames than of good ones. F1 rather than Youden's index because failures are rare: Youden's
    index trades one missed failure for many good frames flagged. 0, which flags nothing, when no
    frame failed, every frame did, or no candidate tells them apart."""
    confidence, failed = np.asarray(confidence, float), np.asarray(failed, bool)
    if failed.all() or not failed.any():
        return 0.0
    best_cut, best_f1 = 0.0, 0.0
    for cut in sorted(float(c) for c in candidates):
        flagged = confidence < cut
        caught = np.count_nonzero(flagged & failed)
        f1 = 2 * caught / (np.count_nonzero(flagged) + np.count_nonzero(failed))
        if flagged[failed].mean() > flagged[~failed].mean() and f1 > best_f1:
            best_cut, best_f1 = cut, f1
    return best_cut


@dataclass
class SegmentationScores:
    auc: float
    macro_f1: float
    dice: float
    miou: float
    oiou: float
    cldice: float
    tip_error_px: float  # median over images where a tip was found
    tip_found: float  # fraction of images with a predicted tip
    dice_per_image: list[float]  # for paired comparisons of two networks on the same images
    cldice_per_image: list[float]

    def as_percent_row(self) -> list[str]:
        return [f"{100 * v:.2f}" for v in (self.auc, self.macro_f1, self.dice, self.miou, self.oiou, self.cldice)] + \
            [f"{self.tip_error_px:.1f}", f"{100 * self.tip_found:.0f}"]


def best_threshold(probabilities: list[np.ndarray], truths: list[np.ndarray],
                   candidates) -> tuple[float, dict[float, float]]:
    """The candidate threshold with the best mean per-image Dice, and that Dice for each candidate."""
    sweep = {float(t): float(np.mean([dice(p >= t, m) for p, m in zip(probabilities, truths)])) for t in candidates}
    return max(sweep, key=sweep.get), sweep


def bootstrap_mean(values, groups=None, resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-image values and its 95 % percentile bootstrap interval.

    Without groups, images are resampled with replacement. With groups (one label per image, e.g. the
    C-arm pose it was rendered from), whole groups are resampled: frames of one pose share its
    anatomy and are not independent, so resampling them one by one would make the interval too narrow.
    scipy.stats.bootstrap resamples observations only, hence this cluster bootstrap.
    """
    values = np.asarray(values, float)
    labels = np.arange(len(values)) if groups is None else np.asarray(groups)
    _, group_of_value = np.unique(labels, return_inverse=True)
    sums = np.bincount(group_of_value, weights=values)
    counts = np.bincount(group_of_value).astype(float)
    drawn = np.random.default_rng(seed).integers(0, len(sums), (resamples, len(sums)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def paired_bootstrap(first, second, groups=None, resamples: int = 10_000, seed: int = 0
                     ) -> tuple[float, float, float]:
    """Mean of first - second over paired images and its 95 % bootstrap interval (see bootstrap_mean):
    is one network's lead over another beyond the set's noise?"""
    return bootstrap_mean(np.asarray(first, float) - np.asarray(second, float), groups, resamples, seed)


def wire_visibility(image: np.ndarray, truth: np.ndarray, ring_px: tuple[float, float] = (2.0, 6.0)
                    ) -> tuple[int, float]:
    """How much wire a frame shows and how well it stands out: the pixels of the true mask's
    skeleton (its length in view) and its contrast-to-noise ratio, (background mean - wire mean) /
    background standard deviation, the background being the collimated pixels ring_px from the wire
    (the wire attenuates, so it is darker). NaN contrast when there is no wire or no background."""
    wire = truth.astype(bool) & (image != 0)
    length = int(np.count_nonzero(skeletonize(wire)))
    distance = distance_transform_edt(~wire)
    background = image[(distance > ring_px[0]) & (distance <= ring_px[1]) & (image != 0)].astype(float)
    if not wire.any() or background.size < 2 or background.std() == 0:
        return length, float("nan")
    return length, float((background.mean() - image[wire].mean()) / background.std())


HEADER = ["AUC", "Macro-F1", "Dice", "MIoU", "OIoU", "clDice", "tip err px (median)", "tip found %"]


def evaluate_set(probabilities: list[np.ndarray], truths: list[np.ndarray], predicted_tips: list,
                 true_tips: list, threshold: float = 0.5) -> SegmentationScores:
    """Scores over a set of images; predicted_tips entries are (u, v) or None."""
    predictions = [p >= threshold for p in probabilities]
    pooled = np.zeros(4, np.int64)
    for prediction, truth in zip(predictions, truths):
        pooled += _counts(prediction, truth)
    tp, fp, fn, _ = pooled
    tip_errors = [float(np.hypot(*(np.asarray(p) - np.asarray(t)))) for p, t in zip(predicted_tips, true_tips)
                  if p is not None]
    dice_per_image = [dice(p, t) for p, t in zip(predictions, truths)]
    cldice_per_image = [cldice(p, t) for p, t in zip(predictions, truths)]
    return SegmentationScores(
        auc=roc_auc(np.concatenate([p.ravel() for p in probabilities]), np.concatenate([t.ravel() for t in truths])),
        macro_f1=float(np.mean([macro_f1(p, t) for p, t in zip(predictions, truths)])),
        dice=float(np.mean(dice_per_image)),
        miou=float(np.mean([foreground_iou(p, t) for p, t in zip(predictions, truths)])),
        oiou=_ratio(tp, tp + fp + fn),
        cldice=float(np.mean(cldice_per_image)),
        tip_error_px=float(np.median(tip_errors)) if tip_errors else float("nan"),
        tip_found=len(tip_errors) / max(len(predicted_tips), 1),
        dice_per_image=dice_per_image, cldice_per_image=cldice_per_image)
