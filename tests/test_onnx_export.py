"""ONNX export: each layer family's model exported, checked by
``onnx.checker`` and run in ONNX Runtime against ``model.predict``.

ONNX Runtime is an independent implementation of every op, so agreement
within float32 rounding checks the mapping: layouts, paddings, kernel
orders and flatten order included. Tolerance: 1e-5 relative, and 1e-5
absolute times the output's largest magnitude (sums of many float32
products in another order differ by that much).
Each export is run at batch sizes 1 and 3 (the batch dimension is dynamic).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastconv
from fastconv import layers as L
from fastconv import ops
from fastconv.export import export_onnx

RTOL = ATOL = 1e-5


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * scale)


def _session(path: str):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _randomize(model: fastconv.Model, seed: int = 0) -> None:
    """Weights away from their initial zeros and ones (biases, BN statistics),
    variances positive."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        value = rng.uniform(-0.5, 0.5, size=w.shape)
        if "variance" in w.name:
            value = rng.uniform(0.5, 1.5, size=w.shape)
        weights.append(value.astype(w.value.dtype))
    model.set_weights(weights)


def check_export(model: fastconv.Model, tmp_path, seed: int = 0, opset: int | None = None,
                 batches=(1, 3)) -> onnx.ModelProto:
    """Export, check, run at each batch size against predict; returns the proto."""
    _randomize(model, seed)
    path = os.path.join(tmp_path, "model.onnx")
    export_onnx(model, path, verbose=False, **({} if opset is None else {"opset": opset}))
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    session = _session(path)
    rng = np.random.default_rng(seed + 1)
    for n in batches:
        shapes = [(n, *i.shape[1:]) for i in session.get_inputs()]
        xs = [rng.standard_normal(shape).astype("float32") for shape in shapes]
        feed = {i.name: x for i, x in zip(session.get_inputs(), xs)}
        got = session.run(None, feed)
        expected = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape
            assert_close(g, e)
    return proto


def seq(input_shape, *stack):
    return fastconv.Sequential([L.Input(input_shape), *stack])


# ----------------------------------------------------------------------------
# convolutions


@pytest.mark.parametrize("kwargs", [
    {"padding": "valid"},
    {"padding": "same"},
    {"padding": "same", "strides": 2},
    {"padding": "valid", "strides": (2, 1)},
    {"padding": "same", "dilation_rate": 2},
    {"padding": "valid", "groups": 2},
    {"padding": "same", "use_bias": False, "activation": "tanh"},
])
def test_conv2d(tmp_path, kwargs):
    check_export(seq((7, 8, 4), L.Conv2D(6, 3, **kwargs)), tmp_path)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d(tmp_path, padding):
    check_export(seq((9, 3), L.Conv1D(4, 3, padding=padding, dilation_rate=2)), tmp_path)


def test_conv3d(tmp_path):
    check_export(seq((5, 6, 4, 2), L.Conv3D(3, (2, 3, 2), padding="same", strides=2)),
                 tmp_path)


def test_conv2d_channels_first(tmp_path):
    check_export(seq((3, 7, 6), L.Conv2D(4, 3, padding="same", data_format="channels_first"),
                     L.MaxPooling2D(data_format="channels_first"), L.Flatten(),
                     L.Dense(2)), tmp_path)


@pytest.mark.parametrize("kwargs", [
    {"padding": "valid"},
    {"padding": "same"},
    {"padding": "same", "strides": 2},
    {"padding": "valid", "strides": 3},
    {"padding": "valid", "strides": 2, "output_padding": 1},
])
def test_conv2d_transpose(tmp_path, kwargs):
    check_export(seq((5, 4, 3), L.Conv2DTranspose(4, 3, **kwargs)), tmp_path)


def test_conv1d_and_3d_transpose(tmp_path):
    check_export(seq((6, 2), L.Conv1DTranspose(3, 3, strides=2, padding="same")), tmp_path)
    check_export(seq((3, 4, 3, 2), L.Conv3DTranspose(2, 2, strides=2)), tmp_path)


def test_depthwise_and_separable(tmp_path):
    check_export(seq((7, 6, 3), L.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                                  activation="relu")), tmp_path)
    check_export(seq((8, 3), L.DepthwiseConv1D(3, depth_multiplier=2)), tmp_path)
    check_export(seq((7, 6, 3), L.SeparableConv2D(5, 3, depth_multiplier=2, strides=2,
                                                  padding="same")), tmp_path)
    check_export(seq((8, 3), L.SeparableConv1D(4, 3)), tmp_path)


