"""The ``python -m fastconv`` commands: ``train`` (the seed CNN on
Fashion-MNIST), ``bench`` (per-layer and per-step timings against the NumPy
reference and PyTorch) and ``demo`` (the kernels alone)."""
