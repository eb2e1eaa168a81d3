"""A graph from input tensors to output tensors: its nodes in call order.

``Function(inputs, outputs)`` walks back from the outputs through each
tensor's producing node until it reaches the inputs, and orders the nodes so
that every node comes after the nodes that produce its inputs. A tensor the
walk reaches that is neither an input nor produced by a node means the
outputs are not connected to the inputs; the error names the layer that
consumes it.
"""

from __future__ import annotations

from typing import Any

from fastconv.graph.node import KerasTensor, Node, flatten


def _describe(tensor: KerasTensor) -> str:
    return tensor.name or (f"the output of '{tensor.operation.name}'" if tensor.history
                           else f"a tensor of shape {tensor.shape}")


class Function:
    """The nodes between ``inputs`` and ``outputs`` (each a KerasTensor, or a
    list/tuple/dict of them), in an order that respects their dependencies.

    Attributes
    ----------
    inputs, outputs : list of KerasTensor (flat)
    input_structure, output_structure : how the arguments nested them
    nodes : list of Node, producers before consumers (input layers excluded)
    """

    def __init__(self, inputs: Any, outputs: Any, owner: str = "model") -> None:
        self.inputs, self.input_structure = flatten(inputs)
        self.outputs, self.output_structure = flatten(outputs)
        for what, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise ValueError(
                        f"Invalid value for argument `{what}` of {owner}: expected "
                        f"KerasTensors (from fastconv.Input or a layer's output), received "
                        f"{t!r}.")
        if not self.inputs:
            raise ValueError(f"Invalid value for argument `inputs` of {owner}: no input "
                             "tensors given.")
        seen: dict[int, KerasTensor] = {}
        names: dict[str, KerasTensor] = {}
        for t in self.inputs:
            if id(t) in seen:
                raise ValueError(f"The input {_describe(t)} of {owner} is given twice in "
                                 "`inputs`.")
            seen[id(t)] = t
            if t.name is not None:
                if t.name in names:
                    raise ValueError(
                        f"Two inputs of {owner} are named '{t.name}': input names must be "
                        "unique (give each fastconv.Input its own `name`).")
                names[t.name] = t
        self.nodes = self._order(owner)

    def _order(self, owner: str) -> list[Node]:
        """Depth-first from the outputs, each node placed after its inputs'
        producers (an explicit stack: deep chains must not hit Python's
        recursion limit)."""
        input_ids = {id(t) for t in self.inputs}
        order: list[Node] = []
        state: dict[int, int] = {}  # 1: on the walk's path, 2: placed
        for out in self.outputs:
            stack: list[tuple[KerasTensor, str, bool]] = [(out, f"the outputs of {owner}",
                                                            False)]
            while stack:
                tensor, consumer, expanded = stack.pop()
                if id(tensor) in input_ids:
                    continue
                node = tensor.node
                if node is None or _is_input_node(node):
                    raise ValueError(
                        f"The graph of {owner} is disconnected: {_describe(tensor)} feeds "
                        f"{consumer} but is not connected to (computed from) the inputs "
                        f"{[_describe(t) for t in self.inputs]}. Pass that tensor's Input "
                        "in `inputs` as well.")
                key = id(node)
                if expanded:
                    state[key] = 2
                    order.append(node)
                    continue
                if state.get(key) == 2:
                    continue
                if state.get(key) == 1:
                    raise ValueError(f"The graph of {owner} has a cycle through layer "
                                     f"'{node.operation.name}'.")
                state[key] = 1
                stack.append((tensor, consumer, True))
                for t in reversed(node.input_tensors):
                    stack.append((t, f"layer '{node.operation.name}'", False))
        return order


def _is_input_node(node: Node) -> bool:
    return getattr(node.operation, "is_input_layer", False)
