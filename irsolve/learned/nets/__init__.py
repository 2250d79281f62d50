"""Networks of the learned refiner: the refinement U-Net and the FNO/TFNO base operators."""

from irsolve.learned.nets.factory import build_net, net_config
from irsolve.learned.nets.fno import base_operator, warn_if_odd_resolution
from irsolve.learned.nets.unet import ChannelLayerNorm, RefinementUNet

__all__ = [
    "ChannelLayerNorm",
    "RefinementUNet",
    "base_operator",
    "build_net",
    "net_config",
    "warn_if_odd_resolution",
]
