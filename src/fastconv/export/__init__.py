"""Exporting models for inference elsewhere: ``export_onnx`` writes an ONNX
file that ONNX Runtime (or any ONNX backend) runs without fastconv."""

from fastconv.export.onnx import DEFAULT_OPSET, export_onnx

__all__ = ["DEFAULT_OPSET", "export_onnx"]
