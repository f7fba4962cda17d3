"""MobileFaceNet landmark regressor (68 landmarks, 112x112 input) in the layout of the S2D weights."""
import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv (no bias) -> BatchNorm -> PReLU."""

    def __init__(self, in_ch, out_ch, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.prelu = nn.PReLU(out_ch)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class LinearBlock(nn.Module):
    """Conv (no bias) -> BatchNorm, no activation."""

    def __init__(self, in_ch, out_ch, kernel=1, stride=1, padding=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return self.bn(self.conv(x))


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 expand to `groups` channels, depth-wise conv, linear 1x1 projection."""

    def __init__(self, in_ch, out_ch, residual=False, kernel=3, stride=2, padding=1, groups=1):
        super().__init__()
        self.conv = ConvBlock(in_ch, groups)
        self.conv_dw = ConvBlock(groups, groups, kernel, stride, padding, groups=groups)
        self.project = LinearBlock(groups, out_ch)
        self.residual = residual

    def forward(self, x):
        out = self.project(self.conv_dw(self.conv(x)))
        return x + out if self.residual else out


class Residual(nn.Module):
    def __init__(self, channels, num_block, groups):
        super().__init__()
        self.model = nn.Sequential(*[
            DepthWise(channels, channels, residual=True, kernel=3, stride=1, padding=1, groups=groups)
            for _ in range(num_block)
        ])

    def forward(self, x):
        return self.model(x)


class GlobalDepthwiseOutput(nn.Module):
    """GDC head: 7x7 depth-wise conv over the whole map, then Linear + BatchNorm1d to the landmarks."""

    def __init__(self, channels=512, num_outputs=136):
        super().__init__()
        self.conv_6_dw = LinearBlock(channels, channels, kernel=7, stride=1, padding=0, groups=channels)
        self.linear = nn.Linear(channels, num_outputs, bias=False)
        self.bn = nn.BatchNorm1d(num_outputs)

    def forward(self, x):
        return self.bn(self.linear(torch.flatten(self.conv_6_dw(x), 1)))


class MobileFaceNet(nn.Module):
    """`forward(x (N,3,112,112)) -> (landmarks (N,136), conv_4 features (N,128,14,14))`."""

    input_size = 112
    feature_stride = 8  # of the conv_4 features

    def __init__(self):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, kernel=3, stride=2, padding=1)
        self.conv2_dw = ConvBlock(64, 64, kernel=3, stride=1, padding=1, groups=64)
        self.conv_23 = DepthWise(64, 64, kernel=3, stride=2, padding=1, groups=128)
        self.conv_3 = Residual(64, num_block=4, groups=128)
        self.conv_34 = DepthWise(64, 128, kernel=3, stride=2, padding=1, groups=256)
        self.conv_4 = Residual(128, num_block=6, groups=256)
        self.conv_45 = DepthWise(128, 128, kernel=3, stride=2, padding=1, groups=512)
        self.conv_5 = Residual(128, num_block=2, groups=256)
        self.conv_6_sep = ConvBlock(128, 512)
        self.output_layer = GlobalDepthwiseOutput(512, 136)

    def features(self, x):
        """The `conv_4` output (N,128,14,14) that S2D uses; skips the layers after it."""
        x = self.conv2_dw(self.conv1(x))
        x = self.conv_3(self.conv_23(x))
        return self.conv_4(self.conv_34(x))

    def forward(self, x):
        feats = self.features(x)
        x = self.conv_6_sep(self.conv_5(self.conv_45(feats)))
        return self.output_layer(x), feats
