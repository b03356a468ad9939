"""convert() on real Hugging Face models (tiny random configs, no download), and on timm
models when timm is importable.

The bound on what conversion may change: GAAF adds g(x) s(x) to each activation, with
|g| <= 0.5/K and, for the gaussian shape, 0 < s <= 1. So every activation output moves by
at most delta = 0.5/K, and to first order any linear readout L = sum(r * out) of the
model moves by at most delta * sum over activation layers of |dL/da|, the gradient of L
with respect to that layer's output in the unconverted model. With K = 1e4 in float64
the second-order terms are ~1e-4 of that; the test allows a factor 2. Taking r =
sign(out_converted - out_plain) makes L's change the l1 norm of the output difference.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
from torch import nn

from gaaf_kernels import reference
from gaaf_kernels.adapters.convert_tables import NOT_ACTIVATIONS, class_key
from gaaf_kernels.adapters.torch import GAAF, convert, convert_report

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

K = 1e4
DELTA = 0.5 / K
SHAPE = {"shape": "gaussian", "shape_params": {"c": 3.0}, "K": K}  # s = exp(-x^2/3)
IDS = torch.randint(0, 99, (2, 8), generator=torch.Generator().manual_seed(0))
PIXELS = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _models():
    t = transformers
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 37}
    return {
        "bert": (lambda: t.BertForMaskedLM(t.BertConfig(
            **small, vocab_size=99, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)),
            {"input_ids": IDS}),
        "gpt2": (lambda: t.GPT2LMHeadModel(t.GPT2Config(
            n_embd=32, n_layer=2, n_head=2, vocab_size=99, n_positions=16, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)),
            {"input_ids": IDS}),
        "llama": (lambda: t.LlamaForCausalLM(t.LlamaConfig(
            **small, num_key_value_heads=1, vocab_size=99, max_position_embeddings=16)),
            {"input_ids": IDS}),
        "vit": (lambda: t.ViTForImageClassification(t.ViTConfig(
            **small, image_size=16, patch_size=4, num_labels=3, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)), {"pixel_values": PIXELS}),
        "t5": (lambda: t.T5ForConditionalGeneration(t.T5Config(
            d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=2, vocab_size=99,
            feed_forward_proj="gated-gelu", dropout_rate=0.0)),
            {"input_ids": IDS, "decoder_input_ids": IDS}),
        "clip": (lambda: t.CLIPTextModel(t.CLIPTextConfig(
            **small, vocab_size=99, max_position_embeddings=16, dropout=0.0,
            attention_dropout=0.0, bos_token_id=0, eos_token_id=1)), {"input_ids": IDS}),
    }


MODELS = _models()


def _is_activation(module: nn.Module) -> bool:
    """By class: transformers' activation classes and torch.nn's (not softmax/attention)."""
    key = class_key(type(module))
    return (type(module).__module__ in ("transformers.activations",
                                        "torch.nn.modules.activation")
            and key not in NOT_ACTIVATIONS)


def _build(name: str):
    factory, inputs = MODELS[name]
    torch.manual_seed(0)
    model = factory().double().eval()
    missing = [n for n in ("quick_gelu",) if n not in reference.activation_names()]
    if name == "clip" and missing:
        pytest.skip(f"activation {missing[0]} not registered yet")
    return model, inputs


def _output(model, inputs):
    return model(**inputs)[0]


@pytest.mark.parametrize("name", list(MODELS))
def test_model_converts_fully_and_changes_only_by_what_gaaf_adds(name):
    """Converted by class, within the bound, backward runs, the gradient gains dy s(x)."""
    plain, inputs = _build(name)
    acts = {path: m for path, m in plain.named_modules() if _is_activation(m)}
    assert acts, f"{name} has no activation modules to convert"
    report = convert_report(copy.deepcopy(plain), **SHAPE)
    model = report.model

    # Every activation converted, none left, checked by class.
    assert not [m for m in model.modules() if _is_activation(m)]
    assert report.left_alone == []
    converted = {path: m for path, m in model.named_modules() if isinstance(m, GAAF)}
    assert set(converted) == set(acts)

    # Per layer: on the inputs the plain model gives it, each GAAF is within 0.5/K.
    seen, outputs = {}, {}

    def keep(path):
        def hook(module, args, out):
            seen[path] = args[0].detach()
            out.retain_grad()
            outputs[path] = out
        return hook

    handles = [m.register_forward_hook(keep(p)) for p, m in acts.items()]
    out_plain = _output(plain, inputs)
    for h in handles:
        h.remove()
    worst = 0.0
    for path, x in seen.items():
        with torch.no_grad():
            step = (converted[path](x) - acts[path](x)).abs().max().item()
        assert step <= DELTA + 1e-15, (path, step)
        worst = max(worst, step)
    assert worst > 0.1 * DELTA  # the sawtooth is there

    # End to end: the l1 difference of the outputs, against the first-order bound.
    out = _output(model, inputs)
    diff = (out - out_plain).detach()
    (diff.sign() * out_plain).sum().backward()
    bound = DELTA * sum(o.grad.abs().sum().item() for o in outputs.values())
    l1 = diff.abs().sum().item()
    assert 0 < l1 <= 2 * bound, (l1, bound)

    # Backward runs, and the gradient at one layer gains dy * s(x).
    _gradient_gains_dy_times_s(plain, model, inputs)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _gradient_gains_dy_times_s(plain, model, inputs):
    """At the last GAAF layer: dx = dy (phi'(x) + s(x) + g s'), |g| <= 0.5/K, |s'| < 0.5."""
    path, layer = [(p, m) for p, m in model.named_modules() if isinstance(m, GAAF)][-1]
    got = {}

    def on_forward(module, args, out):
        got["x"] = args[0].detach()

    def on_backward(module, grad_in, grad_out):
        got["dx"], got["dy"] = grad_in[0], grad_out[0]

    handles = [layer.register_forward_hook(on_forward),
               layer.register_full_backward_hook(on_backward)]
    model.zero_grad()
    _output(model, inputs).pow(2).sum().backward()
    for h in handles:
        h.remove()
    x, dx, dy = got["x"].requires_grad_(), got["dx"], got["dy"]
    (plain_dx,) = torch.autograd.grad(plain.get_submodule(path)(x), x, dy)  # dy * phi'(x)
    gain = dy * torch.exp(-x.detach() ** 2 / 3.0)  # dy * s(x), the gaussian with c = 3
    error = dy.abs() * DELTA * 0.5 + 1e-12
    assert ((dx - plain_dx - gain).abs() <= error).all()
    assert gain.abs().max() > 100 * error.max()  # the gain is far above the error term


