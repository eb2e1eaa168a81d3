"""Keras' preprocessing layers for images: rescaling and normalization,
resizing and cropping, and the random augmentations (active only in
training)."""

from fastconv.layers.preprocessing.normalization import Normalization
from fastconv.layers.preprocessing.random_color import RandomBrightness, RandomContrast
from fastconv.layers.preprocessing.random_transforms import (
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from fastconv.layers.preprocessing.rescaling import Rescaling
from fastconv.layers.preprocessing.resizing import CenterCrop, Resizing

__all__ = [
    "CenterCrop", "Normalization", "RandomBrightness", "RandomContrast", "RandomCrop",
    "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "Rescaling", "Resizing",
]
