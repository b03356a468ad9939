"""The PyTorch composite: the reference formulas evaluated with torch ops.

Used by ``backend="torch"`` and by ``"auto"`` on CPU. It is fused by TorchInductor where
compilation works (one kernel per pass, like the Triton path; compiled without Dynamo,
whose per-call entry cost was as large as the work at training sizes), and falls back
to eager PyTorch with a one-time warning where it does not.
Set ``GAAF_COMPILE=0`` to skip compilation (eager, many small kernels).
"""

from __future__ import annotations

import os
import types
import warnings
from types import SimpleNamespace

import torch

from gaaf_kernels.kernels.layout import flat, in_layout_of, unflat
from gaaf_kernels.reference import Resolved
from gaaf_kernels.reference import backward as reference_backward
from gaaf_kernels.reference import forward as reference_forward
from gaaf_kernels.reference.formulas import sawtooth

TORCH = SimpleNamespace(
    name="torch",
    exp=torch.exp,
    log=torch.log,
    sqrt=torch.sqrt,
    log1p=torch.log1p,
    expm1=torch.expm1,
    tanh=torch.tanh,
    erf=torch.erf,
    abs=torch.abs,
    sign=torch.sign,
    floor=torch.floor,
    where=torch.where,
    minimum=torch.minimum,
    maximum=torch.maximum,
    isnan=torch.isnan,
    isinf=torch.isinf,
    isfinite=torch.isfinite,
    zeros_like=torch.zeros_like,
)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _unpack(scalars: torch.Tensor, n_act: int, n_shape: int):
    """Split [K, activation params..., shape params...] (already in the compute dtype)."""
    k = scalars[0]
    act = [scalars[1 + i] for i in range(n_act)]
    shp = [scalars[1 + n_act + i] for i in range(n_shape)]
    return k, act, shp


def _forward_math(x, scalars, act_value, shape_value, n_act: int, n_shape: int):
    xc = x.to(_compute_dtype(x.dtype))
    k, ap, sp = _unpack(scalars.to(xc.dtype), n_act, n_shape)
    y = act_value(TORCH, xc, *ap) + sawtooth(TORCH, xc, k) * shape_value(TORCH, xc, *sp)
    return torch.where(xc != xc, xc, y).to(x.dtype)  # x != x: NaN test that vectorizes


def _backward_math(x, dy, scalars, act_derivative, shape_value, shape_derivative,
                   n_act: int, n_shape: int):
    xc = x.to(_compute_dtype(x.dtype))
    k, ap, sp = _unpack(scalars.to(xc.dtype), n_act, n_shape)
    local = (act_derivative(TORCH, xc, *ap) + shape_value(TORCH, xc, *sp)
             + sawtooth(TORCH, xc, k) * shape_derivative(TORCH, xc, *sp))
    dx = dy.to(xc.dtype) * local
    return torch.where(xc != xc, xc, dx).to(x.dtype)


def compile_enabled() -> bool:
    return os.environ.get("GAAF_COMPILE", "1").lower() not in ("0", "false", "off", "no")


_compiled: dict = {}
_failed: set = set()
_warned = False
#: Length of the 1-d example tensors traced with symbolic sizes (any length >= 2 works:
#: 0 and 1 would be specialized on).
_EXAMPLE_LENGTH = 17


