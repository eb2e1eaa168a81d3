"""Two end-to-end models of the convolution family for ``python -m fastconv
bench --family``: one training step (forward, backward, RMSprop update) on
fastconv and on the same network in PyTorch, as the seed CNN is compared.

- conv1d: a time-series classifier, Input((500, 1)) -> Conv1D(64, 3, relu)
  x 2 -> MaxPooling1D(2) -> Conv1D(64, 3, relu) -> GlobalAveragePooling1D
  -> Dense(10, softmax);
- mobilenet: Input((32, 32, 3)) -> Conv2D(32, 3, strides 2, "same", relu)
  -> 3 x [DepthwiseConv2D(3, "same", relu) -> Conv2D(64 / 128 / 128, 1,
  relu)] -> GlobalAveragePooling2D -> Dense(10, softmax);
- vgg_block: a VGG-style CIFAR block, Input((32, 32, 3)) -> 2 x
  [Conv2D(64, 3, "same") -> BatchNormalization -> ReLU] -> MaxPooling2D(2)
  -> GlobalAveragePooling2D -> Dense(10, softmax).

PyTorch runs the softmax inside its cross-entropy loss, and TensorFlow's
"same" padding of the strided first convolution (one extra row and column
at the bottom and right) as a ZeroPad2d.
"""

from __future__ import annotations

import numpy as np

import fastconv
from fastconv import layers
from fastconv.training.trainer import with_training_environment

MODELS = {
    "conv1d": (("Conv1D classifier (Conv1D 64 x2, pool, Conv1D 64, global avg pool, "
                "Dense 10) on (500, 1)"), (500, 1)),
    "mobilenet": (("MobileNet-style net (Conv2D 32 /2, 3 x [depthwise 3x3, pointwise "
                   "64/128/128], global avg pool, Dense 10) on (32, 32, 3)"), (32, 32, 3)),
    "vgg_block": (("VGG-style block (2 x [Conv2D 64 3x3, BatchNormalization, ReLU], max pool, "
                   "global avg pool, Dense 10) on (32, 32, 3)"), (32, 32, 3)),
}
POINTWISE = (64, 128, 128)


def data(name: str, batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, *MODELS[name][1]), dtype=np.float32),
            rng.integers(0, 10, batch))


def fastconv_model(name: str):
    fastconv.utils.set_random_seed(0)
    if name == "conv1d":
        stack = [layers.Input(MODELS[name][1]),
                 layers.Conv1D(64, 3, activation="relu"),
                 layers.Conv1D(64, 3, activation="relu"),
                 layers.MaxPooling1D(2),
                 layers.Conv1D(64, 3, activation="relu"),
                 layers.GlobalAveragePooling1D()]
    elif name == "vgg_block":
        stack = [layers.Input(MODELS[name][1])]
        for _ in range(2):
            stack += [layers.Conv2D(64, 3, padding="same"), layers.BatchNormalization(),
                      layers.Activation("relu")]
        stack += [layers.MaxPooling2D(2), layers.GlobalAveragePooling2D()]
    else:
        stack = [layers.Input(MODELS[name][1]),
                 layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")]
        for filters in POINTWISE:
            stack += [layers.DepthwiseConv2D(3, padding="same", activation="relu"),
                      layers.Conv2D(filters, 1, activation="relu")]
        stack.append(layers.GlobalAveragePooling2D())
    model = fastconv.Sequential([*stack, layers.Dense(10, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    return model


def torch_model(name: str):
    import torch

    nn = torch.nn
    if name == "conv1d":
        return nn.Sequential(
            nn.Conv1d(1, 64, 3), nn.ReLU(), nn.Conv1d(64, 64, 3), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(64, 64, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
            nn.Linear(64, 10))
    if name == "vgg_block":
        # Keras' epsilon and momentum (PyTorch's momentum is 1 - Keras').
        return nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64, 1e-3, 0.01), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64, 1e-3, 0.01), nn.ReLU(),
            nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    stack = [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 32, 3, stride=2), nn.ReLU()]
    channels = 32
    for filters in POINTWISE:
        stack += [nn.Conv2d(channels, channels, 3, padding=1, groups=channels), nn.ReLU(),
                  nn.Conv2d(channels, filters, 1), nn.ReLU()]
        channels = filters
    return nn.Sequential(*stack, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10))


def torch_step_time(name: str, threads: int, batch: int, repeat: int, best) -> float:
    """Seconds of PyTorch's best training step (``best(step, repeat)``)."""
    import torch

    torch.set_num_threads(threads)
    model = torch_model(name)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss = torch.nn.CrossEntropyLoss()
    x, y = data(name, batch)
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    yt = torch.from_numpy(y.astype(np.int64))

    def step() -> None:
        optimizer.zero_grad()
        loss(model(xt), yt).backward()
        optimizer.step()

    return best(step, repeat)


@with_training_environment
def fastconv_step_time(name: str, batch: int, repeat: int, best) -> float:
    """Seconds of fastconv's best training step (``best(step, repeat)``)."""
    model = fastconv_model(name)
    x, y = data(name, batch)
    return best(lambda: model.train_on_batch(x, y), repeat)