def test_torch_compile_of_a_converted_model_trains_a_step():
    torch.manual_seed(0)
    model = convert(transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=32, n_layer=1, n_head=2, vocab_size=99, n_positions=16, bos_token_id=0,
        eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)))
    assert sum(isinstance(m, GAAF) for m in model.modules()) == 1
    batch = {"input_ids": IDS, "labels": IDS}
    eager_loss = model(**batch).loss.item()
    # aot_eager: Dynamo and AOTAutograd trace the GAAF operators as Inductor would see
    # them, without a C++ build of the whole model (minutes on 2 cores).
    loss = torch.compile(model, backend="aot_eager")(**batch).loss
    assert loss.item() == pytest.approx(eager_loss, rel=1e-5)
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert model(**batch).loss.item() < loss.item()


def test_functional_mode_on_a_model_and_checkpointing_refused():
    plain, inputs = _build("llama")
    modules_only = convert(copy.deepcopy(plain), **SHAPE)
    report = convert_report(copy.deepcopy(plain), functional=True, **SHAPE)
    both = report.model
    with torch.no_grad():
        torch.testing.assert_close(_output(both, inputs), _output(modules_only, inputs),
                                   rtol=0, atol=0)
    assert report.functional.left_alone == {}
    both.gradient_checkpointing_enable()
    both.train()
    with pytest.raises(RuntimeError, match="activation checkpointing"):
        _output(both, inputs)


TIMM_MODELS = ["mobilenetv3_small_050", "vit_tiny_patch16_224"]


@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_model_converts_fully(name):
    timm = pytest.importorskip("timm", reason="timm is not installed (it needs torchvision)")
    torch.manual_seed(0)
    plain = timm.create_model(name, pretrained=False, num_classes=3).double().eval()
    report = convert_report(copy.deepcopy(plain), **SHAPE)
    model = report.model
    assert report.left_alone == [] and report.converted
    assert not [m for m in model.modules() if type(m).__module__.startswith("timm.layers.act")
                or _is_activation(m)]
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)
    with torch.no_grad():
        diff = (model(x) - plain(x)).abs().max().item()
    assert 0 < diff
    model(x).sum().backward()
