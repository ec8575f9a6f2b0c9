"""Test-only PyTorch FID Inception-v3 with pytorch-fid's state-dict key names.

Independent of `gan_jax.metrics.inception`: NCHW, torch ops, torch's own resize. Used to
check the Flax port layer for layer through `load_torch_state_dict`.
"""
import torch
from torch import nn
import torch.nn.functional as F


class ConvBN(nn.Module):
  """Conv2d (no bias) -> BatchNorm2d (eps 1e-3) -> ReLU; keys `conv.weight`, `bn.*`."""

  def __init__(self, cin, cout, kernel=1, stride=1, padding=0):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
    self.bn = nn.BatchNorm2d(cout, eps=1e-3)

  def forward(self, x):
    return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
  return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):

  def __init__(self, cin, pool_features):
    super().__init__()
    self.branch1x1 = ConvBN(cin, 64)
    self.branch5x5_1 = ConvBN(cin, 48)
    self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
    self.branch3x3dbl_1 = ConvBN(cin, 64)
    self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
    self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
    self.branch_pool = ConvBN(cin, pool_features)

  def forward(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class BlockB(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
    self.branch3x3dbl_1 = ConvBN(cin, 64)
    self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
    self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):

  def __init__(self, cin, c7):
    super().__init__()
    self.branch1x1 = ConvBN(cin, 192)
    self.branch7x7_1 = ConvBN(cin, c7)
    self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
    self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = ConvBN(cin, c7)
    self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
    self.branch_pool = ConvBN(cin, 192)

  def forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = x
    for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                  self.branch7x7dbl_4, self.branch7x7dbl_5):
      bd = layer(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg_pool(x))], 1)


class BlockD(nn.Module):

  def __init__(self, cin):
    super().__init__()
    self.branch3x3_1 = ConvBN(cin, 192)
    self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
    self.branch7x7x3_1 = ConvBN(cin, 192)
    self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
    self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
    self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

  def forward(self, x):
    b3 = self.branch3x3_2(self.branch3x3_1(x))
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
    return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):

  def __init__(self, cin, max_pool):
    super().__init__()
    self.max_pool = max_pool
    self.branch1x1 = ConvBN(cin, 320)
    self.branch3x3_1 = ConvBN(cin, 384)
    self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
    self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = ConvBN(cin, 448)
    self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
    self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
    self.branch_pool = ConvBN(cin, 192)

  def forward(self, x):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
    pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
    return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionReference(nn.Module):
  """[B, C, H, W] in [-1, 1], C in {1, 3} -> (pool [B, 2048], logits [B, 1008] with fc bias)."""

  def __init__(self):
    super().__init__()
    self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
    self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
    self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
    self.Conv2d_3b_1x1 = ConvBN(64, 80)
    self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
    self.Mixed_5b = BlockA(192, 32)
    self.Mixed_5c = BlockA(256, 64)
    self.Mixed_5d = BlockA(288, 64)
    self.Mixed_6a = BlockB(288)
    self.Mixed_6b = BlockC(768, 128)
    self.Mixed_6c = BlockC(768, 160)
    self.Mixed_6d = BlockC(768, 160)
    self.Mixed_6e = BlockC(768, 192)
    self.Mixed_7a = BlockD(768)
    self.Mixed_7b = BlockE(1280, max_pool=False)
    self.Mixed_7c = BlockE(2048, max_pool=True)
    self.fc = nn.Linear(2048, 1008)

  def forward(self, x):
    if x.shape[1] == 1:
      x = x.repeat(1, 3, 1, 1)
    if tuple(x.shape[2:]) != (299, 299):
      x = F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
    x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
    x = F.max_pool2d(x, 3, stride=2)
    x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, stride=2)
    for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                  self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                  self.Mixed_7c):
      x = block(x)
    pool = x.mean(dim=(2, 3))
    return pool, self.fc(pool)
