"""The seed programs in examples/ and the ``python -m fastconv`` commands run
end to end. The examples read small generated MNIST / Fashion-MNIST files
through FASTCONV_DATA, so they run quickly and need no real dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv.datasets import write_idx

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_fake_dataset(directory: Path, n_train: int = 320, n_test: int = 64) -> None:
    """Images whose bright quadrant-and-stripe pattern encodes the label, so a
    convnet can learn them in a few steps."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    arrays = []
    for n in (n_train, n_test):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label:2 * label + 4, :] = 250
        arrays += [images, labels.astype(np.uint8)]
    for name, array in zip(FILES, arrays):
        write_idx(directory / name, array)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fake_dataset(root / "mnist")
    write_fake_dataset(root / "fashion-mnist")
    return root


def run(args: list[str], data_dir: Path, cwd: Path) -> str:
    # The child must import the same fastconv as this test (installed or in place).
    package_root = str(Path(fastconv.__file__).resolve().parent.parent)
    path = os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "FASTCONV_DATA": str(data_dir), "HOME": str(cwd), "PYTHONPATH": path}
    env.pop("DISPLAY", None)
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("script, expected_output, plots", [
    ("mnist_convnet.py", "Test accuracy:", []),
    ("mnist_convnet_categorical.py", "Test accuracy:", []),
    ("fashion_mnist_cnn.py", "Test accuracy:", ["fashion_mnist_predictions.png"]),
    ("filters_and_feature_maps.py", "Test accuracy:", ["filters.png", "feature_maps.png",
                                                        "digits.png"]),
])
def test_example_runs(script, expected_output, plots, data_dir, tmp_path):
    out = run([str(EXAMPLES / script)], data_dir, tmp_path)
    assert expected_output in out
    accuracy = float(out.rsplit(expected_output, 1)[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    assert "Total params:" in out
    if has_matplotlib():
        for name in plots:
            assert (tmp_path / name).stat().st_size > 1000, f"{name} was not saved"


def test_feature_maps_example_shows_first_layer_maps(data_dir, tmp_path):
    out = run([str(EXAMPLES / "filters_and_feature_maps.py")], data_dir, tmp_path)
    assert "Feature maps of the first layer: (1, 26, 26, 32)" in out


def test_train_command_on_the_bundled_sample(tmp_path):
    out = run(["-m", "fastconv", "train", "--sample", "--epochs", "1", "--seed", "3"],
              tmp_path, tmp_path)
    assert "Fashion-MNIST sample shipped with fastconv" in out
    assert "Total params: 93,322" in out
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    # One epoch on 6,000 images: well above chance (0.1).
    assert accuracy > 0.5, out[-2000:]


def test_demo_command(tmp_path):
    out = run(["-m", "fastconv", "demo", "--batch", "4", "--repeat", "1"], tmp_path, tmp_path)
    assert "conv 13x13x32->64 backward" in out and "total" in out