# ----------------------------------------------------------------------------
# pooling


@pytest.mark.parametrize("layer", [
    L.MaxPooling2D(), L.MaxPooling2D(3, strides=2, padding="same"),
    L.AveragePooling2D(), L.AveragePooling2D(3, strides=2, padding="same"),
    L.AveragePooling2D((2, 3), padding="same"),
    L.GlobalAveragePooling2D(), L.GlobalMaxPooling2D(), L.GlobalAveragePooling2D(keepdims=True),
], ids=lambda layer: type(layer).__name__)
def test_pooling_2d(tmp_path, layer):
    check_export(seq((7, 6, 3), layer), tmp_path)


def test_pooling_1d_3d(tmp_path):
    check_export(seq((9, 2), L.MaxPooling1D(3, padding="same"), L.AveragePooling1D(2),
                     L.GlobalMaxPooling1D()), tmp_path)
    check_export(seq((4, 5, 4, 2), L.AveragePooling3D(2, padding="same"),
                     L.GlobalAveragePooling3D()), tmp_path)


def test_same_average_pooling_excludes_padding_by_hand(tmp_path):
    """A hand-computed case: a 3x3 "same" average at the corner of a 2x2 image
    of ones plus a 4 is the mean of the 4 real values, not of 9."""
    model = seq((2, 2, 1), L.AveragePooling2D(3, strides=1, padding="same"))
    path = os.path.join(tmp_path, "avg.onnx")
    export_onnx(model, path, verbose=False)
    x = np.array([[1.0, 1.0], [1.0, 5.0]], dtype="float32").reshape(1, 2, 2, 1)
    session = _session(path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got.reshape(2, 2), np.full((2, 2), 2.0))


# ----------------------------------------------------------------------------
# dense, normalization, activations


def test_dense_on_sequences(tmp_path):
    check_export(seq((4, 3), L.Dense(5, activation="sigmoid"), L.Dense(2)), tmp_path)


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False}])
def test_batch_normalization(tmp_path, kwargs):
    check_export(seq((5, 4, 3), L.Conv2D(4, 3), L.BatchNormalization(**kwargs), L.Flatten(),
                     L.BatchNormalization(epsilon=0.01)), tmp_path)


def test_batch_normalization_other_axis(tmp_path):
    check_export(seq((5, 4, 3), L.BatchNormalization(axis=1)), tmp_path)


def test_layer_normalization(tmp_path):
    check_export(seq((5, 4, 3), L.LayerNormalization()), tmp_path)
    check_export(seq((5, 4, 3), L.LayerNormalization(axis=[1, 2, 3])), tmp_path)
    check_export(seq((5, 4, 3), L.Conv2D(2, 3), L.LayerNormalization(center=False)),
                 tmp_path)


ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "gelu", "silu", "swish", "leaky_relu",
               "elu", "selu", "softplus", "softsign", "relu6", "exponential",
               "hard_sigmoid", "hard_silu", "mish", "log_softmax", "celu", "log_sigmoid",
               "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink", "linear"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations(tmp_path, name):
    check_export(seq((4, 5, 3), L.Conv2D(3, 2, activation=name), L.Activation(name)),
                 tmp_path)


def test_activation_layers(tmp_path):
    check_export(seq((6, 5), L.ReLU(max_value=0.3, negative_slope=0.1), L.LeakyReLU(0.2),
                     L.ELU(0.7), L.ReLU(threshold=0.1), L.Softmax(axis=1), L.PReLU()),
                 tmp_path)


def test_approximate_gelu(tmp_path):
    import functools

    from fastconv import activations
    check_export(seq((6,), L.Dense(4, activation=functools.partial(activations.gelu,
                                                                     approximate=True))),
                 tmp_path)


def test_softmax_after_conv_runs_over_channels(tmp_path):
    """The graph is NCHW inside: the softmax must still run over fastconv's last axis."""
    check_export(seq((4, 4, 3), L.Conv2D(5, 3, padding="same", activation="softmax")),
                 tmp_path)


# ----------------------------------------------------------------------------
# shapes, merges and identity layers


def test_flatten_keeps_nhwc_order(tmp_path):
    """Dense after Flatten reads the features in (H, W, C) order: a graph kept
    NCHW would give other numbers."""
    check_export(seq((3, 4, 2), L.Conv2D(5, 2), L.Flatten(), L.Dense(3)), tmp_path)


