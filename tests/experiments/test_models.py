"""The models have the paper's architectures, and the variants differ only as specified."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gaaf_kernels.adapters.torch import GAAF
from gaaf_kernels.experiments.models import build_model


def _count(model: nn.Module, cls: type) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def _linear_sizes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_mnist_mlp_architecture_and_glorot_init():
    torch.manual_seed(0)
    model = build_model("mnist-mlp", "base")
    assert _linear_sizes(model) == [(784, 512), (512, 256), (256, 256), (256, 10)]
    assert _count(model, nn.Tanh) == 3 and _count(model, nn.Dropout) == 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound = math.sqrt(6 / (m.in_features + m.out_features))
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.95 * bound  # uniform over the whole range
            assert torch.all(m.bias == 0)
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_mlp_dropout_variant_has_p05_after_each_hidden_layer():
    model = build_model("mnist-mlp", "dropout")
    layers = list(model)
    drops = [i for i, m in enumerate(layers) if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(layers[i].p == 0.5 for i in drops)
    assert all(isinstance(layers[i - 1], nn.Tanh) for i in drops)
    assert not isinstance(layers[-1], nn.Dropout)  # none on the output


def test_mlp_gaaf_variant_swaps_every_tanh():
    model = build_model("mnist-mlp", "gaaf")
    gaafs = [m for m in model.modules() if isinstance(m, GAAF)]
    assert _count(model, nn.Tanh) == 0 and len(gaafs) == 3
    assert all(g.config.activation.name == "tanh" and g.config.shape.name == "gaussian"
               for g in gaafs)
    assert _linear_sizes(model) == _linear_sizes(build_model("mnist-mlp", "base"))


def test_vgg_is_vgg16_without_last_three_convs():
    model = build_model("cifar100-vgg", "base")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert _count(model, nn.MaxPool2d) == 4
    assert _linear_sizes(model) == [(2048, 512), (512, 512), (512, 100)]
    assert _count(model, nn.ReLU) == 12 and _count(model, nn.BatchNorm2d) == 0
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 100)


@pytest.mark.parametrize("task", ["cifar10-vgg", "svhn-cnn", "fashion-cnn"])
def test_cnn_variants(task):
    base = build_model(task, "base")
    n_act = _count(base, nn.ReLU)
    bn = build_model(task, "bn")
    n_conv = _count(base, nn.Conv2d)
    assert _count(bn, nn.BatchNorm2d) == n_conv and _count(bn, nn.BatchNorm1d) == 2
    gaaf = build_model(task, "gaaf")
    assert _count(gaaf, nn.ReLU) == 0 and _count(gaaf, GAAF) == n_act
    assert all(g.config.activation.name == "relu" and g.config.shape.name == "shifted_sigmoid"
               for g in gaaf.modules() if isinstance(g, GAAF))
    both = build_model(task, "bn-gaaf")
    assert _count(both, GAAF) == n_act and _count(both, nn.BatchNorm2d) == n_conv
    assert _count(gaaf, nn.BatchNorm2d) == 0


def test_svhn_cnn_four_convs_pool_after_every_second_three_dense():
    layers = [m for m in build_model("svhn-cnn", "base") if not isinstance(m, nn.ReLU)]
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Conv2d", "Conv2d", "MaxPool2d", "Conv2d", "Conv2d", "MaxPool2d",
                     "Flatten", "Linear", "Linear", "Linear"]
    assert build_model("svhn-cnn", "bn")(torch.rand(3, 3, 32, 32)).shape == (3, 10)


def test_unknown_variant_and_task():
    with pytest.raises(KeyError, match="variant"):
        build_model("mnist-mlp", "bn")
    with pytest.raises(KeyError, match="task"):
        build_model("imagenet", "base")
