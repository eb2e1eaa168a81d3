"""Tracing a Keras-style ``call`` into a graph.

A layer or model written as in Keras defines ``call(inputs, training=None)``
with Keras ops, other layers and its weights. fastconv calls it once on
symbolic inputs (``KerasTensor`` with the batch dimension unknown, as Keras'
symbolic build and TensorFlow's graph mode see it): every layer call and
Keras op inside records a node, so the result is a graph that the executor
runs and differentiates. Python control flow in ``call`` runs at trace time;
``training`` is a Python bool there, so ``if training:`` picks a branch. One
graph is kept per input shape, dtype and training mode.
"""

from __future__ import annotations

from typing import Any

from fastconv.graph.executor import Plan
from fastconv.graph.function import Function
from fastconv.graph.node import SINGLE, KerasTensor, flatten, unflatten


def trace_call(layer: Any, shapes: Any, dtypes: Any, structure: Any, training: bool) -> Plan:
    """The plan of ``layer.call`` for inputs of ``shapes`` / ``dtypes`` nested
    as ``structure`` (see fastconv.graph.node.flatten)."""
    flat_shapes = [shapes] if structure == SINGLE else list(shapes)
    flat_dtypes = [dtypes] * len(flat_shapes) if isinstance(dtypes, str) else list(dtypes)
    flat_inputs = [KerasTensor(s, d) for s, d in zip(flat_shapes, flat_dtypes)]
    inputs = unflatten(flat_inputs, structure)
    kwargs = {"training": training} if layer._call_accepts_training() else {}
    outputs = layer.call(inputs, **kwargs)
    flat_out, out_structure = flatten(outputs)
    for i, t in enumerate(flat_out):
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"The `call` of layer '{layer.name}' ({type(layer).__name__}) returned "
                f"{type(t).__name__} as output {i}: it must return what its Keras ops and "
                "layers computed from the inputs (KerasTensors while fastconv traces it). "
                "Compute with fastconv.ops (keras.ops), not NumPy, inside `call`.")
    return Plan(Function(flat_inputs if structure == SINGLE else inputs,
                         outputs, owner=f"the `call` of layer '{layer.name}'"))
