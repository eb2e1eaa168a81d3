"""Regenerate src/fastconv/datasets/data/fashion_mnist_sample.npz.

The sample is the first 600 training and the first 100 test images of each
class, in file order, kept in their original relative order. Any copy of the
canonical Fashion-MNIST gives the same arrays (Debian's
``dataset-fashion-mnist`` differs from upstream only in its gzip headers).
The archive also stores ``train_index`` / ``test_index``, the positions of
the chosen images in the full files, so a test can check the sample against
the full dataset.

Run from the repository root::

    PYTHONPATH=src python tools/make_fashion_mnist_sample.py \
        --source /usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fastconv.datasets import fashion_mnist

OUTPUT = Path(__file__).resolve().parents[1] / "src/fastconv/datasets/data/fashion_mnist_sample.npz"
FULL_SIZES = (60000, 10000)


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` items of each class, in file order.

    Taking the first items rather than a seeded random draw keeps the choice
    independent of NumPy's random number streams, which may change between
    versions.
    """
    chosen = []
    for cls in range(10):
        where = np.flatnonzero(labels == cls)
        if len(where) < per_class:
            raise ValueError(f"class {cls} has {len(where)} items, fewer than {per_class}")
        chosen.append(where[:per_class])
    return np.sort(np.concatenate(chosen)).astype(np.int32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="directory of the four Fashion-MNIST IDX files "
        "(default: fashion_mnist.load_data()'s search)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(args.source)
    if (len(x_train), len(x_test)) != FULL_SIZES:
        raise SystemExit(
            f"expected the full dataset ({FULL_SIZES[0]} + {FULL_SIZES[1]} images), "
            f"received {len(x_train)} + {len(x_test)}"
        )
    train_index = first_per_class(y_train, args.train_per_class)
    test_index = first_per_class(y_test, args.test_per_class)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        x_train=x_train[train_index],
        y_train=y_train[train_index],
        x_test=x_test[test_index],
        y_test=y_test[test_index],
        train_index=train_index,
        test_index=test_index,
    )
    print(
        f"wrote {args.output}: {len(train_index)} train + {len(test_index)} test images, "
        f"{args.output.stat().st_size:,} bytes"
    )


if __name__ == "__main__":
    main()
