"""FGA-Net building blocks against independent references."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from guidewire.segmentation.deformable import DeformableConv2d, deform_conv2d, deform_conv2d_grid_sample, \
    deform_conv2d_pixel_rows
from guidewire.segmentation.fganet import (DEEP_SUPERVISION_WEIGHTS, PAPER_FGANET, PAPER_UNET, NetworkConfig,
                                           SegmentationNetwork, count_multiply_accumulates, spatial_shift, widen)
from guidewire.segmentation.losses import deep_supervision_loss, soft_skeleton

TINY = NetworkConfig(widths=(4, 8, 8, 8, 8, 8))


def bilinear_zero_padded(image: np.ndarray, y: float, x: float) -> float:
    """DCNv2's sampling: bilinear over the four neighbours, zero outside the image."""
    height, width = image.shape
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    value = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                value += wy * wx * image[yy, xx]
    return value


def reference_deform_conv(x, offset, mask, weight, padding, dilation):
    batch, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    out = np.zeros((batch, out_channels, height, width))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                for k in range(kh * kw):
                    ki, kj = divmod(k, kw)
                    y = i - padding + ki * dilation + offset[b, 2 * k, i, j]
                    xx = j - padding + kj * dilation + offset[b, 2 * k + 1, i, j]
                    samples = np.array([bilinear_zero_padded(x[b, c], y, xx) for c in range(channels)])
                    out[b, :, i, j] += mask[b, k, i, j] * weight[:, :, ki, kj] @ samples
    return out


DCN_FORMS = pytest.mark.parametrize("form", [deform_conv2d, deform_conv2d_grid_sample, deform_conv2d_pixel_rows])


@DCN_FORMS
@pytest.mark.parametrize("dilation", [1, 2])
def test_deformable_convolution_matches_explicit_bilinear_sampling(form, dilation):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 6, 7))
    offset = rng.normal(scale=1.5, size=(2, 18, 6, 7))  # pushes samples across the borders too
    mask = rng.uniform(size=(2, 9, 6, 7))
    weight = rng.normal(size=(4, 3, 3, 3))
    expected = reference_deform_conv(x, offset, mask, weight, padding=dilation, dilation=dilation)
    got = form(*(torch.tensor(a) for a in (x, offset, mask, weight)), padding=dilation, dilation=dilation)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-9)


@DCN_FORMS
def test_zero_offsets_and_unit_modulation_equal_a_plain_convolution(form):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    got = form(x, torch.zeros(2, 18, 9, 11, dtype=torch.float64), torch.ones(2, 9, 9, 11, dtype=torch.float64),
               weight, bias, padding=1)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, padding=1))


def test_exported_graphs_sample_pixel_rows_and_eager_runs_grid_sample():
    module = DeformableConv2d(4, 4).eval()
    x = torch.randn(1, 4, 8, 8)
    graph = str(torch.export.export(module, (x,)).graph)
    assert "index_select" in graph and "grid_sampler" not in graph
    with torch.profiler.profile() as eager:
        module(x)
    assert any("grid_sampler" in event.name for event in eager.events())


def test_deformable_module_gradients_reach_offsets():
    torch.manual_seed(0)
    module = DeformableConv2d(4, 4)
    torch.nn.init.normal_(module.offset_and_mask.weight, std=0.1)
    module(torch.randn(1, 4, 8, 8)).square().sum().backward()
    assert module.offset_and_mask.weight.grad.abs().sum() > 0