def test_reshape_permute(tmp_path):
    check_export(seq((4, 6), L.Reshape((2, 3, 4)), L.Conv2D(2, 1), L.Permute((3, 1, 2)),
                     L.Reshape((-1,)), L.Dense(2)), tmp_path)


def test_padding_cropping_upsampling(tmp_path):
    check_export(seq((5, 4, 2), L.ZeroPadding2D(((1, 2), (0, 1))), L.Conv2D(3, 2),
                     L.Cropping2D(((1, 0), (1, 1))), L.UpSampling2D((2, 3)),
                     L.ZeroPadding2D(1), L.Cropping2D(1)), tmp_path)
    check_export(seq((4, 5, 2), L.UpSampling2D((2, 3), interpolation="bilinear")), tmp_path)
    check_export(seq((6, 2), L.ZeroPadding1D(2), L.Cropping1D((1, 2)), L.UpSampling1D(2)),
                 tmp_path)
    check_export(seq((3, 2, 2, 1), L.ZeroPadding3D(1), L.UpSampling3D(2),
                     L.Cropping3D(((0, 1), (1, 0), (2, 1)))), tmp_path)


def test_training_only_layers_are_identity(tmp_path):
    proto = check_export(seq((6, 5, 3), L.Dropout(0.5), L.SpatialDropout2D(0.3),
                             L.GaussianNoise(1.0), L.GaussianDropout(0.2),
                             L.AlphaDropout(0.1), L.ActivityRegularization(0.1),
                             L.Rescaling(0.5, offset=-1.0), L.Flatten()), tmp_path)
    assert not {n.op_type for n in proto.graph.node} & {"Dropout", "RandomNormal"}


def test_branching_functional_model(tmp_path):
    inputs = L.Input((8, 8, 3), name="image")
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(4, 1)(inputs)
    c = L.Conv2D(4, 3, padding="same")(a)
    merged = L.Add()([c, b])
    cat = L.Concatenate()([merged, a, L.Subtract()([a, b])])
    pooled = L.GlobalAveragePooling2D()(L.BatchNormalization()(cat))
    other = L.Maximum()([L.Flatten()(L.MaxPooling2D(4)(b)), L.Flatten()(L.AveragePooling2D(4)(a))])
    mix = L.Multiply()([other, L.Average()([other, L.Minimum()([other, other])])])
    out1 = L.Dense(3, activation="softmax", name="classes")(pooled)
    out2 = L.Dense(2, name="box")(L.Concatenate(axis=-1)([pooled, mix]))
    model = fastconv.Model(inputs, [out1, out2])
    proto = check_export(model, tmp_path)
    assert [o.name for o in proto.graph.output] == ["classes", "box"]
    assert [i.name for i in proto.graph.input] == ["image"]


def test_two_inputs(tmp_path):
    x1, x2 = L.Input((6, 4), name="left"), L.Input((6, 4), name="right")
    y = L.Conv1D(3, 3)(L.Concatenate(axis=1)([x1, x2]))
    check_export(fastconv.Model([x1, x2], L.Flatten()(y)), tmp_path)


def test_nested_models(tmp_path):
    block = seq((6, 6, 2), L.Conv2D(3, 3, padding="same", activation="relu"),
                L.BatchNormalization())
    inner_in = L.Input((6, 6, 3))
    inner = fastconv.Model(inner_in, L.Add()([inner_in, L.Conv2D(3, 1)(inner_in)]))
    outer_in = L.Input((6, 6, 2))
    y = inner(block(outer_in))
    model = fastconv.Model(outer_in, L.Dense(2)(L.Flatten()(y)))
    check_export(model, tmp_path)
    check_export(seq((6, 6, 2), block, L.GlobalMaxPooling2D()), tmp_path)


# ----------------------------------------------------------------------------
# the seed CNN, the file and its metadata


def seed_cnn() -> fastconv.Sequential:
    return seq((28, 28, 1), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
               L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(),
               L.Conv2D(64, 3, activation="relu"), L.Flatten(),
               L.Dense(64, activation="relu"), L.Dense(10))


