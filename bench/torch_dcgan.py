"""PyTorch reference of the DCGAN iterations that bench/dcgan_speed.py times (same networks, losses, Adam).

G: Linear(z -> start*start*width, no bias) + BN + ReLU, then 4x4 stride-2 transposed convs halving
the width (BN + ReLU, no bias) up to the image, tanh. D: 4x4 stride-2 convs doubling the width from
`channels` (LeakyReLU 0.2; BatchNorm on all but the first when `batch_norm`), flatten, Linear -> 1.
The same plan as gan_jax.models.dcgan: 28 -> 14 -> 7 and 64 -> 32 -> 16 -> 8 -> 4.

One iteration: `d_steps` D updates (a fresh real batch drawn from a uint8 set on the device and a
fresh fake batch each), then one G update; non-saturating loss, or the Wasserstein loss with the
WGAN-GP penalty (lambda 10) on random interpolates.
"""
import torch
from torch import nn
import torch.nn.functional as F


def _scales(side: int) -> int:
  scales = 0
  while side % 2 == 0 and side > 4:
    side //= 2
    scales += 1
  return scales


class Generator(nn.Module):

  def __init__(self, side: int, out_channels: int, z_dim: int, channels: int):
    super().__init__()
    scales = _scales(side)
    self.start, self.width = side >> scales, channels * 2 ** (scales - 1)
    self.project = nn.Linear(z_dim, self.start * self.start * self.width, bias=False)
    self.bn = nn.BatchNorm2d(self.width)
    layers, width = [], self.width
    for _ in range(scales - 1):
      layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU()]
      width //= 2
    layers += [nn.ConvTranspose2d(width, out_channels, 4, 2, 1), nn.Tanh()]
    self.body = nn.Sequential(*layers)

  def forward(self, z):
    x = self.project(z).view(z.shape[0], self.width, self.start, self.start)
    return self.body(F.relu(self.bn(x)))


class Discriminator(nn.Module):

  def __init__(self, side: int, in_channels: int, channels: int, batch_norm: bool):
    super().__init__()
    layers, width = [], in_channels
    scales = _scales(side)
    for i in range(scales):
      norm = batch_norm and i > 0
      layers.append(nn.Conv2d(width, channels * 2 ** i, 4, 2, 1, bias=not norm))
      if norm:
        layers.append(nn.BatchNorm2d(channels * 2 ** i))
      layers.append(nn.LeakyReLU(0.2))
      width = channels * 2 ** i
    self.body = nn.Sequential(*layers)
    self.out = nn.Linear(width * (side >> scales) ** 2, 1)

  def forward(self, x):
    return self.out(self.body(x).flatten(1))[:, 0]


class Iteration:
  """`step()` runs one GAN iteration (asynchronously on GPU); `sync()` waits for it."""

  def __init__(self, shape: tuple[int, int, int], batch_size: int, *, loss: str, d_steps: int, dtype: str,
               device: str, compile_models: bool, z_dim: int = 100, channels: int = 64, num_images: int = 2048):
    side, _, c = shape
    self.device = torch.device(device)
    self.batch_size, self.loss, self.d_steps, self.z_dim = batch_size, loss, d_steps, z_dim
    self.g = Generator(side, c, z_dim, channels).to(self.device)
    self.d = Discriminator(side, c, channels, batch_norm=loss != 'wgan_gp').to(self.device)
    betas, lr = ((0.0, 0.9), 1e-4) if loss == 'wgan_gp' else ((0.5, 0.999), 2e-4)
    self.g_opt = torch.optim.Adam(self.g.parameters(), lr, betas)
    self.d_opt = torch.optim.Adam(self.d.parameters(), lr, betas)
    self.g_fn = torch.compile(self.g) if compile_models else self.g
    self.d_fn = torch.compile(self.d) if compile_models else self.d
    self.images = torch.randint(0, 256, (num_images, c, side, side), dtype=torch.uint8, device=self.device)
    self.autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=dtype == 'bfloat16')

  def _real(self):
    idx = torch.randint(0, self.images.shape[0], (self.batch_size,), device=self.device)
    return self.images[idx].float() / 127.5 - 1.0

  def _z(self):
    return torch.randn(self.batch_size, self.z_dim, device=self.device)

  def _d_loss(self, real, fake):
    d_real, d_fake = self.d_fn(real).float(), self.d_fn(fake).float()
    if self.loss != 'wgan_gp':
      return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    e = torch.rand(real.shape[0], 1, 1, 1, device=self.device)
    x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(self.d_fn(x_hat).float().sum(), x_hat, create_graph=True)
    penalty = ((grads.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
    return d_fake.mean() - d_real.mean() + 10.0 * penalty

  def step(self):
    for _ in range(self.d_steps):
      real = self._real()
      with self.autocast:
        with torch.no_grad():
          fake = self.g_fn(self._z()).float()
        loss = self._d_loss(real, fake)
      self.d_opt.zero_grad(set_to_none=True)
      loss.backward()
      self.d_opt.step()
    self.d.requires_grad_(False)
    with self.autocast:
      d_fake = self.d_fn(self.g_fn(self._z())).float()
      g_loss = (-d_fake.mean() if self.loss == 'wgan_gp'
                else F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake)))
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    self.g_opt.step()
    self.d.requires_grad_(True)

  def sync(self):
    if self.device.type == 'cuda':
      torch.cuda.synchronize(self.device)
