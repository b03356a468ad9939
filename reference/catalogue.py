"""The built-in catalogue: every built-in activation and shape function, in one table.

Each entry holds the name, the parameters with their defaults and domains, the default
shape (activations), the reference value and derivative (``formulas.py``, written once
for NumPy and PyTorch) and the module classes of torch and of the ecosystem that map to
it (as ``module.path.ClassName`` strings: nothing here imports torch). Activations that
support the saturation band (``band=True``) also carry phi'' and the bound m of |phi'|.
The Triton twins
are found by the entry's name (``<name>_value``, ``<name>_derivative``,
``<name>_second_derivative`` in
``gaaf_kernels/kernels/functions.py``, and optionally the fast twins of
``kernels/fast.py``); ``adapters/convert_tables.py`` turns ``modules`` into rules.

Adding a built-in: write its formula and derivative in ``formulas.py``, add an entry
here, and write its Triton twins beside the others (docs/custom-activations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import formulas as f

#: The activation of GAAF() and gaaf() when none is named (the paper's MLPs use tanh).
DEFAULT_ACTIVATION = "tanh"

TORCH = "torch.nn.modules.activation"
HF = "transformers.activations"
TIMM = ("timm.layers.activations", "timm.layers.activations_me",
        "timm.models.layers.activations", "timm.models.layers.activations_me")


def timm(*names: str) -> tuple[str, ...]:
    """Every module path under which timm defines the classes ``names``."""
    return tuple(f"{path}.{name}" for name in names for path in TIMM)


@dataclass(frozen=True)
class Builtin:
    """One catalogue entry."""

    name: str
    kind: str  # "activation" or "shape"
    value: Callable
    derivative: Callable
    params: tuple[tuple[str, float], ...] = ()
    positive: tuple[str, ...] = ()  # parameters that must be > 0
    ordered: tuple[str, ...] = ()  # parameters that must not decrease in this order
    default_shape: str | None = None
    default_shape_params: tuple[tuple[str, float], ...] = ()
    # Classes that become this entry, each with the attributes copied into its parameters.
    modules: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The saturation band (activations): phi'' and m = sup |phi'| from the parameters.
    second_derivative: Callable | None = None
    derivative_bound: Callable[..., float] | None = None


def _plain(*classes: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((cls, ()) for cls in classes)


_TWO_SIDED = ("gaussian", (("c", 3.0),))
_ONE_SIDED = ("shifted_sigmoid", (("shift", 4.0), ("slope", 1.0)))


def _activation(name, value, derivative, params=(), default=_ONE_SIDED, modules=(),
                second=None, bound=None, **domains) -> Builtin:
    if isinstance(bound, float):
        bound = _constant(bound)
    return Builtin(name, "activation", value, derivative, tuple(params),
                   default_shape=default[0], default_shape_params=default[1],
                   modules=tuple(modules), second_derivative=second,
                   derivative_bound=bound, **domains)


def _constant(m: float) -> Callable[..., float]:
    return lambda *params: m


def _one_or(p: float) -> float:
    """m = max(1, |p|) where phi' is 1 on one side and p (leaky_relu) or p e^x (elu) on
    the other."""
    return max(1.0, abs(p))


SHAPES: tuple[Builtin, ...] = (
    Builtin("gaussian", "shape", f.gaussian, f.gaussian_derivative, (("c", 3.0),),
            positive=("c",)),
    Builtin("laplace", "shape", f.laplace, f.laplace_derivative, (("c", 1.0),),
            positive=("c",)),
    Builtin("shifted_sigmoid", "shape", f.shifted_sigmoid, f.shifted_sigmoid_derivative,
            (("shift", 4.0), ("slope", 1.0))),
    Builtin("constant", "shape", f.constant, f.constant_derivative, (("value", 1.0),)),
    Builtin("none", "shape", f.none, f.none_derivative),
)

ACTIVATIONS: tuple[Builtin, ...] = (
    _activation("tanh", f.tanh, f.tanh_derivative, default=_TWO_SIDED,
                second=f.tanh_second_derivative, bound=1.0,
                modules=_plain(f"{TORCH}.Tanh", *timm("Tanh"))),
    # sigmoid(x) = (1 + tanh(x/2)) / 2: the tanh shape stretched by 2 gives c = 12.
    _activation("sigmoid", f.sigmoid, f.sigmoid_derivative, default=("gaussian", (("c", 12.0),)),
                second=f.sigmoid_second_derivative, bound=0.25,
                modules=_plain(f"{TORCH}.Sigmoid", *timm("Sigmoid"))),
    _activation("hardtanh", f.hardtanh, f.hardtanh_derivative,
                (("min_val", -1.0), ("max_val", 1.0)), default=_TWO_SIDED,
                ordered=("min_val", "max_val"), second=f.hardtanh_second_derivative,
                bound=1.0,
                modules=[(f"{TORCH}.Hardtanh", ("min_val", "max_val")),
                         (f"{TORCH}.ReLU6", ("min_val", "max_val"))]),
    _activation("softsign", f.softsign, f.softsign_derivative, default=_TWO_SIDED,
                second=f.softsign_second_derivative, bound=1.0,
                modules=_plain(f"{TORCH}.Softsign")),
    _activation("relu", f.relu, f.relu_derivative, modules=_plain(f"{TORCH}.ReLU"),
                second=f.relu_second_derivative, bound=1.0),
    _activation("leaky_relu", f.leaky_relu, f.leaky_relu_derivative,
                (("negative_slope", 0.01),), second=f.leaky_relu_second_derivative,
                bound=_one_or,
                modules=[(f"{TORCH}.LeakyReLU", ("negative_slope",))]),
    _activation("elu", f.elu, f.elu_derivative, (("alpha", 1.0),),
                second=f.elu_second_derivative, bound=_one_or,
                modules=[(f"{TORCH}.ELU", ("alpha",))]),
    _activation("selu", f.selu, f.selu_derivative, modules=_plain(f"{TORCH}.SELU"),
                second=f.selu_second_derivative, bound=f.SELU_SCALE * f.SELU_ALPHA),
    # torch.nn.GELU also becomes gelu_tanh for approximate="tanh" (convert_tables.py).
    _activation("gelu", f.gelu, f.gelu_derivative,
                second=f.gelu_second_derivative, bound=f.GELU_DERIVATIVE_MAX,
                modules=_plain(f"{TORCH}.GELU", f"{HF}.GELUActivation", *timm("GELU"))),
    # FastGELU writes sqrt(2/pi) to 10 digits, BloomGelu to 8; AccurateGELU and NewGELU
    # spell out the tanh formula.
    _activation("gelu_tanh", f.gelu_tanh, f.gelu_tanh_derivative,
                second=f.gelu_tanh_second_derivative, bound=f.GELU_TANH_DERIVATIVE_MAX,
                modules=_plain(f"{HF}.GELUTanh", f"{HF}.NewGELUActivation",
                               f"{HF}.FastGELUActivation", f"{HF}.AccurateGELUActivation",
                               "transformers.models.bloom.modeling_bloom.BloomGelu",
                               *timm("GELUTanh"))),
    _activation("silu", f.silu, f.silu_derivative,
                second=f.silu_second_derivative, bound=f.SILU_DERIVATIVE_MAX,
                modules=_plain(f"{TORCH}.SiLU", f"{HF}.SiLUActivation",
                               *timm("Swish", "SwishMe"))),
    _activation("softplus", f.softplus, f.softplus_derivative,
                (("beta", 1.0), ("threshold", 20.0)), positive=("beta",),
                second=f.softplus_second_derivative, bound=1.0,
                modules=[(f"{TORCH}.Softplus", ("beta", "threshold"))]),
    _activation("mish", f.mish, f.mish_derivative,
                second=f.mish_second_derivative, bound=f.MISH_DERIVATIVE_MAX,
                modules=_plain(f"{TORCH}.Mish", f"{HF}.MishActivation",
                               *timm("Mish", "MishMe"))),
    # hardsigmoid(x) = (1 + hardtanh(x/3)) / 2: hardtanh's shape stretched by 3, c = 27.
    _activation("hardsigmoid", f.hardsigmoid, f.hardsigmoid_derivative,
                default=("gaussian", (("c", 27.0),)),
                second=f.hardsigmoid_second_derivative, bound=1.0 / 6.0,
                modules=_plain(f"{TORCH}.Hardsigmoid", *timm("HardSigmoid", "HardSigmoidMe"))),
    # hardswish is flat below -3 where relu is flat below 0: relu's shape moved by 3.
    _activation("hardswish", f.hardswish, f.hardswish_derivative,
                default=("shifted_sigmoid", (("shift", 7.0), ("slope", 1.0))),
                second=f.hardswish_second_derivative, bound=1.5,  # phi'(3-) = 3/2
                modules=_plain(f"{TORCH}.Hardswish", *timm("HardSwish", "HardSwishMe"))),
    _activation("quick_gelu", f.quick_gelu, f.quick_gelu_derivative,
                second=f.quick_gelu_second_derivative, bound=f.SILU_DERIVATIVE_MAX,
                modules=_plain(f"{HF}.QuickGELUActivation", *timm("QuickGELU"))),
    # phi' = 2 relu(x) is unbounded: no saturation band (band=True is refused).
    _activation("relu_squared", f.relu_squared, f.relu_squared_derivative,
                second=f.relu_squared_second_derivative,
                modules=_plain(f"{HF}.ReLUSquaredActivation")),
)

BUILTINS: tuple[Builtin, ...] = SHAPES + ACTIVATIONS
