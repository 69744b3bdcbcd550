"""Training of the recogniser and province classifier (torch), and their ONNX export."""
