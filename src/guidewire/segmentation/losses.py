"""FGA-Net training loss: 0.5*BCE + 0.75*(1 - softDice) + 0.25*(1 - soft-clDice)
per output, summed over the deeply supervised outputs with their weights; and the
distillation term that teaches a small network a larger one's probabilities."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from guidewire.segmentation.fganet import DEEP_SUPERVISION_WEIGHTS

SKELETON_ITERATIONS = 10


# Min/max over shifted views instead of max_pool2d: the same morphology, and on
# the CPU about ten times faster to differentiate (no pooling indices).
def _extreme3(x: torch.Tensor, dim: int, reduce, fill: float) -> torch.Tensor:
    """reduce(x[i-1], x[i], x[i+1]) along dim, with `fill` beyond the border."""
    size = x.shape[dim]
    padded = F.pad(x, (1, 1, 0, 0) if dim == 3 else (0, 0, 1, 1), value=fill)
    return reduce(reduce(padded.narrow(dim, 0, size), padded.narrow(dim, 1, size)), padded.narrow(dim, 2, size))


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Minimum over the 4-neighbourhood (the plus-shaped element of clDice)."""
    return torch.minimum(_extreme3(x, 2, torch.minimum, 1e4), _extreme3(x, 3, torch.minimum, 1e4))


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Maximum over the 3x3 square."""
    return _extreme3(_extreme3(x, 2, torch.maximum, -1e4), 3, torch.maximum, -1e4)


def soft_skeleton(x: torch.Tensor, iterations: int = SKELETON_ITERATIONS) -> torch.Tensor:
    """Differentiable morphological skeleton (Shit et al., clDice, CVPR 2021)."""
    skeleton = F.relu(x - soft_dilate(soft_erode(x)))
    for _ in range(iterations):
        x = soft_erode(x)
        delta = F.relu(x - soft_dilate(soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def soft_dice_per_image(probability: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice of each image (B,) with the paper's squared denominator."""
    dims = (1, 2, 3)
    overlap = (probability * target).sum(dims)
    return (2 * overlap + smooth) / ((probability ** 2).sum(dims) + (target ** 2).sum(dims) + smooth)


def soft_dice(probability: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-image soft Dice, averaged over the batch."""
    return soft_dice_per_image(probability, target, smooth).mean()


def soft_cldice(probability: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    dims = (1, 2, 3)
    skeleton_prediction, skeleton_target = soft_skeleton(probability), soft_skeleton(target)
    precision = ((skeleton_prediction * target).sum(dims) + smooth) / (skeleton_prediction.sum(dims) + smooth)
    sensitivity = ((skeleton_target * probability).sum(dims) + smooth) / (skeleton_target.sum(dims) + smooth)
    return (2 * precision * sensitivity / (precision + sensitivity)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, with_cldice: bool = True) -> torch.Tensor:
    probability = torch.sigmoid(logits)
    loss = 0.5 * F.binary_cross_entropy_with_logits(logits, target) + 0.75 * (1 - soft_dice(probability, target))
    if with_cldice:
        loss = loss + 0.25 * (1 - soft_cldice(probability, target))
    return loss


def deep_supervision_loss(outputs, target: torch.Tensor, cldice_outputs: int = len(DEEP_SUPERVISION_WEIGHTS)):
    """outputs: one logits tensor, or the network's list in DEEP_SUPERVISION_WEIGHTS order.

    The authors add soft-clDice to every output. Its ten-step soft skeleton is
    most of a CPU training step, so `cldice_outputs` can keep it on the first
    (main and shallowest) outputs only.
    """
    if isinstance(outputs, torch.Tensor):
        return segmentation_loss(outputs, target)
    return sum(weight * segmentation_loss(o, target, with_cldice=i < cldice_outputs)
               for i, (weight, o) in enumerate(zip(DEEP_SUPERVISION_WEIGHTS, outputs)))


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0
                      ) -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015) for one wire/background logit per pixel: BCE of the
    student's softened probabilities against the teacher's, times T^2 so that its gradient keeps
    its scale as T changes. It is 0 only up to the teacher's own entropy: the student is pulled
    towards the teacher's soft edges, where a hard mask says only 0 or 1."""
    soft_target = torch.sigmoid(teacher_logits / temperature)
    return temperature ** 2 * F.binary_cross_entropy_with_logits(student_logits / temperature, soft_target)