def test_seed_cnn_via_model_export(tmp_path, capsys):
    model = seed_cnn()
    _randomize(model)
    path = os.path.join(tmp_path, "cnn.onnx")
    model.export(path, format="onnx")
    assert f"Saved artifact at '{path}'." in capsys.readouterr().out
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 18
    graph_input = proto.graph.input[0].type.tensor_type.shape.dim
    assert graph_input[0].dim_param == "batch"
    assert [d.dim_value for d in graph_input[1:]] == [28, 28, 1]
    # NCHW inside: one Transpose after the input, one before the Flatten.
    assert [n.op_type for n in proto.graph.node].count("Transpose") == 2
    session = _session(path)
    x = np.random.default_rng(3).random((3, 28, 28, 1), dtype=np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert_close(got, model.predict(x, verbose=0))
    assert_close(session.run(None, {session.get_inputs()[0].name: x[:1]})[0], got[:1])


@pytest.mark.parametrize("opset", [17, 18])
def test_opset_is_stated(tmp_path, opset):
    proto = check_export(seed_cnn(), tmp_path, opset=opset, batches=(2,))
    assert proto.opset_import[0].version == opset
    path = os.path.join(tmp_path, "v.onnx")
    seed_cnn().export(path, format="onnx", verbose=False, opset_version=opset)
    assert onnx.load(path).opset_import[0].version == opset


def test_bad_opset_and_arguments(tmp_path):
    model = seed_cnn()
    path = os.path.join(tmp_path, "m.onnx")
    with pytest.raises(ValueError, match="opset_version"):
        export_onnx(model, path, opset=12)
    with pytest.raises(ValueError, match="opset_version"):
        export_onnx(model, path, opset="18")
    with pytest.raises(ValueError, match="input_signature"):
        model.export(path, format="onnx", input_signature=[(None, 28, 28, 1)])
    with pytest.raises(ValueError, match="format='onnx' only"):
        model.export(path)
    with pytest.raises(ValueError, match="Unrecognized format"):
        model.export(path, format="h5")
    assert not os.path.exists(path)


def test_unsupported_layer_names_layer_and_class(tmp_path):
    model = seq((5,), L.Dense(4), L.Lambda(lambda x: ops.sum(x, axis=-1), name="doubler"))
    path = os.path.join(tmp_path, "m.onnx")
    with pytest.raises(ValueError, match=r"Layer 'doubler' of class Lambda cannot be "
                                         r"exported to ONNX: its `call` uses the Keras "
                                         r"op 'sum(_[0-9]+)?'"):
        export_onnx(model, path, verbose=False)
    assert not os.path.exists(path)
    model = seq((4, 4, 4), L.GroupNormalization(groups=2, name="groups"))
    with pytest.raises(ValueError, match="'groups' of class GroupNormalization cannot be "
                                         "exported to ONNX: it has no ONNX mapping"):
        export_onnx(model, path, verbose=False)
    a, b = L.Input((3,)), L.Input((3,))
    model = fastconv.Model([a, b], L.Dot(axes=1, name="dotty")([a, b]))
    with pytest.raises(ValueError, match="'dotty' of class Dot.*no ONNX mapping"):
        export_onnx(model, path, verbose=False)
    model = seq((4, 3), L.LayerNormalization(axis=1, name="middle"))
    with pytest.raises(ValueError, match="'middle' of class LayerNormalization.*trailing"):
        export_onnx(model, path, verbose=False)
    assert not os.path.exists(path)


class _ScaledDense(L.Dense):
    """A subclass computing something else in `forward`."""

    def forward(self, x, training=False):
        y, ctx = super().forward(x, training)
        return 2 * y, ctx


def test_subclass_of_a_layer_is_refused(tmp_path):
    model = seq((3,), _ScaledDense(2, name="scaled"))
    with pytest.raises(ValueError, match="'scaled' of class _ScaledDense cannot be exported"):
        export_onnx(model, os.path.join(tmp_path, "m.onnx"), verbose=False)


def test_float64_model_is_refused(tmp_path):
    model = fastconv.Sequential([L.Input((3,), dtype="float64"), L.Dense(2, dtype="float64")])
    with pytest.raises(ValueError, match="Only float32 models"):
        export_onnx(model, os.path.join(tmp_path, "m.onnx"), verbose=False)


def test_unbuilt_model(tmp_path):
    with pytest.raises(ValueError, match="not been built"):
        export_onnx(fastconv.Sequential([L.Dense(2)]), os.path.join(tmp_path, "m.onnx"))


def test_atomic_write_keeps_previous_file_on_failure(tmp_path, monkeypatch):
    """A write that fails halfway (here: the disk sync) leaves the previous
    file intact and no temporary behind."""
    path = os.path.join(tmp_path, "m.onnx")
    export_onnx(seed_cnn(), path, verbose=False)
    with open(path, "rb") as f:
        before = f.read()

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(seq((4,), L.Dense(2)), path, verbose=False)
    with open(path, "rb") as f:
        assert f.read() == before
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_atomic_write_through_temporary_file(tmp_path, monkeypatch):
    """The bytes go to a temporary file that is renamed over the target."""
    from fastconv import saving
    calls = []
    real = saving._atomic_write

    def spy(filepath, overwrite, write):
        calls.append(filepath)
        return real(filepath, overwrite, write)

    monkeypatch.setattr(saving, "_atomic_write", spy)
    path = os.path.join(tmp_path, "m.onnx")
    export_onnx(seed_cnn(), path, verbose=False)
    assert calls == [path]
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_missing_onnx_says_what_to_install(monkeypatch, tmp_path):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match="pip install onnx onnxruntime"):
        export_onnx(seed_cnn(), os.path.join(tmp_path, "m.onnx"))


