"""RefinementUNet: architecture, padding to any resolution, equivariance, errors."""

import pytest
import torch

from irsolve.learned.nets import ChannelLayerNorm, RefinementUNet


def test_reference_unet_has_the_papers_parameter_count():
    # IRNO paper: depth 4, width 16, BatchNorm U-Net with 2.16 M parameters.
    net = RefinementUNet(2, 1, base_channels=16, depth=4, norm="batch")
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 2.16


@pytest.mark.parametrize(
    ("padding", "shape"), [("circular", (13, 21)), ("circular", (3, 5)), ("zeros", (13, 21))]
)
def test_output_matches_input_resolution_for_any_size(padding, shape):
    net = RefinementUNet(3, 2, base_channels=2, depth=3, padding=padding)
    out = net(torch.randn(2, 3, *shape))
    assert out.shape == (2, 2, *shape)
    assert torch.isfinite(out).all()


def test_circular_unet_commutes_with_shifts_by_the_pooling_stride():
    # With circular padding (convolutions and the periodic bilinear upsampling), layer
    # norm and H, W multiples of 2^depth, every layer commutes with shifts by multiples
    # of 2^depth, so the whole net does: exact up to float64 rounding.
    torch.manual_seed(0)
    net = RefinementUNet(1, 1, base_channels=4, depth=2, padding="circular").double()
    z = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    shifted = net(torch.roll(z, shifts=(4, 8), dims=(-2, -1)))
    expected = torch.roll(net(z), shifts=(4, 8), dims=(-2, -1))
    torch.testing.assert_close(shifted, expected, rtol=1e-10, atol=1e-12)


def test_final_layer_starts_small_with_zero_bias():
    net = RefinementUNet(2, 1, base_channels=8, depth=2)
    fan_in, fan_out = net.head.in_channels, net.head.out_channels
    bound = 0.1 * (6.0 / (fan_in + fan_out)) ** 0.5  # xavier_uniform with gain 0.1
    assert torch.all(net.head.bias == 0)
    assert net.head.weight.abs().max() <= bound


def test_channel_layer_norm_normalises_each_pixel_over_channels():
    z = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    out = ChannelLayerNorm(5, eps=0.0).double()(z)
    mean = z.mean(dim=1, keepdim=True)
    var = z.var(dim=1, keepdim=True, correction=0)
    torch.testing.assert_close(out, (z - mean) / var.sqrt())


@pytest.mark.parametrize("norm", ["batch", "layer", "group"])
def test_every_norm_gives_finite_output(norm):
    out = RefinementUNet(2, 1, base_channels=8, depth=2, norm=norm)(torch.randn(2, 2, 8, 8))
    assert torch.isfinite(out).all()


def test_wrong_input_channels_raise_naming_expected_shape():
    net = RefinementUNet(2, 1, base_channels=4, depth=1)
    expected = r"expected input of shape \(B, 2, H, W\), got \(1, 3, 8, 8\)"
    with pytest.raises(ValueError, match=expected):
        net(torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"norm": "instance"}, ValueError, "expected norm to be one of 'batch', 'layer', 'group'"),
        ({"padding": "reflect"}, ValueError, "expected padding to be one of 'circular', 'zeros'"),
        ({"base_channels": 0}, ValueError, "expected base_channels to be an int >= 1, got 0"),
        ({"depth": -1}, ValueError, "expected depth to be an int >= 0, got -1"),
        ({"depth": 1.5}, ValueError, "expected depth to be an int >= 0, got 1.5"),
        ({"groups": 0}, ValueError, "expected groups to be an int >= 1, got 0"),
        ({"in_channels": "2"}, TypeError, "expected in_channels to be an int >= 1, got '2'"),
    ],
)
def test_out_of_range_or_mistyped_arguments_raise_naming_them(kwargs, error, message):
    with pytest.raises(error, match=rf"RefinementUNet: {message}"):
        RefinementUNet(**{"in_channels": 2, "out_channels": 1, **kwargs})


def test_output_scale_multiplies_the_correction_and_travels_with_the_state_dict():
    z = torch.randn(2, 2, 8, 8)
    torch.manual_seed(0)
    plain = RefinementUNet(2, 1, base_channels=4, depth=2, norm="group")
    torch.manual_seed(0)
    scaled = RefinementUNet(2, 1, base_channels=4, depth=2, norm="group", output_scale=0.01)
    torch.testing.assert_close(scaled(z), 0.01 * plain(z))
    assert scaled.config()["output_scale"] == pytest.approx(0.01)
    plain.load_state_dict(scaled.state_dict())
    torch.testing.assert_close(plain(z), scaled(z))


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_output_scale_raises(scale):
    with pytest.raises(ValueError, match="output_scale"):
        RefinementUNet(2, 1, base_channels=4, depth=1, output_scale=scale)


@pytest.mark.parametrize(("base", "depth"), [(4, 0), (8, 3), (5, 2)])
def test_weight_estimate_counts_every_3x3_convolution_weight(base: int, depth: int):
    """The memory check's count equals the 3x3 weights of the built net (exact)."""
    from irsolve.learned.nets.unet import _weight_count

    net = RefinementUNet(4, 2, base_channels=base, depth=depth)
    built = sum(p.numel() for p in net.parameters() if p.dim() == 4 and p.shape[-1] == 3)
    assert _weight_count(4, [base * 2**i for i in range(depth + 1)]) == built


def test_a_unet_too_big_for_the_machine_is_refused_before_allocating():
    with pytest.raises(ValueError, match="^RefinementUNet: the weights of base_channels=100000"):
        RefinementUNet(4, 2, base_channels=100000, depth=3)
