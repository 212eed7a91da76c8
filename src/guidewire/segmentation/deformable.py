"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) in plain torch.

torchvision.ops.deform_conv2d is not available here, so the bilinear sampling
(zeros outside the image, as in DCNv2) is written in torch, in two equal forms:
grid_sample, the fastest in eager PyTorch (training, the torch backend), and a
gather of whole pixel rows, which a compiler turns into one loop that shares each
sample's four corner indices and weights across the channels. Inductor's own
lowering of grid_sample cannot, so the compiled and ONNX paths trace the row
gather. For the shipped network at 512x512 on an AVX2 CPU that took AOTInductor
to 0.64 of the time on 2 threads (0.76 on one) and ONNX Runtime from 2.0 to
about 1.0 of eager PyTorch's time; eagerly the gather is 2-4x slower
(bench/results/segmentation.md). The sum over channels and kernel points is
then one matrix product.
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
    traced = torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
    form = deform_conv2d_pixel_rows if traced else deform_conv2d_grid_sample
    return form(x, offset, mask, weight, bias, padding, dilation)


def _sample_positions(x: torch.Tensor, offset: torch.Tensor, kernel_h: int, kernel_w: int, padding: int,
                      dilation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample rows and columns in input pixels, each (B,K,H',W'); at least float32, since a
    bfloat16 position is off by up to half a pixel at 128."""
    batch, points = offset.shape[0], kernel_h * kernel_w
    out_h, out_w = offset.shape[-2:]
    dtype = torch.promote_types(x.dtype, torch.float32)
    rows = torch.arange(out_h, dtype=dtype, device=x.device).view(1, 1, out_h, 1)
    cols = torch.arange(out_w, dtype=dtype, device=x.device).view(1, 1, 1, out_w)
    kernel_rows = (torch.arange(kernel_h, dtype=dtype, device=x.device) * dilation).repeat_interleave(kernel_w)
    kernel_cols = (torch.arange(kernel_w, dtype=dtype, device=x.device) * dilation).repeat(kernel_h)
    offset = offset.view(batch, points, 2, out_h, out_w)
    sample_y = rows - padding + kernel_rows.view(1, points, 1, 1) + offset[:, :, 0]
    sample_x = cols - padding + kernel_cols.view(1, points, 1, 1) + offset[:, :, 1]
    return sample_y, sample_x


def deform_conv2d_grid_sample(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                              bias: torch.Tensor | None = None, padding: int = 1, dilation: int = 1) -> torch.Tensor:
    """deform_conv2d with grid_sample: the fast form in eager PyTorch."""
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    points = kernel_h * kernel_w
    out_h, out_w = offset.shape[-2:]
    sample_y, sample_x = _sample_positions(x, offset, kernel_h, kernel_w, padding, dilation)
    # align_corners=True puts pixel centres at integer coordinates -1..1.
    grid = torch.stack([2.0 * sample_x / max(width - 1, 1) - 1.0,
                        2.0 * sample_y / max(height - 1, 1) - 1.0], dim=-1)
    sampled = F.grid_sample(x, grid.view(batch, points * out_h, out_w, 2), mode="bilinear",
                            padding_mode="zeros", align_corners=True)
    sampled = sampled.view(batch, channels, points, out_h, out_w) * mask.unsqueeze(1)
    # The sum over channels and kernel points is a 1x1 convolution over (C*K) channels (oneDNN's
    # fastest contraction here). Python ints from the weight's static shape keep shapes static.
    pointwise = weight.reshape(int(out_channels), int(weight.shape[1]) * points, 1, 1)
    return F.conv2d(sampled.view(batch, channels * points, out_h, out_w), pointwise, bias)


def deform_conv2d_pixel_rows(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                             bias: torch.Tensor | None = None, padding: int = 1, dilation: int = 1) -> torch.Tensor:
    """deform_conv2d as a gather of channels_last pixel rows: the fast form once compiled."""
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    points = kernel_h * kernel_w
    out_h, out_w = offset.shape[-2:]
    sample_y, sample_x = _sample_positions(x, offset, kernel_h, kernel_w, padding, dilation)
    # Pixel-major (B,H',W',K) positions, so that the gathered rows come out ready for the product.
    sample_y, sample_x = sample_y.permute(0, 2, 3, 1), sample_x.permute(0, 2, 3, 1)
    modulation = mask.permute(0, 2, 3, 1)
    top, left = torch.floor(sample_y), torch.floor(sample_x)
    down, right = sample_y - top, sample_x - left
    pixels = x.permute(0, 2, 3, 1).reshape(batch * height * width, channels)  # a view for channels_last x
    first_pixel = (torch.arange(batch, device=x.device) * (height * width)).view(batch, 1, 1, 1)
    sampled = torch.zeros((), dtype=x.dtype, device=x.device)
    for row_step, col_step, share in ((0, 0, (1 - down) * (1 - right)), (0, 1, (1 - down) * right),
                                      (1, 0, down * (1 - right)), (1, 1, down * right)):
        row, col = top + row_step, left + col_step
        inside = (row >= 0) & (row <= height - 1) & (col >= 0) & (col <= width - 1)
        index = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).long() + first_pixel
        corner = pixels.index_select(0, index.reshape(-1)).view(batch, out_h * out_w * points, channels)
        sampled = sampled + corner * (share * inside * modulation).reshape(batch, -1, 1)
    # Rows ordered (kernel point, channel) against the weight in the same order.
    kernel = weight.permute(2, 3, 1, 0).reshape(points * int(weight.shape[1]), int(out_channels))
    out = sampled.reshape(batch, out_h * out_w, points * channels) @ kernel
    if bias is not None:
        out = out + bias
    return out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2)


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
