"""convert()'s report cannot be wrong: the example forward finds converted modules that
never run and activation calls that stay plain; held functions, CELU, models converted
twice and bad settings are reported or refused. Small local stand-ins for the model
parts where this went wrong (torchvision, timm, Hugging Face)."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gaaf_kernels import convert, convert_report
from gaaf_kernels.adapters.torch import GAAF


class MambaLikeMixer(nn.Module):
    """Holds ``self.act`` (converted) but computes its activation inline (HF Mamba)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.act = nn.SiLU()

    def forward(self, x):
        h = self.proj(x)
        return h * torch.sigmoid(h)


class BasicConv(nn.Module):
    """torchvision GoogLeNet's BasicConv2d: ``F.relu(x, inplace=True)`` in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return F.relu(self.lin(x), inplace=True)


class GammaAct(nn.Module):
    """timm's GammaAct: ``F.gelu(x).mul_(gamma)``, a fixed scale after a catalogue act."""

    def __init__(self, gamma: float = 1.7) -> None:
        super().__init__()
        self.act_fn = F.gelu
        self.gamma = gamma

    def forward(self, x):
        return self.act_fn(x).mul_(self.gamma)


def run(model, **kwargs):
    report = convert_report(model, **kwargs)
    return report.model, report


def test_never_ran_and_plain_calls_are_reported():
    model = nn.Sequential(MambaLikeMixer(), BasicConv(), nn.Tanh())
    x = torch.randn(3, 4)
    _, report = run(model, example_inputs=(x,))
    assert [c.path for c in report.converted] == ["0.act", "2"]
    assert report.never_ran == ["0.act"]
    assert report.plain_calls == {("torch.sigmoid", "sigmoid"): 1, ("F.relu", "relu"): 1}
    assert not report.complete
    text = report.summary()
    assert "never called in the example forward: 1 modules [0.act]" in text
    assert "1 x F.relu (relu)" in text and "functional=True" in text


def test_without_example_inputs_the_report_says_calls_were_not_checked():
    _, report = run(nn.Sequential(BasicConv(), nn.Tanh()))
    assert not report.checked and not report.complete  # F.relu unseen: not "complete"
    assert "not run, so activation calls" in report.summary()


def test_functional_true_leaves_no_plain_call_and_the_report_says_so():
    model = nn.Sequential(BasicConv(), nn.Tanh())
    _, report = run(model, functional=True, example_inputs=(torch.randn(3, 4),))
    assert report.plain_calls == {} and report.never_ran == [] and report.complete
    assert "every converted module ran, no plain activation call" in report.summary()


def test_the_example_forward_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.ReLU())
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 4)
    state = torch.random.get_rng_state()
    run(model, example_inputs=(x,))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), state)


def test_example_kwargs():
    class Keyword(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.GELU()

        def forward(self, *, x):
            return self.act(x)

    _, report = run(Keyword(), example_kwargs={"x": torch.randn(2)})
    assert report.checked and report.never_ran == [] and report.complete


def test_held_activation_functions_are_reported():
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    model = nn.Sequential(layer, GammaAct())
    _, report = run(model)
    reasons = {item.path: item.reason for item in report.left_alone}
    assert "calls F.relu (relu) held in self.activation" in reasons["0"]
    assert "calls F.gelu (gelu) held in self.act_fn" in reasons["1"]
    _, report = run(model, example_inputs=(torch.randn(5, 2, 8),))
    assert report.plain_calls[("F.gelu", "gelu")] == 1
    assert report.plain_calls[("F.relu", "relu")] == 1


def test_celu_alpha_one_is_elu_other_alphas_are_reported():
    model = nn.Sequential(nn.CELU(), nn.CELU(alpha=0.5))
    _, report = run(model)
    assert [(c.path, c.activation) for c in report.converted] == [("0", "elu")]
    assert isinstance(model[0], GAAF) and model[0].config.activation_params == (1.0,)
    assert report.left_alone[0].reason == (
        "alpha=0.5: CELU is elu only for alpha=1.0; no catalogue activation with this formula "
        "for alpha=0.5")


def test_converting_twice_reports_what_is_already_there():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Tanh())
    convert(model)
    _, report = run(model)
    assert report.converted == [] and report.already == ["1", "2"]
    assert "already GAAF before this call: 2 modules [1, 2]" in report.summary()


@pytest.mark.parametrize("kwargs,error,match", [
    ({"K": -1}, ValueError, "K must be finite and > 0"),
    ({"shape": "nope"}, ValueError, "unknown shape 'nope'; registered shapes"),
    ({"shape": "gaussian", "shape_params": {"width": 2}}, ValueError, "unknown parameter"),
    ({"shape_params": {"c": 2.0}}, ValueError, "do not fit activation 'relu'"),
    ({"backend": "cuda"}, ValueError, "unknown backend 'cuda'; valid backends"),
    ({"band": "yes"}, TypeError, "band must be True or False"),
])
def test_bad_settings_raise_before_the_model_changes(kwargs, error, match):
    model = nn.Sequential(nn.Tanh(), nn.ReLU())
    with pytest.raises(error, match=match):
        convert(model, **kwargs)
    assert isinstance(model[0], nn.Tanh) and isinstance(model[1], nn.ReLU)


