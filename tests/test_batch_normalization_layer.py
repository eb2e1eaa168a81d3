"""BatchNormalization: Keras' weights and configs, training vs inference,
moving statistics against the formula, frozen layers, gradients (finite
differences, PyTorch), saving, and the inference folding into the layer
before it."""

from __future__ import annotations

import numpy as np
import pytest
from layer_helpers import check_input_gradient

import fastconv
from fastconv import layers, models
from fastconv.graph import passes
from fastconv.graph.executor import Plan
from fastconv.testing import check_gradients

KERAS_CONFIG_KEYS = {
    "name", "trainable", "dtype", "axis", "momentum", "epsilon", "center", "scale",
    "beta_initializer", "gamma_initializer", "moving_mean_initializer",
    "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
    "beta_constraint", "gamma_constraint", "synchronized", "renorm", "renorm_clipping",
    "renorm_momentum",
}


def test_weights_params_and_config():
    model = models.Sequential([layers.Input((5, 5, 3)), layers.Conv2D(4, 3),
                               layers.BatchNormalization()])
    bn = model.layers[1]
    assert bn.name == "batch_normalization"
    assert [w.name.split("/")[-1] for w in bn.weights] == [
        "gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name.split("/")[-1] for w in bn.trainable_weights] == ["gamma", "beta"]
    assert bn.count_params() == 16  # 4 per channel, as Keras counts them
    assert model.count_params() == 3 * 3 * 3 * 4 + 4 + 16
    for w, expected in zip(bn.get_weights(), (1, 0, 0, 1)):
        np.testing.assert_array_equal(w, np.full(4, expected, np.float32))
    config = bn.get_config()
    assert KERAS_CONFIG_KEYS <= set(config)
    assert config["momentum"] == 0.99 and config["epsilon"] == 1e-3 and config["axis"] == -1
    clone = layers.BatchNormalization.from_config(config)
    assert clone.get_config() == config
    plain = layers.BatchNormalization(center=False, scale=False)
    plain.ensure_built((None, 7))
    assert [w.name.split("/")[-1] for w in plain.weights] == ["moving_mean", "moving_variance"]
    assert plain.compute_output_shape((None, 7)) == (None, 7)


def test_training_pass_by_hand_and_moving_statistics():
    bn = layers.BatchNormalization(momentum=0.9, epsilon=0.5, dtype="float64")
    x = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 13.0], [6.0, 15.0]])
    bn.ensure_built(x.shape)
    bn.gamma.assign([2.0, 1.0])
    bn.beta.assign([1.0, -1.0])
    y = bn(x, training=True)
    # Channel 0: mean 3, biased variance 3.5, sqrt(3.5 + 0.5) = 2.
    np.testing.assert_allclose(y[:, 0], [-1.0, 0.0, 1.0, 4.0])
    # Channel 1: mean 12, variance (4 + 4 + 1 + 9) / 4 = 4.5, sqrt(5) for the scale.
    np.testing.assert_allclose(y[:, 1], (x[:, 1] - 12) / np.sqrt(5.0) - 1)
    np.testing.assert_allclose(bn.moving_mean.value, [0.1 * 3, 0.1 * 12])
    np.testing.assert_allclose(bn.moving_variance.value, [0.9 + 0.1 * 3.5, 0.9 + 0.1 * 4.5])
    # Inference: the moving statistics.
    mm, mv = bn.moving_mean.value.copy(), bn.moving_variance.value.copy()
    y = bn(x, training=False)
    np.testing.assert_allclose(y, [2.0, 1.0] * (x - mm) / np.sqrt(mv + 0.5) + [1.0, -1.0])
    np.testing.assert_array_equal(bn.moving_mean.value, mm)


def test_moving_statistics_after_n_steps_follow_the_formula():
    rng = np.random.default_rng(0)
    bn = layers.BatchNormalization(axis=1)
    batches = [(rng.standard_normal((8, 3, 4, 4)) * (i + 1) + i).astype(np.float32)
               for i in range(5)]
    mean, var = np.zeros(3), np.ones(3)
    for x in batches:
        bn(x, training=True)
        x64 = x.astype(np.float64)
        mean = mean * 0.99 + x64.mean(axis=(0, 2, 3)) * (1 - 0.99)
        var = var * 0.99 + x64.var(axis=(0, 2, 3)) * (1 - 0.99)
    np.testing.assert_allclose(bn.moving_mean.value, mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.value, var, rtol=1e-5)


