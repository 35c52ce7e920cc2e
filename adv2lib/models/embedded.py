"""Small ResNet- and DenseNet-style victims for 28x28 grayscale input (embedded profile).

They mirror the paper's ResNet-50 and DenseNet-169 at small scale: three resolutions
(28 -> 14 -> 7), so the CAM grid is 7x7 like the paper's, and the same
``features -> GAP -> linear`` head. ResNet blocks follow He et al. (CVPR 2016, basic
block); dense blocks follow Huang et al. (CVPR 2017, BN-ReLU-conv layers, transitions with
1x1 conv + 2x2 average pooling, a final BN + ReLU as in torchvision's DenseNet).
"""
from __future__ import annotations

import torch
from torch import nn

from .victim import Normalize, Victim

#: Fashion-MNIST training-set pixel mean and standard deviation (in [0, 1] units).
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class SmallResNet(Victim):
    """Stem + three basic blocks (32, 64, 128 channels) at 28, 14 and 7 pixels."""

    name = "resnet"

    def __init__(self, num_classes: int = 10, widths=(32, 64, 128), in_channels: int = 1):
        super().__init__()
        self.normalize = Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        self.layer1 = BasicBlock(widths[0], widths[0], 1)
        self.layer2 = BasicBlock(widths[0], widths[1], 2)
        self.layer3 = BasicBlock(widths[1], widths[2], 2)
        self.classifier = nn.Linear(widths[2], num_classes)

    def _pyramid(self, xn):
        f1 = self.layer1(self.stem(xn))
        f2 = self.layer2(f1)
        return [f1, f2, self.layer3(f2)]


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(cin, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(self.relu(self.norm(x)))], dim=1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))


class SmallDenseNet(Victim):
    """Three dense blocks (28, 14, 7 pixels) with transitions; final BN + ReLU features."""

    name = "densenet"

    def __init__(self, num_classes: int = 10, growth: int = 12, layers=(3, 6, 6), stem: int = 24,
                 in_channels: int = 1):
        super().__init__()
        self.normalize = Normalize(FASHION_MNIST_MEAN, FASHION_MNIST_STD)
        self.stem = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        blocks, channels = [], stem
        self.transitions = nn.ModuleList()
        for i, n in enumerate(layers):
            block = []
            for _ in range(n):
                block.append(DenseLayer(channels, growth))
                channels += growth
            blocks.append(nn.Sequential(*block))
            if i < len(layers) - 1:
                self.transitions.append(Transition(channels, channels // 2))
                channels //= 2
        self.blocks = nn.ModuleList(blocks)
        self.final_norm = nn.BatchNorm2d(channels)
        self.final_relu = nn.ReLU()
        self.classifier = nn.Linear(channels, num_classes)

    def _pyramid(self, xn):
        out, h = [], self.stem(xn)
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i < len(self.transitions):
                out.append(h)
                h = self.transitions[i](h)
        out.append(self.final_relu(self.final_norm(h)))
        return out


EMBEDDED_ARCHITECTURES = {"resnet": SmallResNet, "densenet": SmallDenseNet}