def test_spatial_shift_moves_each_channel_group_one_pixel_in_its_direction():
    x = torch.zeros(1, 8, 5, 5)
    x[:, :, 2, 2] = 1.0
    shifted = spatial_shift(x)
    directions = [tuple(int(v) for v in np.argwhere(shifted[0, g].numpy())[0] - 2) for g in range(8)]
    assert sorted(directions) == sorted((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def test_training_outputs_are_six_full_size_maps_and_eval_one():
    network = SegmentationNetwork(TINY)
    x = torch.randn(2, 1, 64, 96)
    outputs = network.train()(x)
    assert len(outputs) == len(DEEP_SUPERVISION_WEIGHTS) == 6
    assert all(o.shape == (2, 1, 64, 96) for o in outputs)
    loss = deep_supervision_loss(outputs, (torch.rand(2, 1, 64, 96) > 0.9).float())
    loss.backward()
    assert torch.isfinite(loss)
    assert network.eval()(x).shape == (2, 1, 64, 96)


@pytest.mark.parametrize("fganet", [True, False], ids=["FGA-Net", "U-Net"])
def test_widening_keeps_the_function_and_lets_the_copies_diverge(fganet):
    torch.manual_seed(0)
    network = SegmentationNetwork(NetworkConfig((8, 8, 8, 16, 16, 16), gated_attention=fganet,
                                                bilateral_fusion=fganet))
    with torch.no_grad():  # as if trained: non-zero offsets, norms and batch statistics
        for parameter in network.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
        for _ in range(3):
            network.train()(torch.randn(2, 1, 64, 64))
    x = torch.randn(2, 1, 64, 64)
    wider = widen(network.eval(), (8, 8, 16, 16, 32, 32))
    assert sum(p.numel() for p in wider.parameters()) > 2 * sum(p.numel() for p in network.parameters())
    with torch.no_grad():
        expected, widened = network(x), wider(x)
    assert torch.allclose(widened, expected, atol=1e-4 * float(expected.abs().max()))

    def doubled_stage(network):  # encoder stage 2 went from 8 to 16 channels: copies 2c and 2c+1
        seen = []
        hook = network.encoder[2].register_forward_hook(lambda module, inputs, output: seen.append(output))
        with torch.no_grad():
            network.eval()(x)
        hook.remove()
        return seen[0]

    assert torch.allclose(doubled_stage(wider)[:, 0], doubled_stage(wider)[:, 1], atol=1e-5)
    loss = deep_supervision_loss(wider.train()(x), (torch.rand(2, 1, 64, 64) > 0.9).float())
    loss.backward()
    torch.optim.SGD(wider.parameters(), lr=0.1).step()
    assert not torch.allclose(doubled_stage(wider)[:, 0], doubled_stage(wider)[:, 1], atol=1e-3)


def test_widening_refuses_widths_that_are_not_kept_or_doubled():
    with pytest.raises(ValueError, match="stay or double"):
        widen(SegmentationNetwork(TINY), tuple(3 * w for w in TINY.widths))


def test_unet_baseline_has_no_attention_or_fusion_modules():
    names = {type(m).__name__ for m in SegmentationNetwork(NetworkConfig(TINY.widths, gated_attention=False,
                                                                         bilateral_fusion=False)).modules()}
    assert "GatedAttention" not in names and "BilateralFusion" not in names and "ConcatSkip" in names
    fga = {type(m).__name__ for m in SegmentationNetwork(TINY).modules()}
    assert {"GatedAttention", "BilateralFusion", "DeformableConv2d"} <= fga


def test_paper_network_multiply_accumulates_match_the_authors_count():
    """75.36 'GFLOPs' in the paper is about 74.7 G MACs without the deformable convolutions."""
    fga = count_multiply_accumulates(SegmentationNetwork(PAPER_FGANET), 512)
    assert fga["without_deformable"] == pytest.approx(74.7e9, rel=0.05)
    assert fga["total"] > fga["without_deformable"]
    unet = count_multiply_accumulates(SegmentationNetwork(PAPER_UNET), 512)
    assert unet["total"] == pytest.approx(54.98e9, rel=0.05)  # the paper's U-Net row


def test_soft_skeleton_of_a_thick_bar_is_thin_and_inside_it():
    bar = torch.zeros(1, 1, 21, 41)
    bar[..., 8:13, 5:36] = 1.0
    skeleton = soft_skeleton(bar)
    assert skeleton[..., 10, 10:30].min() > 0.5
    assert skeleton[..., 8, 10:30].max() < 0.5
    assert (skeleton * (1 - bar)).abs().max() == 0
