"""Turns pretrained models into artifacts: real weights -> PyTorch -> ONNX -> TensorRT."""
