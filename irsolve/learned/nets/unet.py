"""The refinement network ``Phi_theta``: a small U-Net that maps ``[x ; h]`` to a correction.

Reference architecture of the Iterative Refinement Neural Operator (IRNO) paper
(Liu et al., "Iterative Refinement Neural Operators are Learned Fixed-Point
Solvers"): depth 4, base width 16 (widths 16/32/64/128, bottleneck
256), blocks ``[conv3x3 -> norm -> GELU] x 2``, max-pool down, bilinear x2 up
followed by a 3x3 convolution, skip concatenation and a final 1x1 convolution
initialised small (Xavier gain 0.1, zero bias) so that an untrained refiner
starts close to the identity map ``h -> h``. The head's output is multiplied
by ``output_scale`` (a buffer, so checkpoints keep it): set to the size of
the error being corrected (``rms(y - T(x))``), it lets the net work in units
of that error. Without it an accurate base leaves a correction far below
the output change of one Adam step, and the refiner learns nothing.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from irsolve._validate import check_choice, check_int, check_memory, check_real

__all__ = ["ChannelLayerNorm", "RefinementUNet"]


Padding = Literal["circular", "zeros"]
Norm = Literal["batch", "layer", "group"]


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over channels at each pixel of a ``(B, C, H, W)`` tensor.

    ``y[b, :, i, j] = gamma * (z[b, :, i, j] - mean_c) / sqrt(var_c + eps) + beta``
    (Ba et al. 2016, applied per pixel as in ConvNeXt), so the statistics never
    mix samples or positions and the net stays resolution-agnostic.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, z: Tensor) -> Tensor:
        z = z.movedim(1, -1)
        z = F.layer_norm(z, z.shape[-1:], self.weight, self.bias, self.eps)
        return z.movedim(-1, 1)


def _norm_layer(norm: Norm, channels: int, groups: int, dims: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    if norm == "layer":
        return ChannelLayerNorm(channels)
    if norm == "group":
        return nn.GroupNorm(min(groups, channels), channels)
    raise ValueError(f"expected norm 'batch', 'layer' or 'group', got {norm!r}")


def _conv3x3(c_in: int, c_out: int, padding: Padding, dims: int) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    return conv(c_in, c_out, kernel_size=3, padding=1, padding_mode=padding)


class _Block(nn.Sequential):
    """``[conv3x3 -> norm -> GELU] x 2`` (3x3x3 in 3-D)."""

    def __init__(
        self, c_in: int, c_out: int, padding: Padding, norm: Norm, groups: int, dims: int
    ) -> None:
        super().__init__(
            _conv3x3(c_in, c_out, padding, dims),
            _norm_layer(norm, c_out, groups, dims),
            nn.GELU(),
            _conv3x3(c_out, c_out, padding, dims),
            _norm_layer(norm, c_out, groups, dims),
            nn.GELU(),
        )


class _Up(nn.Module):
    """Bi/trilinear x2 upsampling (periodic at the border when circular), a 3x3 convolution,
    skip concatenation, then a block."""

    def __init__(
        self, c_in: int, c_out: int, padding: Padding, norm: Norm, groups: int, dims: int
    ) -> None:
        super().__init__()
        self.periodic = padding == "circular"
        self.mode = "bilinear" if dims == 2 else "trilinear"
        self.dims = dims
        self.conv = _conv3x3(c_in, c_out, padding, dims)
        self.block = _Block(2 * c_out, c_out, padding, norm, groups, dims)

    def forward(self, z: Tensor, skip: Tensor) -> Tensor:
        if self.periodic:
            # Interpolate with wrapped neighbours at the border: pad one cell circularly,
            # upsample, and crop the two extra output cells on each side.
            z = F.pad(z, (1, 1) * self.dims, mode="circular")
            z = F.interpolate(z, scale_factor=2.0, mode=self.mode, align_corners=False)
            z = z[(..., *[slice(2, -2)] * self.dims)]
        else:
            z = F.interpolate(z, scale_factor=2.0, mode=self.mode, align_corners=False)
        return self.block(torch.cat([skip, self.conv(z)], dim=1))


def _weight_count(in_channels: int, widths: list[int], dims: int = 2) -> int:
    """Weights of the 3x3 (3x3x3) convolutions of a U-Net with level widths ``widths``
    (biases, norms and the 1x1 head are a lower-order term), ``K = 3^dims`` per kernel:
    encoder and bottleneck blocks ``K (c_in w + w^2)``, each up level
    ``K (w_{i+1} w_i + 2 w_i^2 + w_i^2)``."""
    kernel, count, c_prev = 3**dims, 0, in_channels
    for width in widths:
        count += kernel * (c_prev * width + width * width)
        c_prev = width
    for low, high in zip(widths[:-1], widths[1:], strict=True):
        count += kernel * (high * low + 3 * low * low)
    return count


class RefinementUNet(nn.Module):
    """U-Net refinement network ``Phi_theta([x ; h])`` of the IRNO paper.

    Parameters
    ----------
    in_channels
        Channels of the input ``[x ; h]`` (input channels plus solution channels).
    out_channels
        Channels of the correction, equal to the solution's channels.
    base_channels
        Width of the first level; level ``i`` has ``base_channels * 2**i``
        channels and the bottleneck ``base_channels * 2**depth``.
    depth
        Number of down-sampling steps.
    padding
        ``"circular"`` for periodic domains, ``"zeros"`` otherwise; used by
        every convolution and by the padding to a multiple of ``2**depth``.
    norm
        ``"batch"`` (the paper's), ``"layer"`` (per pixel over channels) or
        ``"group"``.
    groups
        Number of groups for ``norm="group"`` (capped at the channel count).
    dims
        Grid dimensions of the input: 2 (``(B, C, H, W)``) or 3 (``(B, C, D, H, W)``,
        3x3x3 convolutions, trilinear upsampling).
    output_scale
        Multiplies the head's output, ``Phi = output_scale * head(...)``;
        :func:`irsolve.learned.training.train_refiner` sets it to the base's RMS
        error on the training data before training.

    Notes
    -----
    Inputs of any ``H, W`` are accepted: they are padded up to the next
    multiple of ``2**depth`` (circularly when ``padding="circular"``, else
    with zeros) and the output is cropped back to ``H, W``.

    References
    ----------
    Ronneberger, Fischer and Brox, "U-Net: Convolutional networks for
    biomedical image segmentation", MICCAI 2015; the IRNO paper's refinement
    operator ("Iterative Refinement Neural Operators are Learned Fixed-Point
    Solvers").
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 16,
        depth: int = 4,
        padding: Padding = "circular",
        norm: Norm = "layer",
        groups: int = 8,
        output_scale: float = 1.0,
        dims: int = 2,
    ) -> None:
        super().__init__()
        owner = "RefinementUNet"
        padding = check_choice(owner, "padding", padding, ("circular", "zeros"))
        norm = check_choice(owner, "norm", norm, ("batch", "layer", "group"))
        in_channels = check_int(owner, "in_channels", in_channels, minimum=1)
        out_channels = check_int(owner, "out_channels", out_channels, minimum=1)
        base_channels = check_int(owner, "base_channels", base_channels, minimum=1)
        depth = check_int(owner, "depth", depth, minimum=0)
        groups = check_int(owner, "groups", groups, minimum=1)
        dims = check_int(owner, "dims", dims, minimum=2)
        if dims > 3:
            raise ValueError(f"{owner}: expected dims 2 or 3, got {dims}")
        output_scale = check_real(owner, "output_scale", output_scale, minimum=0.0, open_min=True)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.base_channels = base_channels
        self.depth = depth
        self.padding = padding
        self.norm = norm
        self.groups = groups
        self.dims = dims
        widths = [base_channels * 2**i for i in range(depth + 1)]
        check_memory(
            owner,
            f"the weights of base_channels={base_channels}, depth={depth} (float32, with "
            "gradients and two Adam moments)",
            16 * _weight_count(in_channels, widths, dims),
        )
        self.encoder = nn.ModuleList()
        c_prev = in_channels
        for width in widths[:-1]:
            self.encoder.append(_Block(c_prev, width, padding, norm, groups, dims))
            c_prev = width
        self.bottleneck = _Block(c_prev, widths[-1], padding, norm, groups, dims)
        self.decoder = nn.ModuleList(
            _Up(widths[i + 1], widths[i], padding, norm, groups, dims)
            for i in reversed(range(depth))
        )
        self.head = (nn.Conv2d if dims == 2 else nn.Conv3d)(widths[0], out_channels, 1)
        nn.init.xavier_uniform_(self.head.weight, gain=0.1)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("output_scale", torch.tensor(float(output_scale)))

    def config(self) -> dict[str, int | str | float]:
        """Constructor arguments, for checkpoints (JSON-serialisable)."""
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "base_channels": self.base_channels,
            "depth": self.depth,
            "padding": self.padding,
            "norm": self.norm,
            "groups": self.groups,
            "output_scale": float(self.output_scale),
            "dims": self.dims,
        }

    def _pad(self, z: Tensor, sizes: tuple[int, ...]) -> Tensor:
        """Pad ``z`` at the far end of each grid dim to ``sizes``: periodic copies or zeros."""
        if self.padding == "zeros":
            pads = [
                p
                for size, have in zip(reversed(sizes), reversed(z.shape[2:]), strict=True)
                for p in (0, size - have)
            ]
            return F.pad(z, pads)
        reps = [-(-size // have) for size, have in zip(sizes, z.shape[2:], strict=True)]
        return z.repeat(1, 1, *reps)[(..., *[slice(0, size) for size in sizes])]

    def forward(self, z: Tensor) -> Tensor:
        """Correction for ``z = cat([x, h], dim=1)`` of shape ``(B, in_channels, H, W)``
        (``(B, in_channels, D, H, W)`` in 3-D)."""
        if z.dim() != 2 + self.dims or z.shape[1] != self.in_channels:
            grid = "H, W" if self.dims == 2 else "D, H, W"
            raise ValueError(
                f"expected input of shape (B, {self.in_channels}, {grid}), got {tuple(z.shape)}"
            )
        sizes = tuple(z.shape[2:])
        multiple = 2**self.depth
        padded = tuple(size + (-size % multiple) for size in sizes)
        if padded != sizes:
            z = self._pad(z, padded)
        pool = F.max_pool2d if self.dims == 2 else F.max_pool3d
        skips = []
        for block in self.encoder:
            z = block(z)
            skips.append(z)
            z = pool(z, 2)
        z = self.bottleneck(z)
        for up, skip in zip(self.decoder, reversed(skips), strict=True):
            z = up(z, skip)
        return self.output_scale * self.head(z)[(..., *[slice(0, size) for size in sizes])]
