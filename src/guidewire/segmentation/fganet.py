"""FGA-Net (focused gated attention network) and its U-Net baseline.

One encoder-decoder with six encoder stages and five decoder stages. FGA-Net
puts an SDA gate before the convolutions of the four deeper encoder stages
and of the first three decoder stages, and fuses every skip connection with a
BGA module; turning both off gives the paper's U-Net baseline (concatenated
skips, transposed-convolution upsampling). The width is configuration, so the
paper's network and the smaller shipped one are the same code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from guidewire.segmentation.deformable import DeformableConv2d

# Deep-supervision weights from the authors' code: main output first, then the
# decoder outputs from shallowest to deepest, the bottleneck last.
DEEP_SUPERVISION_WEIGHTS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125)
SHIFT_DIRECTIONS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class NetworkConfig:
    widths: tuple = (32, 64, 128, 256, 512, 512)  # six encoder stages (authors' code)
    in_channels: int = 1
    gated_attention: bool = True  # SDA modules
    bilateral_fusion: bool = True  # BGA skips; False: U-Net concatenation

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) != 6 or min(self.widths) < 1:
            raise ValueError(f"widths must be six positive channel counts, got {self.widths}")

    def to_dict(self) -> dict:
        return asdict(self)


PAPER_FGANET = NetworkConfig()
SHIPPED_FGANET = NetworkConfig(widths=(8, 16, 24, 32, 48, 48))
SHIPPED_UNET = NetworkConfig(widths=SHIPPED_FGANET.widths, gated_attention=False, bilateral_fusion=False)
PAPER_UNET = NetworkConfig(gated_attention=False, bilateral_fusion=False)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                                   groups=groups, bias=False), nn.BatchNorm2d(out_channels))


class ConvBlock(nn.Sequential):
    """Two 3x3 conv-BN-LeakyReLU layers, as in nnU-Net."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(conv_bn(in_channels, out_channels), nn.LeakyReLU(0.01, inplace=True),
                         conv_bn(out_channels, out_channels), nn.LeakyReLU(0.01, inplace=True))


def spatial_shift(x: torch.Tensor, step: int = 1) -> torch.Tensor:
    """Shift channel group g by SHIFT_DIRECTIONS[g] * step, filling with zeros (no FLOPs, no parameters)."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (step, step, step, step))
    # Static group sizes (the channel count is fixed by the weights) keep the ONNX graph static.
    channels, count = int(x.shape[1]), len(SHIFT_DIRECTIONS)
    sizes = [channels // count + (1 if g < channels % count else 0) for g in range(count)]
    groups = torch.split(padded, [s for s in sizes if s], dim=1)
    shifted = [g[..., step - dy * step:step - dy * step + height, step - dx * step:step - dx * step + width]
               for g, (dy, dx) in zip(groups, SHIFT_DIRECTIONS)]
    return torch.cat(shifted, dim=1)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of each pixel."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GatedAttention(nn.Module):
    """SDA: 1x1 conv, spatial shift, InstanceNorm, GELU, then a deformable 3x3
    convolution, LayerNorm and sigmoid as the gate that multiplies the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.project = nn.Conv2d(channels, channels, 1)
        self.norm = nn.InstanceNorm2d(channels, affine=True)
        self.gate = DeformableConv2d(channels, channels)
        self.gate_norm = ChannelLayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = F.gelu(self.norm(spatial_shift(self.project(x))))
        return x * torch.sigmoid(self.gate_norm(self.gate(context)))


class BilateralFusion(nn.Module):
    """BGA: a depthwise-separable and a plain 3x3 path on both the skip (detail)
    and the deeper (semantic) feature; each detail path is gated by the sigmoid
    of the other branch's opposite path, the two are summed and fused by a 3x3 conv."""

    def __init__(self, skip_channels: int, deep_channels: int, out_channels: int):
        super().__init__()
        self.skip_separable = nn.Sequential(conv_bn(skip_channels, skip_channels, groups=skip_channels),
                                            nn.Conv2d(skip_channels, out_channels, 1))
        self.skip_conv = conv_bn(skip_channels, out_channels)
        self.deep_separable = nn.Sequential(conv_bn(deep_channels, deep_channels, groups=deep_channels),
                                            nn.Conv2d(deep_channels, out_channels, 1))
        self.deep_conv = conv_bn(deep_channels, out_channels)
        self.fuse = nn.Sequential(conv_bn(out_channels, out_channels), nn.LeakyReLU(0.01, inplace=True))

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        detail = self.skip_separable(skip) * torch.sigmoid(up(self.deep_conv(deep)))
        semantic = self.skip_conv(skip) * torch.sigmoid(up(self.deep_separable(deep)))
        return self.fuse(detail + semantic)