def own_code(fn, key):
    """A copy of ``fn`` with its own code object.

    Dynamo keeps its compiled variants (and its recompile limit) per code object; one
    copy per (pass, activation, shape, dtype, device) keeps the variants from crowding
    out each other.
    """
    name = "_".join(str(getattr(part, "name", part)).replace("torch.", "") for part in key)
    names = {"co_name": name}
    if hasattr(fn.__code__, "co_qualname"):  # Python 3.11+
        names["co_qualname"] = name
    code = fn.__code__.replace(**names)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def _inductor_artifact(math, constants: tuple, examples: list[torch.Tensor]):
    """``math`` compiled by Inductor for 1-d tensors of any length, without Dynamo.

    The graph is traced once with symbolic sizes (``make_fx``) and compiled with
    ``torch._inductor.standalone_compile``. A call then costs Inductor's own wrapper
    (~6 us), where a ``torch.compile``d function adds Dynamo's frame entry, guards and
    AOT wrappers (~25-40 us per call; see docs/performance.md).
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    def graph(*tensors):
        return math(*tensors, *constants)

    with torch.no_grad():
        traced = make_fx(graph, tracing_mode="symbolic")(*examples)
    return torch._inductor.standalone_compile(traced, examples, dynamic_shapes="from_graph")


def _build(key, math, constants: tuple, tensors: tuple[torch.Tensor, ...]):
    """The fastest compiled form that builds: Inductor alone, else ``torch.compile``."""
    *data, scalars = tensors
    examples = [torch.zeros(_EXAMPLE_LENGTH, dtype=t.dtype, device=t.device) for t in data]
    examples.append(scalars)
    try:
        artifact = _inductor_artifact(math, constants, examples)
        return lambda *ts: artifact(*[t.detach() for t in ts])
    except Exception:  # an older torch without standalone_compile, or a tracing failure
        compiled = torch.compile(own_code(math, key), dynamic=True, fullgraph=True)
        return lambda *ts: compiled(*ts, *constants)


def _run(key, math, constants: tuple, *tensors: torch.Tensor) -> torch.Tensor:
    """``math(*tensors, *constants)``, compiled once per key; eager after a failure.

    A compiler that is missing or broken costs one warning, never a wrong answer.
    """
    global _warned
    if compile_enabled() and key not in _failed:
        try:
            compiled = _compiled.get(key)
            if compiled is None:
                compiled = _compiled[key] = _build(key, math, constants, tensors)
            return compiled(*tensors)
        except Exception as exc:
            _failed.add(key)
            _compiled.pop(key, None)
            if not _warned:
                _warned = True
                warnings.warn(
                    f"gaaf_kernels: compiling the PyTorch composite failed ({exc!r:.200}); "
                    "using eager PyTorch (unfused, slower)", RuntimeWarning, stacklevel=3)
    return math(*tensors, *constants)


_scalar_cache: dict = {}


def _scalars(cfg: Resolved, device: torch.device) -> torch.Tensor:
    """[K, activation params..., shape params...] as float64 on ``device``, cached: on a
    GPU a fresh tensor per call would be a blocking host-to-device copy."""
    key = (cfg, device)
    scalars = _scalar_cache.get(key)
    if scalars is None:
        if len(_scalar_cache) > 256:
            _scalar_cache.clear()
        values = [cfg.K, *cfg.activation_params, *cfg.shape_params]
        scalars = _scalar_cache[key] = torch.tensor(values, dtype=torch.float64,
                                                    device=device)
    return scalars


def _numpy_only(cfg: Resolved) -> bool:
    return not (cfg.activation.array_generic and cfg.shape.array_generic)


def _via_reference(fn, x: torch.Tensor, *rest: torch.Tensor, cfg: Resolved) -> torch.Tensor:
    """User functions given only for NumPy: evaluate through the reference (CPU only)."""
    if x.device.type != "cpu":
        raise RuntimeError(
            f"{cfg.activation.name!r}/{cfg.shape.name!r} has NumPy functions only; on "
            f"{x.device} use backend='triton', or register it with array_generic=True")
    cd = _compute_dtype(x.dtype)
    arrays = [t.detach().to(cd).numpy() for t in (x, *rest)]
    out = fn(*arrays, cfg.activation.name, cfg.shape.name, K=cfg.K,
             activation_params=dict(zip(cfg.activation.param_names, cfg.activation_params)),
             shape_params=dict(zip(cfg.shape.param_names, cfg.shape_params)))
    return torch.from_numpy(out).to(x.dtype)


def forward(x: torch.Tensor, cfg: Resolved) -> torch.Tensor:
    layout = torch.empty_like(x)  # the output layout the fake kernel promises
    if x.numel() == 0:
        return layout
    if _numpy_only(cfg):
        return in_layout_of(_via_reference(reference_forward, x, cfg=cfg), layout)
    # Flat 1-d inputs: one compiled graph per dtype serves every shape and rank.
    y = _run(("forward", cfg.activation, cfg.shape, x.dtype, x.device), _forward_math,
             (cfg.activation.value, cfg.shape.value, len(cfg.activation_params),
              len(cfg.shape_params)),
             flat(in_layout_of(x, layout)), _scalars(cfg, x.device))
    return unflat(y, layout)


def backward(x: torch.Tensor, grad_output: torch.Tensor, cfg: Resolved) -> torch.Tensor:
    layout = torch.empty_like(x)
    if x.numel() == 0:
        return layout
    if _numpy_only(cfg):
        return in_layout_of(_via_reference(reference_backward, x, grad_output, cfg=cfg),
                            layout)
    dx = _run(("backward", cfg.activation, cfg.shape, x.dtype, x.device), _backward_math,
              (cfg.activation.derivative, cfg.shape.value, cfg.shape.derivative,
               len(cfg.activation_params), len(cfg.shape_params)),
              flat(in_layout_of(x, layout)), flat(in_layout_of(grad_output, layout)),
              _scalars(cfg, x.device))
    return unflat(dx, layout)
