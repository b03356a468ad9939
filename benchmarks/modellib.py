"""Whole-model training steps for the benchmarks (no pytest in here).

Two models of the paper's experiments, each with three activations side by side:

* ``mlp``: MNIST MLP 784-512-256-256-10 (``mnist-mlp``), tanh, batch 128;
* ``cnn``: the BN CNN of ``fashion-cnn`` (4 conv + BN, 2 max-pools, 512-256 dense + BN),
  relu, batch 64; its first activation map is 64x32x28x28.

Activations (``contender``): ``plain`` (``nn.Tanh`` / ``nn.ReLU``, the base model),
``gaaf`` (the ``GAAF`` module, as ``gaaf train`` builds it) and ``naive`` (the naive
formula of ``benchlib.py`` as a module, differentiated by autograd). Modes: ``eager``,
and ``compiled``: ``torch.compile(model)``, the optimizer step eager.

One step: forward, cross-entropy, ``zero_grad``, backward, SGD (momentum 0.9) step.
Inputs are random images of the dataset's shape (the timing does not depend on them).
"""

from __future__ import annotations

import os
import platform

import torch
import torch.nn.functional as F
from torch import nn

from benchlib import NAIVE

MODELS = {  # name: (task, batch, plain activation module, base variant)
    "mlp": ("mnist-mlp", 128, nn.Tanh, "base"),
    "cnn": ("fashion-cnn", 64, nn.ReLU, "bn"),
}
CONTENDERS = ("plain", "gaaf", "naive")
MODES = ("eager", "compiled")
ACTIVATION_OF = {nn.Tanh: "tanh", nn.ReLU: "relu"}


class NaiveGAAF(nn.Module):
    """The naive formula (benchlib.NAIVE) as a module: what a user would type."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return NAIVE[self.activation](x)


def _swap(module: nn.Module, plain: type, activation: str) -> None:
    for name, child in module.named_children():
        if isinstance(child, plain):
            setattr(module, name, NaiveGAAF(activation))
        else:
            _swap(child, plain, activation)


def build(model: str, contender: str) -> nn.Module:
    from gaaf_kernels.experiments.models import build_model

    task, _, plain, base = MODELS[model]
    torch.manual_seed(0)
    if contender == "gaaf":
        return build_model(task, "bn-gaaf" if base == "bn" else "gaaf")
    net = build_model(task, base)
    if contender == "naive":
        _swap(net, plain, ACTIVATION_OF[plain])
    return net


def batch(model: str, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    from gaaf_kernels.experiments.tasks import get_task

    task, size, _, _ = MODELS[model]
    spec = get_task(task)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(size, *spec.in_shape, generator=gen)
    y = torch.randint(0, spec.num_classes, (size,), generator=gen)
    return x.to(device), y.to(device)


def make_step(model: str, contender: str, mode: str, device: str = "cpu"):
    """A training step closure; compiled models are compiled afresh (Dynamo reset)."""
    net = build(model, contender).to(device)
    x, y = batch(model, device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    if mode == "compiled":
        torch._dynamo.reset()  # a fresh compile at the current thread count
        forward = torch.compile(net)
    else:
        forward = net

    def step() -> torch.Tensor:
        loss = F.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def cpu_info() -> dict:
    """The CPU as the JSON records it: model name, family/model, ISA torch dispatches to."""
    info = {"cpu_model": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            fields = dict(line.split(":", 1) for line in fh.read().split("\n\n")[0]
                          .splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu_model"] = fields.get("model name", info["cpu_model"])
        info["cpu_family_model"] = f"{fields.get('cpu family')}/{fields.get('model')}"
        flags = set(fields.get("flags", "").split())
        info["cpu_flags_avx512f"] = "avx512f" in flags
        info["cpu_flags_avx2"] = "avx2" in flags
    except OSError:
        pass
    try:
        info["isa"] = torch.backends.cpu.get_cpu_capability()  # AVX512, AVX2, ...
    except AttributeError:
        info["isa"] = None
    return info