def test_band_on_an_activation_without_one_is_reported_not_raised():
    from transformers.activations import ReLUSquaredActivation

    model = nn.Sequential(nn.Tanh(), ReLUSquaredActivation())
    _, report = run(model, band=True)
    assert [c.path for c in report.converted] == ["0"]
    assert "relu_squared" in report.left_alone[0].reason


def test_incomplete_conversion_warns_without_report():
    model = nn.Sequential(BasicConv(), nn.Tanh())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(model, example_inputs=(torch.randn(2, 4),))
    assert any("found plain activation calls in the example forward: 1 x F.relu" in str(w.message)
               for w in caught)


def test_real_hugging_face_models_mamba_and_whisper():
    """Mamba's mixer holds act but never calls it; Whisper's stem calls F.gelu."""
    from transformers import MambaConfig, MambaModel, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    mamba = MambaModel(MambaConfig(vocab_size=50, hidden_size=16, state_size=4,
                                   num_hidden_layers=2, expand=2, conv_kernel=4))
    _, report = run(mamba, example_inputs=(torch.randint(0, 50, (1, 6)),))
    assert len(report.converted) == 2
    assert report.never_ran == ["layers.0.mixer.act", "layers.1.mixer.act"]
    assert report.plain_calls[("F.silu", "silu")] > 0
    whisper = WhisperEncoder(WhisperConfig(
        vocab_size=60, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, num_mel_bins=8, max_source_positions=8, max_target_positions=8,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1))
    _, report = run(whisper, example_inputs=(torch.randn(1, 8, 16),))
    assert report.never_ran == [] and report.plain_calls == {("F.gelu", "gelu"): 2}


# --- timm's GammaAct as timm builds it: get_act_fn("gelu") is timm's own gelu function ---

def _timm_function(name: str, body):
    """A function with the module path and name of timm's (timm/layers/activations.py)."""
    def fn(x, inplace: bool = False):
        return body(x)
    fn.__module__, fn.__name__, fn.__qualname__ = "timm.layers.activations", name, name
    return fn


timm_gelu = _timm_function("gelu", F.gelu)
timm_gelu_tanh = _timm_function("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"))


class TimmGammaAct(nn.Module):
    """timm.models.nfnet.GammaAct: ``self.act_fn(x, inplace=self.inplace).mul_(self.gamma)``
    with ``act_fn = get_act_fn(act_type)``."""

    def __init__(self, act_fn=timm_gelu, gamma: float = 1.7015043497085571) -> None:
        super().__init__()
        self.act_fn = act_fn
        self.gamma = gamma
        self.inplace = False

    def forward(self, x):
        return self.act_fn(x, inplace=self.inplace).mul_(self.gamma)


TimmGammaAct.__module__ = "timm.models.nfnet"
TimmGammaAct.__qualname__ = TimmGammaAct.__name__ = "GammaAct"


def test_timm_gamma_act_with_timm_gelu_is_reported_with_its_scale():
    model = nn.Sequential(nn.Linear(4, 4), TimmGammaAct(), nn.Linear(4, 4),
                          TimmGammaAct(timm_gelu_tanh, gamma=1.0))
    _, report = run(model)
    assert report.converted == [] and not report.complete
    reasons = {item.path: item.reason for item in report.left_alone}
    assert reasons["1"].startswith("calls timm.layers.activations.gelu (gelu) held in "
                                   "self.act_fn and multiplies it by a fixed 1.7015043")
    assert "functional=True) replaces the gelu call and keeps the scale" in reasons["1"]
    assert "computes exactly gelu_tanh: map the class with activation_map={GammaAct: " \
           "'gelu_tanh'}" in reasons["3"]
    _, report = run(model, example_inputs=(torch.randn(2, 4),))
    assert report.plain_calls == {("F.gelu", "gelu"): 1, ("F.gelu", "gelu_tanh"): 1}


def test_functional_true_replaces_the_call_inside_timm_gamma_act():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), TimmGammaAct())
    x = torch.randn(3, 4, dtype=torch.float64)
    model = model.double()
    want = model[1].gamma * F.gelu(model[0](x))
    _, report = run(model, functional=True, shape="none", example_inputs=(x,))
    assert report.plain_calls == {} and report.functional.converted
    torch.testing.assert_close(model(x), want, rtol=1e-12, atol=1e-12)


def test_a_module_holding_a_function_it_does_not_scale_gets_no_scale_in_its_reason():
    class Gated(nn.Module):  # act_fn(x) * x: not a fixed scale
        def __init__(self) -> None:
            super().__init__()
            self.act_fn = F.silu

        def forward(self, x):
            return self.act_fn(x) * x

    _, report = run(nn.Sequential(Gated()))
    assert report.left_alone[0].reason == (
        "calls F.silu (silu) held in self.act_fn, which convert() cannot replace; "
        "convert(..., functional=True) replaces the call")


