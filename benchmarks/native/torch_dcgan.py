"""DCGAN in plain PyTorch (the reference loop of the PyTorch DCGAN example)."""

import torch
import torch.nn.functional as F
from torch import nn


def _init(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    def __init__(self, latent=100, width=64):
        super().__init__()
        self.project = nn.Linear(latent, 7 * 7 * 2 * width, bias=False)
        self.bn0 = nn.BatchNorm1d(7 * 7 * 2 * width, eps=1e-3, momentum=0.01)
        self.up = nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=1e-3, momentum=0.01)
        self.out = nn.ConvTranspose2d(width, 1, 4, 2, 1)
        self.width = width

    def forward(self, z):
        x = F.relu(self.bn0(self.project(z))).view(-1, 2 * self.width, 7, 7)
        x = F.relu(self.bn1(self.up(x)))
        return torch.tanh(self.out(x))


class Discriminator(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.c0 = nn.Conv2d(1, width, 4, 2, 1)
        self.c1 = nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(2 * width, eps=1e-3, momentum=0.01)
        self.logit = nn.Linear(7 * 7 * 2 * width, 1)

    def forward(self, x):
        x = F.leaky_relu(self.c0(x), 0.2)
        x = F.leaky_relu(self.bn1(self.c1(x)), 0.2)
        return self.logit(x.flatten(1))


def make_step(batch_size, latent=100, real_label=0.9, channels_last=False):
    torch.manual_seed(0)
    g, d = Generator(latent), Discriminator()
    g.apply(_init)
    d.apply(_init)
    if channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones = torch.full((batch_size, 1), real_label)
    zeros = torch.zeros(batch_size, 1)
    targets = torch.ones(batch_size, 1)

    def step(real):  # real: (B, 1, 28, 28)
        z = torch.randn(batch_size, latent)
        fake = g(z)
        opt_d.zero_grad(set_to_none=True)
        d_loss = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g_loss = bce(d(g(z)), targets)  # fresh forward, as kgen's generator phase
        g_loss.backward()
        opt_g.step()
        return d_loss.detach(), g_loss.detach()

    def to_input(images_nhwc):
        x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()

    return step, to_input, lambda out: float(out[0])
