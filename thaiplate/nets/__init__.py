"""Torch modules for training and export only; serving runs their ONNX exports (never import torch there)."""

from thaiplate.nets.crnn import CRNN
from thaiplate.nets.resnet import ProvinceNet

__all__ = ["CRNN", "ProvinceNet"]