def test_band_on_a_model_whose_activations_all_lack_one_is_a_bad_setting():
    from transformers.activations import ReLUSquaredActivation

    model = nn.Sequential(nn.Linear(2, 2), ReLUSquaredActivation())
    with pytest.raises(ValueError, match="no activation of the model has a band "
                                         r"\(relu_squared\); activations with a band: tanh"):
        convert(model, band=True)
    assert isinstance(model[1], ReLUSquaredActivation)


@pytest.mark.parametrize("kwargs,match", [
    ({"K": "2"}, "K must be a real number"),
    ({"K": True}, "K must be a real number"),
    ({"shape": 3}, "shape must be a shape name or None, got 3; registered shapes: gaussian"),
    ({"shape_params": [1]}, r"shape_params must map parameter names to numbers"),
])
def test_settings_of_the_wrong_type_raise_type_error_before_the_model_changes(kwargs, match):
    model = nn.Sequential(nn.Tanh())
    with pytest.raises(TypeError, match=match):
        convert(model, **kwargs)
    assert isinstance(model[0], nn.Tanh)


def test_a_second_convert_checks_the_gaaf_modules_already_there():
    model = nn.Sequential(MambaLikeMixer(), nn.Tanh())
    convert(model)
    _, report = run(model, example_inputs=(torch.randn(2, 4),))
    assert report.already == ["0.act", "1"] and report.never_ran == ["0.act"]
    assert not report.complete


def test_functional_twice_raises_before_the_model_changes():
    model = nn.Sequential(BasicConv())
    convert(model, functional=True)
    model.append(nn.Tanh())
    with pytest.raises(ValueError, match="already converted with functional=True"):
        convert(model, functional=True)
    assert isinstance(model[1], nn.Tanh)


def test_calls_of_activations_not_selected_are_not_counted_as_plain():
    model = nn.Sequential(BasicConv(), nn.GELU())
    _, report = run(model, activations={"gelu"}, example_inputs=(torch.randn(2, 4),))
    assert report.plain_calls == {} and report.complete


def test_a_failing_example_forward_leaves_the_model_unconverted():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with pytest.raises(RuntimeError) as caught:
        convert(model, functional=True, example_inputs=(torch.randn(2, 3),))
    assert "raised by the example forward" in "".join(caught.value.__notes__)
    assert isinstance(model[1], nn.Tanh) and type(model) is nn.Sequential
    assert not hasattr(model, "_gaaf_functional")


def test_example_inputs_that_are_not_a_tuple_raise_before_the_model_changes():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    with pytest.raises(TypeError, match=r"example_inputs must be a tuple .* e.g. "
                                        r"example_inputs=\(x,\); got Tensor"):
        convert(model, example_inputs=torch.randn(2, 4))  # tuple(x) would split its rows
    with pytest.raises(TypeError, match="example_kwargs must map"):
        convert(model, example_kwargs=[torch.randn(2, 4)])
    assert isinstance(model[1], nn.Tanh)


def test_unknown_activation_classes_are_probed_for_a_scaled_catalogue_activation():
    class ScaledAct(nn.Module):  # a GammaAct variant that calls F.gelu itself
        def forward(self, x):
            return 1.7015 * F.gelu(x)

    class MyTanhGELU(nn.Module):
        def forward(self, x):
            return F.gelu(x, approximate="tanh")

    class SquashAct(nn.Module):  # reads like an activation; no catalogue formula
        def forward(self, x):
            return x / (1 + x.abs()) ** 2

    class Extract(nn.Module):  # "act" inside a word: not an activation
        def forward(self, x):
            return F.relu(x)

    model = nn.Sequential(ScaledAct(), MyTanhGELU(), SquashAct(), Extract())
    _, report = run(model)
    reasons = {item.path: item.reason for item in report.left_alone}
    assert reasons["0"].startswith("unrecognized class that computes 1.7015 * gelu on probe "
                                   "points: no GAAF activation has a scale")
    assert reasons["1"] == ("unrecognized class that computes gelu_tanh on probe points; map "
                            "it with activation_map={MyTanhGELU: 'gelu_tanh'}")
    assert reasons["2"] == "unrecognized activation class; map it with activation_map"
    assert "3" not in reasons


def test_activation_calls_without_a_gaaf_equivalent_are_reported_with_the_reason():
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.act = nn.Tanh()

        def forward(self, x):
            return F.logsigmoid(self.act(self.lin(F.celu(x))))

    _, report = run(Head(), example_inputs=(torch.randn(2, 4),))
    assert report.plain_calls == {} and report.never_ran == []
    assert report.unreplaceable_calls == {
        ("F.celu", "elu only for alpha=1, and calls of celu are not replaced "
                   "(nn.CELU(alpha=1) modules are)"): 1,
        ("F.logsigmoid", "no catalogue activation with this formula"): 1}
    assert not report.complete
    assert "1 x F.logsigmoid: no catalogue activation" in report.summary()
