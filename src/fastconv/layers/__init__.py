"""Keras-style layers: each owns its weights and calls ``fastconv.ops``."""

from fastconv.layers.backend import kernels, use_backend
from fastconv.layers.base import KerasTensor, Layer, Variable
from fastconv.layers.conv import Conv2D
from fastconv.layers.core import (
    Activation,
    Dense,
    Dropout,
    Flatten,
    Input,
    InputLayer,
    ReLU,
    Reshape,
    Softmax,
)
from fastconv.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

Convolution2D = Conv2D

__all__ = [
    "Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense",
    "Dropout", "Flatten", "Input", "InputLayer", "KerasTensor", "Layer", "MaxPool2D",
    "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable", "kernels", "use_backend",
]
