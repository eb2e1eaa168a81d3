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

# A config may name a class by its Keras alias.
for _cls, _alias in [(Conv1D, "Convolution1D"), (Conv2D, "Convolution2D"),
                     (Conv3D, "Convolution3D")]:
    registry.register_builtin(_cls, _alias)

__all__ = ["BaseConv", "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D",
           "Convolution3D"]