class ConcatSkip(nn.Module):
    """U-Net skip: transposed-conv upsampling, then concatenation."""

    def __init__(self, skip_channels: int, deep_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(deep_channels, out_channels, 2, stride=2)

    def forward(self, skip: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        return torch.cat([skip, self.up(deep)], dim=1)


class SegmentationNetwork(nn.Module):
    """Returns logits (B,1,H,W); in training mode, the list of the six deeply
    supervised logits in DEEP_SUPERVISION_WEIGHTS order, all at full size.
    H and W must be multiples of 32."""

    def __init__(self, config: NetworkConfig = PAPER_FGANET):
        super().__init__()
        self.config = config
        w = config.widths
        attention = lambda channels, on: GatedAttention(channels) if config.gated_attention and on else nn.Identity()
        self.encoder_gates = nn.ModuleList(attention(w[i - 1] if i else config.in_channels, i >= 2)
                                           for i in range(6))
        self.encoder = nn.ModuleList(ConvBlock(w[i - 1] if i else config.in_channels, w[i]) for i in range(6))
        self.skips, self.decoder_gates, self.decoder = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        deep = w[5]
        for stage, level in enumerate(range(4, -1, -1)):
            out = w[level]
            if config.bilateral_fusion:
                self.skips.append(BilateralFusion(w[level], deep, out))
                fused = out
            else:
                self.skips.append(ConcatSkip(w[level], deep, out))
                fused = w[level] + out
            self.decoder_gates.append(attention(fused, stage < 3))
            self.decoder.append(ConvBlock(fused, out))
            deep = out
        # Heads: main (last decoder stage), decoder stages 3..0, bottleneck.
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in (w[0], w[1], w[2], w[3], w[4], w[5]))

    def forward(self, x: torch.Tensor):
        size = x.shape[-2:]
        features = []
        for i, (gate, block) in enumerate(zip(self.encoder_gates, self.encoder)):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(gate(x))
            features.append(x)
        decoded = []
        for stage, (skip, gate, block) in enumerate(zip(self.skips, self.decoder_gates, self.decoder)):
            x = block(gate(skip(features[4 - stage], x)))
            decoded.append(x)
        if not self.training:
            return self.heads[0](x)
        outputs = [decoded[4], decoded[3], decoded[2], decoded[1], decoded[0], features[5]]
        return [head(o) if o.shape[-2:] == size else
                F.interpolate(head(o), size=size, mode="bilinear", align_corners=False)
                for head, o in zip(self.heads, outputs)]


def widen(network: SegmentationNetwork, widths: tuple, seed: int = 0, split_noise: float = 0.1
          ) -> SegmentationNetwork:
    """Net2WiderNet (Chen et al. 2016): the same function in a network whose stages are each as wide
    as `network`'s or twice as wide, to give a trained network more capacity without starting over.

    Each channel of a doubled stage becomes two adjacent copies: adjacent, so the spatial shift's
    eight contiguous channel groups and the channel LayerNorm see what they saw before. A layer that
    reads a doubled stage gives the copies w*(1/2 + e) and w*(1/2 - e) with random e, which sums to w
    on equal copies; the copies then get different gradients and do not stay twins in training.
    """
    old_widths, widths = network.config.widths, tuple(int(w) for w in widths)
    if len(widths) != 6 or any(w not in (o, 2 * o) for w, o in zip(widths, old_widths)):
        raise ValueError(f"each width must stay or double: {old_widths} -> {widths}")
    if network.config.gated_attention and any(
            w != o and o % len(SHIFT_DIRECTIONS) for w, o in zip(widths, old_widths)):
        raise ValueError(f"a doubled stage needs a multiple of {len(SHIFT_DIRECTIONS)} channels, so that its "
                         f"copies stay in the same spatial-shift group: {old_widths}")
    wider = SegmentationNetwork(replace(network.config, widths=widths))
    generator = torch.Generator().manual_seed(seed)
    for (name, old_module), (_, new_module) in zip(network.named_modules(), wider.named_modules()):
        for key, old_value in [*old_module.named_parameters(recurse=False), *old_module.named_buffers(recurse=False)]:
            # Which dimension holds output and which input channels.
            transposed = isinstance(old_module, nn.ConvTranspose2d) and key == "weight"
            out_dim, in_dim = (1, 0) if transposed else (0, 1)
            target = getattr(new_module, key)
            value = old_value.detach()
            if value.dim() > out_dim and target.shape[out_dim] == 2 * value.shape[out_dim]:
                value = value.repeat_interleave(2, dim=out_dim)
            if value.dim() > in_dim and target.shape[in_dim] == 2 * value.shape[in_dim]:
                share = split_noise * torch.randn(value.shape, generator=generator, dtype=value.dtype)
                value = torch.stack([value * (0.5 + share), value * (0.5 - share)], dim=in_dim + 1)
                value = value.flatten(in_dim, in_dim + 1)
            if value.shape != target.shape:
                raise ValueError(f"cannot widen {name}.{key} from {tuple(old_value.shape)} to {tuple(target.shape)}")
            target.data.copy_(value)
    return wider.train(network.training)


def fold_batch_norms(network: SegmentationNetwork) -> SegmentationNetwork:
    """Fold every conv-BN pair into its convolution, in place, for inference: the
    same function with one pass over each feature map instead of two."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    network.eval()
    for module in network.modules():
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return network


def count_multiply_accumulates(network: nn.Module, size: int = 512) -> dict:
    """Multiply-accumulates of one forward pass at size x size, in total and
    without the deformable convolutions (their offset convs included), from
    torch's own FLOP counter (2 FLOPs per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    network = network.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        network(torch.zeros(1, network.config.in_channels, size, size))
    per_module = counter.get_flop_counts()
    total = sum(per_module["Global"].values()) / 2
    deformable_names = [name for name, module in network.named_modules() if isinstance(module, DeformableConv2d)]
    deformable = sum(sum(per_module.get(f"SegmentationNetwork.{name}", {}).values()) for name in deformable_names) / 2
    return {"total": total, "without_deformable": total - deformable, "deformable": deformable}
