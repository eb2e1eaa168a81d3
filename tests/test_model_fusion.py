"""A model runs each Conv2D(relu) + MaxPooling2D pair as one fused kernel call
each way: the same outputs and gradients as layer by layer, and never for
layers whose passes are overridden."""

from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import layers, models
from fastconv.graph import passes


def plan_groups(model):
    """The model's steps as tuples of layer indices (a fused pair is two)."""
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    model._invalidate_plan()
    return [tuple(index[id(layer)] for layer in step.layers)
            for step in model._graph_plan().steps]


def test_conv_pool_fusion_gives_the_unfused_outputs_and_gradients(monkeypatch):
    # Conv2D(relu) -> MaxPooling2D: the forward pass runs both in one kernel
    # call, and the model masks the pooled gradient instead of running the
    # ReLU backward on the full-size one; the outputs and weight gradients
    # must be the very same numbers.
    fastconv.utils.set_random_seed(3)
    model = models.Sequential([
        layers.Conv2D(8, 3, activation="relu", padding="same", input_shape=(9, 9, 2)),
        layers.MaxPooling2D(2),
        layers.Conv2D(4, 2, activation="relu"),
        layers.MaxPooling2D(2, padding="same"),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 9, 9, 2)).astype(np.float32)
    y = np.arange(5) % 3
    assert plan_groups(model) == [(0, 1), (2, 3), (4,), (5,)]

    def outputs_and_gradients():
        outputs, state = model.compute_forward(x, training=True)
        model.compute_gradients(state, y, outputs)
        return [outputs[0], *(w.grad.copy() for w in model.trainable_weights)]

    fused = outputs_and_gradients()
    monkeypatch.setattr(passes, "conv_pool_fusable", lambda conv, pool: False)
    assert plan_groups(model) == [(i,) for i in range(6)]
    unfused = outputs_and_gradients()
    for a, b in zip(fused, unfused):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(a).sum() > 0 for a in fused[1:])


def test_subclasses_overriding_a_pass_are_not_fused():
    # A Conv2D or MaxPooling2D subclass with its own forward/backward must run
    # them: the fused kernel call would skip the override.
    class ScaledConv(layers.Conv2D):
        def forward(self, x, training=False):
            y, ctx = super().forward(x, training)
            return 2.0 * y, ctx

    class NamedPool(layers.MaxPooling2D):  # overrides nothing: still fused
        pass

    fastconv.utils.set_random_seed(0)
    model = models.Sequential([
        ScaledConv(4, 3, activation="relu", input_shape=(8, 8, 1)), layers.MaxPooling2D(2),
        layers.Conv2D(4, 3, activation="relu", padding="same"), NamedPool(2), layers.Flatten(),
    ])
    assert plan_groups(model) == [(0,), (1,), (2, 3), (4,)]
    # An override on one instance counts too.
    model.layers[3].backward = model.layers[3].backward
    assert plan_groups(model) == [(0,), (1,), (2,), (3,), (4,)]
    del model.layers[3].backward
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    h = x
    for layer in model.layers:
        h = layer.forward(h)[0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), h)


def test_fused_layer_methods_check_their_preconditions():
    x = np.zeros((2, 6, 6, 1), np.float32)
    for conv, pool, error in [
        (layers.Conv2D(2, 3), layers.MaxPooling2D(2), ValueError),
        (layers.Conv2D(2, 3, activation="relu"), layers.AveragePooling2D(2), TypeError),
        (layers.Conv2D(2, 3, activation="relu", data_format="channels_first"),
         layers.MaxPooling2D(2, data_format="channels_first"), ValueError),
    ]:
        conv.build((None, 6, 6, 1) if conv.data_format == "channels_last" else (None, 1, 6, 6))
        with pytest.raises(error, match="relu|MaxPooling2D"):
            conv.forward_max_pooled(x, pool)
        with pytest.raises(error, match="relu|MaxPooling2D"):
            conv.backward_max_pooled(None, np.zeros((2, 2, 2, 2), np.float32), pool)
