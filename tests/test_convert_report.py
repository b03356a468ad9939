"""convert()'s report cannot be wrong: the example forward finds converted modules that
never run and activation calls that stay plain; held functions, CELU, models converted
twice and bad settings are reported or refused. Small local stand-ins for the model
parts where this went wrong (torchvision, timm, Hugging Face)."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gaaf_kernels import convert
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
    return convert(model, report=True, **kwargs)


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
    assert not report.checked
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
    assert report.left_alone[0].reason == "alpha=0.5: no catalogue activation with this formula"


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
