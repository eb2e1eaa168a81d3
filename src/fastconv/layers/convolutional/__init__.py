"""The convolution layers, one rank-generic base per family (Keras 3's
``keras/src/layers/convolutional``): BaseConv, BaseConvTranspose,
BaseDepthwiseConv and BaseSeparableConv, each with thin subclasses per rank."""

from fastconv.layers import registry
from fastconv.layers.convolutional.base_conv import (
    BaseConv,
    Conv1D,
    Conv2D,
    Conv3D,
    Convolution1D,
    Convolution2D,
    Convolution3D,
)
from fastconv.layers.convolutional.base_conv_transpose import (
    BaseConvTranspose,
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution1DTranspose,
    Convolution2DTranspose,
    Convolution3DTranspose,
)
from fastconv.layers.convolutional.base_depthwise_conv import (
    BaseDepthwiseConv,
    DepthwiseConv1D,
    DepthwiseConv2D,
)
from fastconv.layers.convolutional.base_separable_conv import (
    BaseSeparableConv,
    SeparableConv1D,
    SeparableConv2D,
    SeparableConvolution1D,
    SeparableConvolution2D,
)

# A config may name a class by its Keras alias.
for _cls, _alias in [(Conv1D, "Convolution1D"), (Conv2D, "Convolution2D"),
                     (Conv3D, "Convolution3D"), (Conv1DTranspose, "Convolution1DTranspose"),
                     (Conv2DTranspose, "Convolution2DTranspose"),
                     (Conv3DTranspose, "Convolution3DTranspose"),
                     (SeparableConv1D, "SeparableConvolution1D"),
                     (SeparableConv2D, "SeparableConvolution2D")]:
    registry.register_builtin(_cls, _alias)

__all__ = [
    "BaseConv", "BaseConvTranspose", "BaseDepthwiseConv", "BaseSeparableConv", "Conv1D",
    "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "Convolution1D", "Convolution1DTranspose", "Convolution2D", "Convolution2DTranspose",
    "Convolution3D", "Convolution3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D",
]
