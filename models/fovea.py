"""Fovea: per-channel spatial softmax attention, sharpened by a learnt temperature."""
import torch
from torch import nn


class Fovea(nn.Module):
    def __init__(self, smooth=10.0):
        super().__init__()
        self.smooth = nn.Parameter(torch.full((1,), smooth))

    def forward(self, x):
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        mask = torch.softmax(flat * self.smooth, dim=-1)
        return (mask * flat).reshape(b, c, h, w)
