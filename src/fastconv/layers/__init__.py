"""Keras-style layers: each owns its weights and calls ``fastconv.ops``."""

from fastconv.layers.backend import kernels, use_backend
from fastconv.graph.node import KerasTensor
from fastconv.layers.base import Layer, Variable
from fastconv.layers.conv import Conv2D
from fastconv.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    Lambda,
    ReLU,
    Reshape,
    Softmax,
)
from fastconv.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from fastconv.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from fastconv.layers.global_pooling import (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
)
from fastconv.layers.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)

Convolution2D = Conv2D

__all__ = [
    "Add", "Average", "Concatenate", "Dot", "Lambda", "Maximum", "Minimum", "Multiply",
    "Subtract", "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply",
    "subtract",
    "Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense",
    "Dropout", "Flatten", "Input", "InputLayer", "KerasTensor", "Layer", "MaxPool2D",
    "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable", "kernels", "use_backend",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
    "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
]