# ----------------------------------------------------------------------------
# subclassed models, custom layers, unknown spatial sizes


class _Block(L.Layer):
    """A custom layer whose `call` wires other layers (traced for export)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = L.Conv2D(3, 3, padding="same")
        self.norm = L.BatchNormalization()

    def call(self, x, training=None):
        return self.norm(self.conv(x), training=training)


class _Subclassed(fastconv.Model):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.pool = L.GlobalAveragePooling2D()
        self.head = L.Dense(2)

    def call(self, x, training=None):
        return self.head(self.pool(self.block(x)))


def test_subclassed_model_and_custom_layer(tmp_path):
    model = _Subclassed()
    model.build((None, 6, 6, 2))
    proto = check_export(model, tmp_path)
    assert [i.name for i in proto.graph.input] == ["input_0"]
    inputs = L.Input((6, 6, 2))
    check_export(fastconv.Model(inputs, L.Flatten()(_Block()(inputs))), tmp_path)


def test_unknown_spatial_sizes(tmp_path):
    model = seq((None, None, 3), L.Conv2D(4, 3, padding="same", strides=2),
                L.MaxPooling2D(3, strides=2, padding="same"),
                L.AveragePooling2D(padding="same"), L.GlobalAveragePooling2D())
    _randomize(model)
    path = os.path.join(tmp_path, "m.onnx")
    export_onnx(model, path, verbose=False)
    session = _session(path)
    rng = np.random.default_rng(0)
    for shape in [(2, 7, 9, 3), (1, 8, 5, 3)]:
        x = rng.standard_normal(shape).astype("float32")
        assert_close(session.run(None, {session.get_inputs()[0].name: x})[0],
                     model.predict(x, verbose=0))
    dilated = seq((None, None, 3), L.Conv2D(4, 3, padding="same", dilation_rate=2,
                                            name="wide"))
    with pytest.raises(ValueError, match="'wide' of class Conv2D.*known spatial sizes"):
        export_onnx(dilated, path, verbose=False)


def test_elementwise_keras_ops(tmp_path):
    """Operators and elementwise Keras ops on symbolic tensors, scalars, arrays
    and a model's NCHW inner values."""
    inputs = L.Input((5, 5, 3))
    y = L.Conv2D(4, 3)(inputs)
    z = ops.exp(-ops.abs(y)) * 2.0 + y / 3.0 - ops.square(y) + ops.sqrt(ops.abs(y) + 1.0)
    w = L.Conv2D(4, 1)(z)
    out = ops.maximum(w, z) + np.arange(4, dtype="float32") - ops.minimum(ops.tanh(w), 0.5)
    check_export(fastconv.Model(inputs, L.Flatten()(2.0 - out)), tmp_path)
    lam = L.Lambda(lambda x: ops.power(ops.negative(x), 2.0), name="lam")
    check_export(seq((4,), L.Dense(3), lam), tmp_path)


def test_other_keras_ops_are_refused(tmp_path):
    inputs = L.Input((4,))
    model = fastconv.Model(inputs, ops.mean(L.Dense(2)(inputs), axis=-1))
    with pytest.raises(ValueError, match="'mean(_[0-9]+)?', which cannot be exported to ONNX"):
        export_onnx(model, os.path.join(tmp_path, "m.onnx"), verbose=False)