def test_fit_updates_statistics_and_a_frozen_layer_runs_in_inference_mode():
    fastconv.utils.set_random_seed(1)
    model = models.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(3, 3, use_bias=False),
                               layers.BatchNormalization(), layers.Activation("relu"),
                               layers.Flatten(), layers.Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6, 6, 2)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    bn = model.layers[1]
    assert np.abs(bn.moving_mean.value).sum() > 0
    bn.trainable = False
    stats = [w.copy() for w in bn.get_weights()]
    conv_kernel = model.layers[0].kernel.value.copy()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for before, after in zip(stats, bn.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert np.abs(model.layers[0].kernel.value - conv_kernel).max() > 0  # gradients flow
    # In training mode a frozen layer normalizes with the moving statistics.
    z = model.layers[0](x)
    np.testing.assert_array_equal(bn(z, training=True), bn(z, training=False))


@pytest.mark.parametrize("axis,shape", [(-1, (5, 3, 3, 2)), (1, (4, 3, 2, 2)), (-1, (6, 3))])
def test_input_gradient_by_finite_differences(axis, shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 2 + 1
    for training in (True, False):
        bn = layers.BatchNormalization(axis=axis, dtype="float64", momentum=0.5)
        bn.ensure_built(shape)
        bn.gamma.assign(rng.standard_normal(shape[axis]))
        bn.beta.assign(rng.standard_normal(shape[axis]))
        bn.moving_mean.assign(rng.standard_normal(shape[axis]))
        bn.moving_variance.assign(rng.random(shape[axis]) + 0.5)
        check_input_gradient(bn, x, training=training, rtol=1e-5, atol=1e-8)


def test_weight_gradients_by_finite_differences():
    fastconv.utils.set_random_seed(4)
    model = models.Sequential([layers.Input((4, 4, 2)),
                               # (a bias before the normalization has no gradient)
                               layers.Conv2D(3, 2, use_bias=False, dtype="float64"),
                               layers.BatchNormalization(dtype="float64"),
                               layers.Flatten(dtype="float64"),
                               layers.Dense(2, dtype="float64")])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4, 4, 2)), rng.standard_normal((6, 2))
    errors = check_gradients(model, x, y)
    assert errors and max(errors.values()) < 1e-5


def test_matches_torch_batchnorm2d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    bn = layers.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5)
    bn.ensure_built(x.shape)
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(
        np.float32)
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    tbn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(gamma))
        tbn.bias.copy_(torch.tensor(beta))
    xt = torch.tensor(x, requires_grad=True)
    yt = tbn.train()(xt)
    yt.backward(torch.tensor(dy))
    y, ctx = bn.forward(x, training=True)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    bn.gamma.zero_grad()
    bn.beta.zero_grad()
    dx = bn.backward(ctx, dy)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.gamma.grad, tbn.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.beta.grad, tbn.bias.grad.numpy(), rtol=1e-4, atol=1e-5)
    # PyTorch's running mean moves as Keras' moving mean with momentum 1 - 0.1.
    np.testing.assert_allclose(bn.moving_mean.value, tbn.running_mean.numpy(), rtol=1e-5,
                               atol=1e-7)


def test_bitwise_identical_for_1_2_3_threads(restore_settings):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 12, 12, 16)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        fastconv.set_num_threads(threads)
        bn = layers.BatchNormalization()
        bn.ensure_built(x.shape)
        y, ctx = bn.forward(x, training=True)
        dx = bn.backward(ctx, y)
        results.append([y, dx, bn.gamma.grad, bn.moving_variance.value])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


def test_save_load_and_clone(tmp_path):
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((6, 6, 2)), layers.Conv2D(4, 3),
                               layers.BatchNormalization(momentum=0.5, epsilon=0.01),
                               layers.GlobalAveragePooling2D(), layers.Dense(2)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6, 6, 2)).astype(np.float32)
    model.fit(x, rng.standard_normal((8, 2)).astype(np.float32), epochs=2, verbose=0)
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    np.testing.assert_array_equal(loaded.layers[1].moving_mean.value,
                                  model.layers[1].moving_mean.value)
    assert loaded.layers[1].momentum == 0.5
    clone = models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), before)


def test_bad_arguments():
    with pytest.raises(ValueError, match="synchronized=True"):
        layers.BatchNormalization(synchronized=True)
    with pytest.raises(ValueError, match="renorm"):
        layers.BatchNormalization(renorm=True)
    with pytest.raises(ValueError, match="argument `momentum`"):
        layers.BatchNormalization(momentum="0.9")
    with pytest.raises(ValueError, match="argument `epsilon`"):
        layers.BatchNormalization(epsilon=-1.0)
    with pytest.raises(TypeError, match="argument `axis`"):
        layers.BatchNormalization(axis=1.5)
    with pytest.raises(TypeError, match="argument `center`"):
        layers.BatchNormalization(center="yes")
    with pytest.raises(ValueError, match="out of bounds"):
        layers.BatchNormalization(axis=3).ensure_built((None, 4))
    with pytest.raises(ValueError, match="batch axis"):
        layers.BatchNormalization(axis=0).ensure_built((None, 4))
    bn = layers.BatchNormalization()
    bn.ensure_built((None, 4, 3))
    with pytest.raises(ValueError, match="incompatible"):
        bn(np.ones((2, 4, 5), np.float32))
    bn(np.ones((2, 7, 3), np.float32))  # other sizes along the other axes are fine


# ----------------------------------------------------------------------------
# folding into the layer before


def _folding_model(first, input_shape, axis=-1):
    fastconv.utils.set_random_seed(5)
    model = models.Sequential([layers.Input(input_shape), first,
                               layers.BatchNormalization(axis=axis), layers.Activation("relu"),
                               layers.Flatten(), layers.Dense(3)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, *input_shape)).astype(np.float32)
    model.fit(x, rng.standard_normal((10, 3)).astype(np.float32), epochs=2, batch_size=5,
              verbose=0)
    return model, x


