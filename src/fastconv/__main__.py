"""Command line: ``python -m fastconv [train|bench|demo]`` (also the ``fastconv`` script).

- ``train`` (the default): trains a seed CNN on Fashion-MNIST, see
  ``fastconv.cli.train``.
- ``bench``: the seed CNN per layer and per training step against the
  reference and PyTorch; with ``--family`` the convolution family's named
  shapes too, see ``fastconv.cli.bench``.
- ``demo``: times the kernels against the NumPy reference, see
  ``fastconv.cli.demo``.
"""

from __future__ import annotations

import argparse
import sys

import fastconv


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, received {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, received {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastconv", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=_positive, default=None,
                        help="kernel threads (default: OMP_NUM_THREADS, else all cores)")
    sub = parser.add_subparsers(dest="command")
    p_train = sub.add_parser("train", help="train a seed CNN on Fashion-MNIST (default)")
    from fastconv.cli.train import MODELS

    p_train.add_argument("--model", choices=sorted(MODELS), default="seed-cnn",
                         help="seed-cnn: the seed 000/004 convnet, rmsprop, batch 64; "
                              "fashion-cnn: the seed 003 CNN, adam, batch 32")
    p_train.add_argument("--epochs", type=_positive, default=5)
    p_train.add_argument("--batch-size", type=_positive, default=None)
    p_train.add_argument("--data", default=None, help="directory of the Fashion-MNIST IDX files")
    p_train.add_argument("--sample", action="store_true",
                         help="use the sample shipped with fastconv even if the full set exists")
    p_train.add_argument("--seed", type=int, default=None, help="random seed (reproducible runs)")
    p_train.add_argument("--distributed", action="store_true",
                         help="data-parallel over the ranks of mpirun (fastconv.distribute)")
    p_bench = sub.add_parser("bench", help="the seed CNN per layer and per training step "
                                           "against the reference and PyTorch")
    p_bench.add_argument("--batch", type=_positive, default=64, help="images per batch")
    p_bench.add_argument("--repeat", type=_positive, default=20, help="timed runs (best of)")
    p_bench.add_argument("--family", action="store_true",
                         help="then the convolution family's named shapes (rank 1-3, causal, "
                              "transposed, depthwise, separable, pooling) against PyTorch "
                              "and two end-to-end models (about 2 more minutes)")
    p_bench.add_argument("--reference", action="store_true",
                         help="with --family: also time the NumPy reference")
    p_bench.add_argument("--family-batch", type=_positive, default=None,
                         help="with --family: every shape at this batch instead of its own "
                              "(a quick check)")
    p_bench.add_argument("--load", type=_non_negative, default=0, metavar="K",
                         help="then time the training step again beside K busy processes "
                              "(a machine others are using)")
    p_demo = sub.add_parser("demo", help="time conv + pool forward/backward against the reference")
    p_demo.add_argument("--batch", type=_positive, default=64, help="images per batch")
    p_demo.add_argument("--repeat", type=_positive, default=10, help="timed calls per step")
    args = parser.parse_args(argv)
    if args.threads is not None:
        fastconv.set_num_threads(args.threads)
    if args.command == "bench":
        from fastconv.cli.bench import bench

        return bench(args.batch, args.repeat, args.family, args.reference, args.family_batch,
                     args.load)
    if args.command == "demo":
        from fastconv.cli.demo import demo

        return demo(args.batch, args.repeat)
    from fastconv.cli.train import train

    if args.command is None:
        args = p_train.parse_args([])
    return train(args.model, args.epochs, args.batch_size, args.data, args.sample, args.seed,
                 distributed=args.distributed)


if __name__ == "__main__":
    sys.exit(main())
