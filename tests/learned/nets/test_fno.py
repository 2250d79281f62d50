"""FNO/TFNO base operators from neuraloperator, and the net factory."""

import pytest
import torch

from irsolve.learned.nets import RefinementUNet, base_operator, build_net, net_config


def test_fno_and_tfno_map_input_to_output_channels():
    x = torch.randn(2, 3, 16, 16)
    fno = base_operator("fno", 3, 2, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    tfno = base_operator("tfno", 3, 2, n_modes=(4, 4), hidden_channels=8, n_layers=2)
    assert fno(x).shape == tfno(x).shape == (2, 2, 16, 16)
    # Tucker factorisation (rank 0.1) stores fewer spectral weights than the dense FNO.
    assert sum(p.numel() for p in tfno.parameters()) < sum(p.numel() for p in fno.parameters())


def test_odd_resolution_warns():
    fno = base_operator("fno", 1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)
    with pytest.warns(UserWarning, match="even spatial sizes"):
        fno(torch.randn(1, 1, 15, 16))


def test_wrong_channels_and_unknown_kind_raise():
    fno = base_operator("fno", 2, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1)
    with pytest.raises(ValueError, match=r"\(B, 2, \*space\), got \(1, 3, 8, 8\)"):
        fno(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="expected kind to be one of 'fno', 'tfno', got 'unet'"):
        base_operator("unet", 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_modes": (0, 4)}, ValueError, "expected n_modes to be an int >= 1, got 0"),
        ({"n_modes": 4}, TypeError, "expected n_modes to be a non-empty tuple of ints"),
        ({"n_modes": ()}, TypeError, "expected n_modes to be a non-empty tuple of ints"),
        ({"n_layers": 0}, ValueError, "expected n_layers to be an int >= 1, got 0"),
        ({"hidden_channels": 2.5}, ValueError, "expected hidden_channels to be an int >= 1"),
        ({"in_channels": 0}, ValueError, "expected in_channels to be an int >= 1, got 0"),
    ],
)
def test_out_of_range_or_mistyped_arguments_raise_naming_them(kwargs, error, message):
    arguments = {"in_channels": 1, "out_channels": 1, "n_modes": (4, 4), **kwargs}
    with pytest.raises(error, match=rf"base_operator: {message}"):
        base_operator("fno", **arguments)


@pytest.mark.parametrize(
    "net",
    [
        RefinementUNet(2, 1, base_channels=4, depth=2, norm="group"),
        base_operator("tfno", 1, 1, n_modes=(4, 4), hidden_channels=4, n_layers=1),
    ],
    ids=["unet", "tfno"],
)
def test_build_net_rebuilds_the_same_architecture(net):
    rebuilt = build_net(net_config(net))
    own = {k: v.shape for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    new = {k: v.shape for k, v in rebuilt.state_dict().items() if isinstance(v, torch.Tensor)}
    assert own == new


def test_more_modes_than_the_grid_warns_and_wrong_dimensions_raise():
    fno = base_operator("fno", 1, 1, n_modes=(16, 16), hidden_channels=4, n_layers=1)
    with pytest.warns(UserWarning, match=r"n_modes \(16, 16\) at most the grid \(8, 8\)"):
        fno(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"2 spatial dimensions \(n_modes \(16, 16\)\), got"):
        fno(torch.randn(1, 1, 32))