FOLDABLE = [
    (lambda: layers.Conv2D(4, 3, use_bias=False), (7, 7, 2), -1),
    (lambda: layers.Conv2D(4, 3, strides=2, padding="same", groups=2), (7, 7, 2), -1),
    (lambda: layers.Conv2D(4, 3, data_format="channels_first"), (2, 7, 7), 1),
    (lambda: layers.Conv1D(4, 3, padding="causal"), (9, 2), -1),
    (lambda: layers.Conv3D(3, 2), (4, 4, 4, 2), -1),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2), (7, 7, 2), -1),
    (lambda: layers.SeparableConv2D(4, 3), (7, 7, 2), -1),
    (lambda: layers.Dense(5), (6,), -1),
]


@pytest.mark.parametrize("make,input_shape,axis", FOLDABLE)
def test_inference_folds_the_normalization_into_the_layer_before(make, input_shape, axis):
    model, x = _folding_model(make(), input_shape, axis)
    plan = model._graph_plan()
    assert isinstance(plan.steps[0].operation, passes.FoldedBatchNorm)
    unfused = Plan(plan.function, fuse=False)
    want = unfused.forward([x], False)[0][0]
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # Training passes run the two layers as they are: the same bits.
    train_fused = plan.forward([x], True, record=True)[0][0]
    train_unfused = unfused.forward([x], True, record=True)[0][0]
    np.testing.assert_array_equal(train_fused, train_unfused)


def test_no_folding_after_an_activation_or_a_second_reader():
    fastconv.utils.set_random_seed(0)
    model = models.Sequential([layers.Input((5, 5, 2)), layers.Conv2D(3, 3, activation="relu"),
                               layers.BatchNormalization()])
    assert not any(isinstance(s.operation, passes.FoldedBatchNorm)
                   for s in model._graph_plan().steps)
    inputs = layers.Input((5, 5, 2))
    z = layers.Conv2D(3, 3)(inputs)
    out = layers.Add()([layers.BatchNormalization()(z), z])
    model = models.Model(inputs, out)
    assert not any(isinstance(s.operation, passes.FoldedBatchNorm)
                   for s in model._graph_plan().steps)


def test_folded_step_gradients_equal_the_unfused_ones():
    model, x = _folding_model(layers.Conv2D(4, 3), (7, 7, 2))
    y = np.zeros((10, 3), np.float32)

    def gradients():
        outputs, state = model.compute_forward(x, training=True)
        model.compute_gradients(state, y, outputs)
        return [w.grad.copy() for w in model.trainable_weights]

    fused = gradients()
    original = passes.batch_norm_foldable
    passes.batch_norm_foldable = lambda layer, bn: False
    try:
        model._invalidate_plan()
        unfused = gradients()
    finally:
        passes.batch_norm_foldable = original
        model._invalidate_plan()
    for a, b in zip(fused, unfused):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------
# Keras' ops.moments and ops.batch_normalization inside a custom layer


class _OpsBatchNorm(layers.Layer):
    """Training-mode batch normalization written with Keras ops."""

    def build(self, input_shape):
        self.gamma = self.add_weight((input_shape[-1],), "ones", name="gamma")
        self.beta = self.add_weight((input_shape[-1],), "zeros", name="beta")

    def call(self, x):
        mean, variance = fastconv.ops.moments(x, axes=[0, 1, 2])
        return fastconv.ops.batch_normalization(x, mean, variance, axis=-1, offset=self.beta,
                                                scale=self.gamma, epsilon=1e-3)


def test_keras_ops_moments_and_batch_normalization_match_the_layer():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 3, 5)) * 2 + 1
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    mean, variance = fastconv.ops.moments(x, axes=[0, 1, 2])
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2)))
    assert fastconv.ops.moments(x, axes=[0, 1, 2], keepdims=True)[1].shape == (1, 1, 1, 5)
    y = fastconv.ops.batch_normalization(x, mean, variance, axis=-1, offset=beta, scale=gamma)
    np.testing.assert_allclose(y, gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta)
    with pytest.raises(ValueError, match="synchronized"):
        fastconv.ops.moments(x, axes=[0], synchronized=True)
    # Differentiated through the graph, the ops give the layer's gradients
    # (which test_input_gradient_by_finite_differences checks).
    custom = _OpsBatchNorm(dtype="float64")
    bn = layers.BatchNormalization(dtype="float64")
    bn.ensure_built(x.shape)
    r = rng.standard_normal(x.shape)
    _, ctx = bn.forward(x, training=True)
    want = bn.backward(ctx, r)
    custom.ensure_built(x.shape)
    _, ctx = custom.forward(x, training=True)
    np.testing.assert_allclose(custom.backward(ctx, r), want, rtol=1e-8, atol=1e-10)


def test_profile_leaves_the_moving_statistics_alone():
    model, x = _folding_model(layers.Conv2D(4, 3), (7, 7, 2))
    before = [w.copy() for w in model.get_weights()]
    model.profile(x, np.zeros((10, 3), np.float32))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
