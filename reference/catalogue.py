"""The built-in catalogue: every built-in activation and shape function, in one table.

Each entry holds the name, the parameters with their defaults and domains, the default
shape (activations), the reference value and derivative (``formulas.py``, written once
for NumPy and PyTorch), the module classes of torch and of the ecosystem that map to it
(``modules``) and the torch functions that compute it (``functions``), both as dotted
path strings: nothing here imports torch. Every entry carries its second derivative
(phi'' or s'': double backward needs d2y/dx2 = phi'' + 2 s' + g s''); activations that
support the saturation band (``band=True``) also carry the bound m of |phi'|. The
Triton twins (``gaaf_kernels/kernels/functions.py``, optionally the fast ones of
``kernels/fast.py``) are attached by the entry's record in ``kernels/twins.py``, which
the registry stores with the entry's spec. ``adapters/convert_tables.py`` turns ``modules``
into ``convert()``'s rules and ``adapters/functional.py`` turns ``functions`` into the
calls that ``convert(functional=True)`` replaces; neither names an entry itself.

Adding a built-in: write its formula and derivative in ``formulas.py``, add an entry
here, write its Triton twins beside the others and name them in its record in
``gaaf_kernels/kernels/twins.py`` (docs/custom-activations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import formulas as f

#: The activation of GAAF() and gaaf() when none is named (the paper's MLPs use tanh).
DEFAULT_ACTIVATION = "tanh"
#: The default shape of an activation registered without one: the two-sided shape.
DEFAULT_SHAPE = "gaussian"
#: The shape s = 0: GAAF with it is the plain activation.
PLAIN_SHAPE = "none"

TORCH = "torch.nn.modules.activation"
HF = "transformers.activations"
TIMM = ("timm.layers.activations", "timm.layers.activations_me",
        "timm.models.layers.activations", "timm.models.layers.activations_me")


def timm(*names: str) -> tuple[str, ...]:
    """Every module path under which timm defines the classes ``names``."""
    return tuple(f"{path}.{name}" for name in names for path in TIMM)


@dataclass(frozen=True)
class Fixed:
    """A parameter that a class or function fixes: ``nn.ReLU6`` is hardtanh(0, 6)."""

    param: str
    value: float


@dataclass(frozen=True)
class When:
    """The class or function computes the entry only where its attribute or argument
    ``name`` is ``value`` (``default`` where a call leaves the argument out): torch's
    GELU and ``F.gelu`` are gelu for ``approximate="none"``, gelu_tanh for "tanh"."""

    name: str
    value: str | float
    default: str | float | None = None


@dataclass(frozen=True)
class Runs:
    """The class keeps its function in attribute ``attr`` (transformers' GELUActivation:
    ``self.act``), and computes the entry only while that is the entry's torch function
    (``functions``) or the class's own Python twin, the method named ``python``."""

    attr: str
    python: str


@dataclass(frozen=True)
class Function:
    """A torch function that computes the entry, by its dotted path
    (``"torch.nn.functional.elu"``, ``"torch.Tensor.tanh_"``).

    The call's arguments after the input, in this order: ``args``, the arguments that
    become the entry's parameters of the same names (the entry's default where the call
    leaves one out), then ``inplace=False`` if ``inplace`` is "flag". ``inplace`` "yes":
    the function writes into its input (``torch.relu_``). ``when``: a keyword argument
    that selects the entry. ``out``: it takes a keyword ``out=`` tensor. ``fixed``: the
    parameters the function fixes (``F.relu6``).
    """

    path: str
    args: tuple[str, ...] = ()
    when: When | None = None
    inplace: str = "no"  # "no", "yes" or "flag"
    out: bool = False
    fixed: tuple[Fixed, ...] = ()


FN = "torch.nn.functional"


def _pure(*paths: str, out: bool = False) -> tuple[Function, ...]:
    return tuple(Function(path, out=out) for path in paths)


def _in_place(*paths: str, args: tuple[str, ...] = ()) -> tuple[Function, ...]:
    return tuple(Function(path, args, inplace="yes") for path in paths)


def _flagged(*paths: str, args: tuple[str, ...] = ()) -> tuple[Function, ...]:
    """Functions that take ``inplace=False`` after ``args`` (``F.relu``, ``F.elu``)."""
    return tuple(Function(path, args, inplace="flag") for path in paths)


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
    # Classes that become this entry, each with what its parameters come from: an
    # attribute name (copied into the parameter of that name), Fixed, and the conditions
    # When and Runs.
    modules: tuple[tuple[str, tuple[str | Fixed | When | Runs, ...]], ...] = ()
    # Torch functions that compute this entry (convert(functional=True) replaces them).
    functions: tuple[Function, ...] = ()
    # The saturation band (activations): phi'' and m = sup |phi'| from the parameters.
    second_derivative: Callable | None = None
    derivative_bound: Callable[..., float] | None = None
    # How the docs write it (the generated tables of docs/semantics.md): phi(x) or s(x),
    # and for a band m = sup |phi'| in closed form ("" where it has none) and where phi'
    # reaches it.
    formula: str = ""
    band_text: tuple[str, str] | None = None


