"""fastconv.torch against torch.nn as the oracle: forward and gradients of
each module in both memory formats, gradcheck in float64, state_dict round
trips, convert(), a few training steps of the seed CNN, bad arguments.

Tolerances: float32 values and gradients to atol 1e-4 / rtol 1e-4 (sums of
at most a few hundred products of O(1) values, accumulated in a different
order than PyTorch's); float64 to 1e-10.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import fastconv.torch as ft
from fastconv.torch import functional as FF

nn = torch.nn
TOL = {torch.float32: {"atol": 1e-4, "rtol": 1e-4},
       torch.float64: {"atol": 1e-10, "rtol": 1e-10}}


def _check_module(ours, theirs, shape, dtype=torch.float32, channels_last=False, seed=0):
    """ours (loaded with theirs' state) and theirs give the same output and
    the same input and parameter gradients for one random input and dy."""
    gen = torch.Generator().manual_seed(seed)
    ours, theirs = ours.to(dtype), theirs.to(dtype)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(shape, generator=gen, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
        assert x.is_contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), theirs(x2)
    assert y1.shape == y2.shape and y1.dtype == dtype
    torch.testing.assert_close(y1, y2, **TOL[dtype])
    dy = torch.randn(y2.shape, generator=gen, dtype=dtype)
    y1.backward(dy)
    y2.backward(dy)
    torch.testing.assert_close(x1.grad, x2.grad, **TOL[dtype])
    for (name, p1), p2 in zip(ours.named_parameters(), theirs.parameters()):
        assert p1.grad is not None, name
        torch.testing.assert_close(p1.grad, p2.grad, **TOL[dtype], msg=name)
    for (name, b1), b2 in zip(ours.named_buffers(), theirs.buffers()):
        torch.testing.assert_close(b1, b2, **TOL[dtype], msg=name)


CASES = {
    "conv2d": (lambda m: m.Conv2d(3, 6, 3), (2, 3, 8, 7)),
    "conv2d_strided": (lambda m: m.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 2)),
                       (2, 3, 9, 8)),
    "conv2d_same_dilated": (lambda m: m.Conv2d(3, 4, 4, padding="same", dilation=2),
                            (2, 3, 9, 9)),
    "conv2d_valid_nobias": (lambda m: m.Conv2d(3, 4, 3, padding="valid", bias=False),
                            (1, 3, 6, 6)),
    "conv2d_groups": (lambda m: m.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 6, 5)),
    "conv2d_depthwise": (lambda m: m.Conv2d(4, 8, 3, padding=1, groups=4), (2, 4, 6, 5)),
    "conv2d_big_padding": (lambda m: m.Conv2d(2, 3, 2, padding=3), (1, 2, 4, 4)),
    "conv1d": (lambda m: m.Conv1d(3, 5, 3, stride=2, padding=1), (2, 3, 11)),
    "conv1d_same": (lambda m: m.Conv1d(3, 5, 4, padding="same"), (2, 3, 10)),
    "conv3d": (lambda m: m.Conv3d(2, 4, 3, stride=(1, 2, 1), padding=1), (2, 2, 5, 6, 4)),
    "conv_transpose2d": (lambda m: m.ConvTranspose2d(3, 4, 3), (2, 3, 5, 4)),
    "conv_transpose2d_strided": (
        lambda m: m.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
        (2, 3, 5, 4)),
    "conv_transpose2d_groups_dilated": (
        lambda m: m.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), groups=2,
                                    dilation=2), (2, 4, 4, 5)),
    "max_pool2d": (lambda m: m.MaxPool2d(2), (2, 3, 8, 7)),
    "max_pool2d_padded": (lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 8)),
    "avg_pool2d": (lambda m: m.AvgPool2d(2), (2, 3, 8, 7)),
    "avg_pool2d_include_pad": (lambda m: m.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 8)),
    "avg_pool2d_exclude_pad": (
        lambda m: m.AvgPool2d((3, 2), stride=(2, 1), padding=1, count_include_pad=False),
        (2, 3, 7, 8)),
    "batch_norm2d": (lambda m: m.BatchNorm2d(3), (4, 3, 5, 4)),
    "batch_norm2d_no_affine": (lambda m: m.BatchNorm2d(3, affine=False), (4, 3, 5, 4)),
    "batch_norm2d_untracked": (lambda m: m.BatchNorm2d(3, track_running_stats=False),
                               (4, 3, 5, 4)),
    "batch_norm2d_cumulative": (lambda m: m.BatchNorm2d(3, momentum=None), (4, 3, 5, 4)),
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_module_matches_torch(case, dtype, channels_last):
    make, shape = CASES[case]
    if channels_last and len(shape) != 4:
        pytest.skip("channels_last is a 4-D memory format")
    torch.manual_seed(1)
    theirs = make(nn)
    _check_module(make(ft), theirs, shape, dtype, channels_last)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_class_names_and_initialization(case):
    make, _ = CASES[case]
    torch.manual_seed(3)
    theirs = make(nn)
    torch.manual_seed(3)
    ours = make(ft)
    assert type(ours).__name__ == type(theirs).__name__
    assert isinstance(ours, type(theirs))
    assert repr(ours) == repr(theirs)
    sd1, sd2 = ours.state_dict(), theirs.state_dict()
    assert list(sd1) == list(sd2)
    for k in sd1:  # the same random initialization, drawn the same way
        torch.testing.assert_close(sd1[k], sd2[k], atol=0, rtol=0)


def test_batch_norm_running_stats_and_eval():
    torch.manual_seed(0)
    ours, theirs = ft.BatchNorm2d(3, momentum=0.3), nn.BatchNorm2d(3, momentum=0.3)
    for _ in range(3):
        x = torch.randn(4, 3, 5, 5) * 2 + 1
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours.running_var, theirs.running_var, atol=1e-6, rtol=1e-6)
    assert int(ours.num_batches_tracked) == 3
    # A hand-computed update: unbiased variance, momentum 0.3 from (0, 1).
    fresh = ft.BatchNorm2d(2, momentum=0.3)
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]], [[[5.0, 7.0]], [[4.0, 0.0]]]])
    fresh(x)
    torch.testing.assert_close(fresh.running_mean, torch.tensor([0.3 * 4.0, 0.3 * 2.0]))
    var = torch.tensor([(9 + 1 + 1 + 9) / 3.0, (0 + 0 + 4 + 4) / 3.0])
    torch.testing.assert_close(fresh.running_var, 0.7 + 0.3 * var)
    ours.eval()
    theirs.eval()
    x = torch.randn(2, 3, 4, 4)
    before = ours.running_mean.clone()
    _check_module(ours, theirs, (2, 3, 4, 4))
    torch.testing.assert_close(ours.running_mean, before, atol=0, rtol=0)


_MEAN = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)
_VAR = torch.tensor([0.5, 1.5, 2.0, 0.8], dtype=torch.float64)

# name: (function of the inputs, shapes of the inputs)
GRADCHECK = {
    "conv2d": (lambda x, w, b: FF.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2)),
               [(2, 4, 5, 4), (3, 4, 3, 2), (3,)]),
    "conv2d_groups": (lambda x, w: FF.conv2d(x, w, None, padding="same", groups=2),
                      [(1, 4, 4, 4), (4, 2, 3, 3)]),
    "conv_transpose2d": (lambda x, w, b: FF.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                             output_padding=1),
                         [(1, 4, 3, 3), (4, 3, 3, 3), (3,)]),
    "max_pool2d": (lambda x: FF.max_pool2d(x, 2, stride=1, padding=1), [(2, 3, 4, 4)]),
    "avg_pool2d": (lambda x: FF.avg_pool2d(x, 3, stride=2, padding=1), [(2, 3, 5, 4)]),
    "avg_pool2d_exclude": (lambda x: FF.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                           [(2, 3, 5, 4)]),
    "batch_norm": (lambda x, g, b: FF.batch_norm(x, None, None, g, b, training=True),
                   [(3, 4, 2, 3), (4,), (4,)]),
    "batch_norm_eval": (lambda x, g, b: FF.batch_norm(x, _MEAN, _VAR, g, b),
                        [(3, 4, 2, 3), (4,), (4,)]),
}


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_gradcheck_float64(case):
    gen = torch.Generator().manual_seed(5)
    fn, shapes = GRADCHECK[case]
    args = tuple(torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=True)
                 for s in shapes)
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-6, fast_mode=True)


def test_needs_input_grad_respected():
    x = torch.randn(2, 3, 6, 6)
    conv = ft.Conv2d(3, 4, 3)
    conv.weight.requires_grad_(False)
    x.requires_grad_()
    conv(x).sum().backward()
    assert conv.weight.grad is None and conv.bias.grad is not None and x.grad is not None
    y = ft.Conv2d(3, 4, 3)(torch.randn(2, 3, 6, 6))
    y.sum().backward()
    assert y.grad_fn is not None


def test_channels_last_is_read_without_copy_and_returned():
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)
    from fastconv.torch import _bridge
    a = _bridge.to_channels_last(x)
    assert a.ctypes.data == x.data_ptr() and a.shape == (2, 6, 6, 3)
    y = ft.Conv2d(3, 4, 3)(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    z = ft.BatchNorm2d(3)(torch.randn(2, 3, 4, 4))
    assert z.is_contiguous()


def test_state_dict_round_trip():
    torch.manual_seed(0)
    for make, shape in CASES.values():
        theirs = make(nn)
        ours = make(ft)
        ours.load_state_dict(theirs.state_dict())
        back = make(nn)
        back.load_state_dict(ours.state_dict())
        for k, v in theirs.state_dict().items():
            torch.testing.assert_close(back.state_dict()[k], v, atol=0, rtol=0)


def _small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding="same", groups=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Sequential(nn.ConvTranspose2d(8, 4, 2, stride=2), nn.ReLU()),
        nn.Conv2d(4, 4, 3, padding_mode="reflect", padding=1), nn.MaxPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 5))


def test_convert_small_cnn():
    torch.manual_seed(0)
    model = _small_cnn()
    reference = _small_cnn()
    reference.load_state_dict(model.state_dict())
    converted = ft.convert(model)
    assert converted is model
    assert type(model[0]) is ft.Conv2d and type(model[1]) is ft.BatchNorm2d
    assert type(model[3]) is ft.MaxPool2d and type(model[6]) is ft.AvgPool2d
    assert type(model[7][0]) is ft.ConvTranspose2d
    # Options fastconv does not cover stay torch's.
    assert type(model[8]) is nn.Conv2d and type(model[9]) is nn.MaxPool2d
    x = torch.randn(2, 3, 8, 8)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        getattr(reference, mode)()
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=1e-4)
    assert type(ft.convert(nn.Conv2d(1, 2, 3))) is ft.Conv2d


def _seed_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


def _train(model, x, labels, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_seed_cnn_trains_like_torch():
    torch.manual_seed(0)
    reference = _seed_cnn()
    bridged = _seed_cnn()
    bridged.load_state_dict(reference.state_dict())
    ft.convert(bridged)
    assert sum(isinstance(m, (ft.Conv2d, ft.MaxPool2d)) for m in bridged.modules()) == 5
    x = torch.randn(16, 1, 28, 28)
    labels = torch.randint(0, 10, (16,))
    ours = _train(bridged, x, labels, 5)
    theirs = _train(reference, x, labels, 5)
    assert ours[-1] < ours[0]
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), atol=1e-4, rtol=1e-4)
    for p1, p2 in zip(bridged.parameters(), reference.parameters()):
        torch.testing.assert_close(p1, p2, atol=1e-4, rtol=1e-4)


def test_import_fastconv_does_not_import_torch():
    code = "import sys, fastconv, fastconv.ops; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fastconv_torch_imports_the_real_torch():
    import fastconv.torch.functional as functional_module
    assert functional_module.torch is torch and ft.modules.torch is torch
    assert ft.Conv2d.__mro__[2] is torch.nn.Conv2d


BAD_MODULES = [
    (lambda: ft.Conv2d(3, 4, 3, padding_mode="reflect"), ValueError, "padding_mode"),
    (lambda: ft.ConvTranspose2d(3, 4, 3, stride=1, dilation=2, output_padding=1), ValueError,
     "output_padding"),
    (lambda: ft.MaxPool2d(2, ceil_mode=True), ValueError, "ceil_mode"),
    (lambda: ft.MaxPool2d(2, dilation=2), ValueError, "dilation"),
    (lambda: ft.MaxPool2d(2, return_indices=True), ValueError, "return_indices"),
    (lambda: ft.AvgPool2d(2, ceil_mode=True), ValueError, "ceil_mode"),
    (lambda: ft.AvgPool2d(2, divisor_override=3), ValueError, "divisor_override"),
]


@pytest.mark.parametrize("make,error,name", BAD_MODULES)
def test_bad_module_arguments(make, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        make()


x4 = torch.randn(2, 3, 6, 6)
w4 = torch.randn(4, 3, 3, 3)
BAD_CALLS = [
    (lambda: FF.conv2d(x4.to(torch.float16), w4.half()), TypeError, "input"),
    (lambda: FF.conv2d(x4.to(torch.int32), w4), TypeError, "input"),
    (lambda: FF.conv2d(x4, w4.double()), TypeError, "weight"),
    (lambda: FF.conv2d(x4.numpy(), w4), TypeError, "input"),
    (lambda: FF.conv2d(x4[0], w4), ValueError, "input"),
    (lambda: FF.conv2d(x4, torch.randn(4, 2, 3, 3)), ValueError, "input"),
    (lambda: FF.conv2d(x4, w4, torch.randn(4, dtype=torch.float64)), TypeError, "bias"),
    (lambda: FF.conv2d(x4, w4, stride=0), ValueError, "stride"),
    (lambda: FF.conv2d(x4, w4, padding="full"), ValueError, "padding"),
    (lambda: FF.conv2d(x4, w4, padding="same", stride=2), ValueError, "padding"),
    (lambda: FF.conv2d(x4, w4, padding=-1), ValueError, "padding"),
    (lambda: FF.conv2d(x4, w4, groups=0), ValueError, "groups"),
    (lambda: FF.conv_transpose2d(x4, torch.randn(3, 2, 3, 3), stride=2, output_padding=2),
     ValueError, "output_padding"),
    (lambda: FF.max_pool2d(x4, 2, padding=2), ValueError, "padding"),
    (lambda: FF.max_pool2d(x4, 0), ValueError, "kernel_size"),
    (lambda: FF.avg_pool2d(x4, 2, ceil_mode=True), ValueError, "ceil_mode"),
    (lambda: FF.batch_norm(x4, None, None, training=False), ValueError, "running_mean"),
    (lambda: FF.batch_norm(x4[:1, :, :1, :1], None, None, training=True), ValueError, "input"),
    (lambda: FF.batch_norm(x4, torch.zeros(2), torch.ones(2)), ValueError, "running_mean"),
]


@pytest.mark.parametrize("call,error,name", BAD_CALLS)
def test_bad_call_arguments(call, error, name):
    with pytest.raises(error, match=f"`{name}`"):
        call()


def test_non_cpu_device_is_a_type_error():
    meta = torch.empty(2, 3, 6, 6, device="meta")
    with pytest.raises(TypeError, match="CPU"):
        FF.conv2d(meta, w4)


def test_input_modified_in_place_before_backward_is_an_error():
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last).requires_grad_()
    h = x * 1.0
    y = ft.Conv2d(3, 4, 3)(h)
    h.add_(1.0)  # h's memory is what the kernels' saved array views
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
