"""The engine between models and layers: symbolic tensors and call nodes
(``node``), graphs from inputs to outputs (``function``), the executor with
its tape (``executor``), rewrite passes (``passes``) and the tracing of
``call`` methods written with Keras ops (``trace``)."""

from fastconv.graph.executor import Plan, Tape, zero_gradients
from fastconv.graph.function import Function
from fastconv.graph.node import KerasTensor, Node

__all__ = ["Function", "KerasTensor", "Node", "Plan", "Tape", "zero_gradients"]
