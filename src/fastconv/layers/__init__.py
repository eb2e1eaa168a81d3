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

Convolution2D = Conv2D

__all__ = [
    "Add", "Average", "Concatenate", "Dot", "Lambda", "Maximum", "Minimum", "Multiply",
    "Subtract", "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply",
    "subtract",
    "Activation", "AveragePooling2D", "AvgPool2D", "Conv2D", "Convolution2D", "Dense",
    "Dropout", "Flatten", "Input", "InputLayer", "KerasTensor", "Layer", "MaxPool2D",
    "MaxPooling2D", "ReLU", "Reshape", "Softmax", "Variable", "kernels", "use_backend",
]
