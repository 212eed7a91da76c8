"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) in plain torch.

torchvision.ops.deform_conv2d is not available here, so the sampling is done
with grid_sample (bilinear, zeros outside the image, as in DCNv2), and the
weighted sum over the kernel points is one einsum. Both export to ONNX
(GridSample, opset 16+), so the same module runs under ONNX Runtime.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None = None, padding: int = 1, dilation: int = 1) -> torch.Tensor:
    """Stride-1 DCNv2 with one offset group, in torchvision's layout.

    x (B,C,H,W); weight (O,C,kh,kw); offset (B,2K,H',W') holding (dy, dx) for each
    kernel point k = i*kw + j; mask (B,K,H',W') the modulation of each point.
    Output pixel p samples x at p - padding + dilation*(i, j) + offset_k.
    """
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    points = kernel_h * kernel_w
    out_h, out_w = offset.shape[-2:]
    rows = torch.arange(out_h, dtype=x.dtype, device=x.device).view(1, 1, out_h, 1)
    cols = torch.arange(out_w, dtype=x.dtype, device=x.device).view(1, 1, 1, out_w)
    kernel_rows = (torch.arange(kernel_h, dtype=x.dtype, device=x.device) * dilation).repeat_interleave(kernel_w)
    kernel_cols = (torch.arange(kernel_w, dtype=x.dtype, device=x.device) * dilation).repeat(kernel_h)
    offset = offset.view(batch, points, 2, out_h, out_w)
    sample_y = rows - padding + kernel_rows.view(1, points, 1, 1) + offset[:, :, 0]
    sample_x = cols - padding + kernel_cols.view(1, points, 1, 1) + offset[:, :, 1]
    # align_corners=True puts pixel centres at integer coordinates -1..1.
    grid = torch.stack([2.0 * sample_x / max(width - 1, 1) - 1.0,
                        2.0 * sample_y / max(height - 1, 1) - 1.0], dim=-1)
    sampled = F.grid_sample(x, grid.view(batch, points * out_h, out_w, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
    sampled = sampled.view(batch, channels, points, out_h, out_w) * mask.unsqueeze(1)
    # The sum over channels and kernel points is a 1x1 convolution over (C*K) channels:
    # the fastest contraction in both torch (oneDNN) and ONNX Runtime.
    # Python ints from the weight's static shape keep the kernel's shape known to the ONNX exporter.
    pointwise = weight.reshape(int(out_channels), int(weight.shape[1]) * points, 1, 1)
    return F.conv2d(sampled.view(batch, channels * points, out_h, out_w), pointwise, bias)


class DeformableConv2d(nn.Module):
    """3x3 DCNv2 whose offsets and modulation come from a plain convolution of the
    same input; zero-initialised, so training starts from a regular grid."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = dilation * (kernel_size - 1) // 2
        points = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.offset_and_mask = nn.Conv2d(in_channels, 3 * points, kernel_size, padding=self.padding,
                                         dilation=dilation)
        nn.init.zeros_(self.offset_and_mask.weight)
        nn.init.zeros_(self.offset_and_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        points = self.kernel_size * self.kernel_size
        offset, modulation = self.offset_and_mask(x).split([2 * points, points], dim=1)
        return deform_conv2d(x, offset, torch.sigmoid(modulation), self.weight, self.bias,
                             padding=self.padding, dilation=self.dilation)