def _plain(*classes: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((cls, ()) for cls in classes)


_TWO_SIDED = (DEFAULT_SHAPE, (("c", 3.0),))
_ONE_SIDED = ("shifted_sigmoid", (("shift", 4.0), ("slope", 1.0)))


def _activation(name, value, derivative, params=(), default=_ONE_SIDED, modules=(),
                functions=(), second=None, bound=None, formula="", band_text=None,
                **domains) -> Builtin:
    if isinstance(bound, float):
        bound = _constant(bound)
    return Builtin(name, "activation", value, derivative, tuple(params),
                   default_shape=default[0], default_shape_params=default[1],
                   modules=tuple(modules), functions=tuple(functions),
                   second_derivative=second, derivative_bound=bound, formula=formula,
                   band_text=band_text, **domains)


@dataclass(frozen=True)
class _Constant:
    """A bound m that does not depend on the parameters (a class, not a lambda: it
    pickles)."""

    m: float

    def __call__(self, *params: float) -> float:
        return self.m


def _constant(m: float) -> Callable[..., float]:
    return _Constant(m)


def _one_or(p: float) -> float:
    """m = max(1, |p|) where phi' is 1 on one side and p (leaky_relu) or p e^x (elu) on
    the other."""
    return max(1.0, abs(p))


SHAPES: tuple[Builtin, ...] = (
    Builtin("gaussian", "shape", f.gaussian, f.gaussian_derivative, (("c", 3.0),),
            positive=("c",), second_derivative=f.gaussian_second_derivative,
            formula='exp(-x² / c)'),
    Builtin("laplace", "shape", f.laplace, f.laplace_derivative, (("c", 1.0),),
            positive=("c",), second_derivative=f.laplace_second_derivative,
            formula='exp(-\\|x\\| / c)'),
    Builtin("shifted_sigmoid", "shape", f.shifted_sigmoid, f.shifted_sigmoid_derivative,
            (("shift", 4.0), ("slope", 1.0)),
            second_derivative=f.shifted_sigmoid_second_derivative,
            formula='sigmoid(slope·(x + shift))'),
    # SUGAR's surrogates (arXiv:2505.22074): with relu the backward is theirs + O(1/K).
    Builtin("bsilu", "shape", f.bsilu, f.bsilu_derivative, (("alpha", 1.67),),
            second_derivative=f.bsilu_second_derivative,
            formula="B-SiLU'(x) - relu'(x), B-SiLU(x) = (x + alpha)·sigmoid(x) - alpha/2"),
    Builtin("nelu", "shape", f.nelu, f.nelu_derivative, (("alpha", 0.05),),
            positive=("alpha",), second_derivative=f.nelu_second_derivative,
            formula="NeLU'(x) - relu'(x) = 2·alpha·x / (1 + x²)² if x <= 0 else 0"),
    Builtin("constant", "shape", f.constant, f.constant_derivative, (("value", 1.0),),
            second_derivative=f.constant_second_derivative,
            formula='value'),
    Builtin(PLAIN_SHAPE, "shape", f.none, f.none_derivative,
            second_derivative=f.none_second_derivative,
            formula='0 (the plain activation)'),
)

ACTIVATIONS: tuple[Builtin, ...] = (
    _activation("tanh", f.tanh, f.tanh_derivative, default=_TWO_SIDED,
                second=f.tanh_second_derivative, bound=1.0,
                modules=_plain(f"{TORCH}.Tanh", *timm("Tanh")),
                functions=(*_pure("torch.tanh", out=True), *_pure("torch.Tensor.tanh"),
                           *_in_place("torch.tanh_", "torch.Tensor.tanh_")),
                formula='tanh(x)', band_text=('1', 'x = 0')),
    # sigmoid(x) = (1 + tanh(x/2)) / 2: the tanh shape stretched by 2 gives c = 12.
    _activation("sigmoid", f.sigmoid, f.sigmoid_derivative, default=("gaussian", (("c", 12.0),)),
                second=f.sigmoid_second_derivative, bound=0.25,
                modules=_plain(f"{TORCH}.Sigmoid", *timm("Sigmoid")),
                functions=(*_pure("torch.sigmoid", "torch.special.expit", out=True),
                           *_pure("torch.Tensor.sigmoid"),
                           *_in_place("torch.sigmoid_", "torch.Tensor.sigmoid_")),
                formula='1 / (1 + exp(-x))', band_text=('1/4', 'x = 0')),
    _activation("hardtanh", f.hardtanh, f.hardtanh_derivative,
                (("min_val", -1.0), ("max_val", 1.0)), default=_TWO_SIDED,
                ordered=("min_val", "max_val"), second=f.hardtanh_second_derivative,
                bound=1.0,
                modules=[(f"{TORCH}.Hardtanh", ("min_val", "max_val")),
                         (f"{TORCH}.ReLU6", (Fixed("min_val", 0.0), Fixed("max_val", 6.0)))],
                functions=(*_flagged(f"{FN}.hardtanh", args=("min_val", "max_val")),
                           *_in_place(f"{FN}.hardtanh_", args=("min_val", "max_val")),
                           Function(f"{FN}.relu6", inplace="flag",
                                    fixed=(Fixed("min_val", 0.0), Fixed("max_val", 6.0)))),
                formula='clamp(x, min_val, max_val)', band_text=('1', '(min_val, max_val)')),
    _activation("softsign", f.softsign, f.softsign_derivative, default=_TWO_SIDED,
                second=f.softsign_second_derivative, bound=1.0,
                modules=_plain(f"{TORCH}.Softsign"), functions=_pure(f"{FN}.softsign"),
                formula='x / (1 + \\|x\\|)', band_text=('1', 'x = 0')),
    # torch.relu_ is also F.relu_ (the same function).
    _activation("relu", f.relu, f.relu_derivative, modules=_plain(f"{TORCH}.ReLU"),
                functions=(*_pure("torch.relu", "torch.Tensor.relu"),
                           *_in_place("torch.relu_", "torch.Tensor.relu_"),
                           *_flagged(f"{FN}.relu")),
                second=f.relu_second_derivative, bound=1.0,
                formula='max(x, 0)', band_text=('1', 'x > 0')),
    _activation("leaky_relu", f.leaky_relu, f.leaky_relu_derivative,
                (("negative_slope", 0.01),), second=f.leaky_relu_second_derivative,
                bound=_one_or,
                modules=[(f"{TORCH}.LeakyReLU", ("negative_slope",))],
                functions=(*_flagged(f"{FN}.leaky_relu", args=("negative_slope",)),
                           *_in_place(f"{FN}.leaky_relu_", args=("negative_slope",))),
                formula='x if x > 0 else negative_slope·x',
                band_text=('max(1, \\|negative_slope\\|)', 'one side of 0')),
    _activation("elu", f.elu, f.elu_derivative, (("alpha", 1.0),),
                second=f.elu_second_derivative, bound=_one_or,
                # celu(x, alpha) = elu(x, alpha) only for alpha = 1
                modules=[(f"{TORCH}.ELU", ("alpha",)),
                         (f"{TORCH}.CELU", (When("alpha", 1.0),))],
                functions=(*_flagged(f"{FN}.elu", args=("alpha",)),
                           *_in_place(f"{FN}.elu_", args=("alpha",))),
                formula='x if x > 0 else alpha·(exp(x) - 1)',
                band_text=('max(1, \\|alpha\\|)', 'x > 0, or x → 0⁻')),
    _activation("selu", f.selu, f.selu_derivative, modules=_plain(f"{TORCH}.SELU"),
                functions=(*_pure("torch.selu"), *_in_place("torch.selu_"),
                           *_flagged(f"{FN}.selu")),
                second=f.selu_second_derivative, bound=f.SELU_SCALE * f.SELU_ALPHA,
                formula=(f"scale·elu(x, alpha), alpha = {f.SELU_ALPHA!r}, "
                         f"scale = {f.SELU_SCALE!r}"),
                band_text=('scale·alpha', 'x → 0⁻')),
    # torch's GELU and F.gelu are gelu or gelu_tanh by their approximate=.
    _activation("gelu", f.gelu, f.gelu_derivative,
                second=f.gelu_second_derivative, bound=f.GELU_DERIVATIVE_MAX,
                modules=[(f"{TORCH}.GELU", (When("approximate", "none"),)),
                         (f"{HF}.GELUActivation", (Runs("act", "_gelu_python"),)),
                         *_plain(*timm("GELU"))],
                functions=[Function(f"{FN}.gelu", when=When("approximate", "none", "none"))],
                formula='x·(1 + erf(x/√2))/2', band_text=('Φ(√2) + e⁻¹/√π', 'x = √2')),
    # FastGELU writes sqrt(2/pi) to 10 digits, BloomGelu to 8; AccurateGELU and NewGELU
    # spell out the tanh formula.
    _activation("gelu_tanh", f.gelu_tanh, f.gelu_tanh_derivative,
                second=f.gelu_tanh_second_derivative, bound=f.GELU_TANH_DERIVATIVE_MAX,
                modules=[(f"{TORCH}.GELU", (When("approximate", "tanh"),)),
                         (f"{HF}.GELUTanh", (Runs("act", "_gelu_tanh_python"),)),
                         *_plain(f"{HF}.NewGELUActivation", f"{HF}.FastGELUActivation",
                                 f"{HF}.AccurateGELUActivation",
                                 "transformers.models.bloom.modeling_bloom.BloomGelu",
                                 *timm("GELUTanh"))],
                functions=[Function(f"{FN}.gelu", when=When("approximate", "tanh", "none"))],
                formula='x/2·(1 + tanh(√(2/π)·(x + 0.044715x³)))', band_text=('', 'x = 1.418504')),
    _activation("silu", f.silu, f.silu_derivative,
                second=f.silu_second_derivative, bound=f.SILU_DERIVATIVE_MAX,
                modules=_plain(f"{TORCH}.SiLU", f"{HF}.SiLUActivation",
                               *timm("Swish", "SwishMe")),
                functions=_flagged(f"{FN}.silu"),
                formula='x·sigmoid(x)', band_text=('', 'x = 2.399357')),
    _activation("softplus", f.softplus, f.softplus_derivative,
                (("beta", 1.0), ("threshold", 20.0)), positive=("beta",),
                second=f.softplus_second_derivative, bound=1.0,
                modules=[(f"{TORCH}.Softplus", ("beta", "threshold"))],
                functions=[Function(f"{FN}.softplus", ("beta", "threshold"))],
                formula='x if beta·x > threshold else log(1 + exp(beta·x))/beta',
                band_text=('1', 'beta·x > threshold (the linear branch)')),
    _activation("mish", f.mish, f.mish_derivative,
                second=f.mish_second_derivative, bound=f.MISH_DERIVATIVE_MAX,
                modules=[*_plain(f"{TORCH}.Mish"),
                         (f"{HF}.MishActivation", (Runs("act", "_mish_python"),)),
                         *_plain(*timm("Mish", "MishMe"))],
                functions=_flagged(f"{FN}.mish"),
                formula='x·tanh(softplus(x))', band_text=('', 'x = 1.490571')),
    # hardsigmoid(x) = (1 + hardtanh(x/3)) / 2: hardtanh's shape stretched by 3, c = 27.
    _activation("hardsigmoid", f.hardsigmoid, f.hardsigmoid_derivative,
                default=("gaussian", (("c", 27.0),)),
                second=f.hardsigmoid_second_derivative, bound=1.0 / 6.0,
                modules=_plain(f"{TORCH}.Hardsigmoid", *timm("HardSigmoid", "HardSigmoidMe")),
                functions=_flagged(f"{FN}.hardsigmoid"),
                formula='min(max(x + 3, 0), 6) / 6', band_text=('1/6', '(-3, 3)')),
    # hardswish is flat below -3 where relu is flat below 0: relu's shape moved by 3.
    _activation("hardswish", f.hardswish, f.hardswish_derivative,
                default=("shifted_sigmoid", (("shift", 7.0), ("slope", 1.0))),
                second=f.hardswish_second_derivative, bound=1.5,  # phi'(3-) = 3/2
                modules=_plain(f"{TORCH}.Hardswish", *timm("HardSwish", "HardSwishMe")),
                functions=_flagged(f"{FN}.hardswish"),
                formula='x·hardsigmoid(x)', band_text=('3/2', 'x → 3⁻')),
    _activation("quick_gelu", f.quick_gelu, f.quick_gelu_derivative,
                second=f.quick_gelu_second_derivative, bound=f.SILU_DERIVATIVE_MAX,
                modules=_plain(f"{HF}.QuickGELUActivation", *timm("QuickGELU")),
                formula='x·sigmoid(1.702x)', band_text=('', 'x = 2.399357/1.702')),
    # phi' = 2 relu(x) is unbounded: no saturation band (band=True is refused).
    _activation("relu_squared", f.relu_squared, f.relu_squared_derivative,
                second=f.relu_squared_second_derivative,
                modules=_plain(f"{HF}.ReLUSquaredActivation"),
                formula='max(x, 0)²'),
)

BUILTINS: tuple[Builtin, ...] = SHAPES + ACTIVATIONS
