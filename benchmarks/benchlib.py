"""What the benchmarks time, and how they record it (no pytest in here).

Contenders, each a differentiable ``f(x) -> y`` (:func:`contender_fn`):

* ``gaaf_triton``: the fused Triton kernels, ``gaaf(x, backend="triton")`` (CUDA only);
* ``gaaf_torch``: the package's fused PyTorch path, ``gaaf(x, backend="torch")`` (the
  composite compiled by Inductor, serial or on every thread by size; backward saves x);
* ``gaaf_compiled``: ``torch.compile`` of ``gaaf(x)``, where Inductor sees GAAF as
  pointwise math (the route of a compiled model);
* ``compile``: ``torch.compile`` of the naive formula below;
* ``eager``: the naive formula run eagerly, "the eager composite": what a user writes
  from plain torch ops, ``phi(x) + g(x) * s(x)`` with ``g(x) = (x*K - floor(x*K) -
  0.5) / K``, differentiated by autograd. ``floor`` has a zero gradient, so autograd
  gives ``dg/dx = 1`` and the exact a.e. derivative ``phi' + s + g * s'`` with no
  trick (``tests/test_naive_composite.py`` checks it against the NumPy reference).
  Half-precision inputs are computed in float32, as the package does;
* ``plain``: ``torch.tanh`` / ``torch.relu``, the floor each group is compared with.

Bytes that must move, per element: 2 tensor passes forward (read x, write y),
3 backward (read x, read dy, write dx), 5 for forward+backward, 2 for a copy.
"""

from __future__ import annotations

import time
import types

import torch

K = 10000.0
TANH_GAUSSIAN_C = 3.0  # default shape of tanh: gaussian(c=3)
RELU_SHIFT = 4.0  # default shape of relu: shifted_sigmoid(shift=4, slope=1)
ACTIVATIONS = ("tanh", "relu")

PASS_TENSOR_PASSES = {"fwd": 2, "bwd": 3, "fwdbwd": 5, "copy": 2}
SIZES = {
    "128x512": (128, 512),
    "128x64x32x32": (128, 64, 32, 32),
    "2^24": (2**24,),
    "2^28": (2**28,),
    "1e7": (10**7,),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --- the naive formula ------------------------------------------------------------


def _compute(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def sawtooth(x: torch.Tensor, k: float = K) -> torch.Tensor:
    xk = x * k
    return (xk - torch.floor(xk) - 0.5) / k


def naive_gaaf_tanh(x: torch.Tensor) -> torch.Tensor:
    xc = _compute(x)
    y = torch.tanh(xc) + sawtooth(xc) * torch.exp(-(xc * xc) / TANH_GAUSSIAN_C)
    return y.to(x.dtype)


def naive_gaaf_relu(x: torch.Tensor) -> torch.Tensor:
    xc = _compute(x)
    y = torch.relu(xc) + sawtooth(xc) * torch.sigmoid(xc + RELU_SHIFT)
    return y.to(x.dtype)


NAIVE = {"tanh": naive_gaaf_tanh, "relu": naive_gaaf_relu}
PLAIN = {"tanh": torch.tanh, "relu": torch.relu}


def naive_gaaf(x: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """The eager composite: the formula from plain torch ops, differentiated by autograd."""
    return NAIVE[activation](x)


def own_code(fn, key):
    """A copy of ``fn`` with its own code object.

    Dynamo keeps its compiled variants (and its recompile limit, 8) per code object; one
    copy per (dtype, rank, grad mode) keeps the variants from crowding out each other.
    """
    name = "_".join(str(getattr(part, "name", part)).replace("torch.", "") for part in key)
    names = {"co_name": name}
    if hasattr(fn.__code__, "co_qualname"):  # Python 3.11+
        names["co_qualname"] = name
    code = fn.__code__.replace(**names)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


_compiled: dict[tuple, object] = {}


def _package_gaaf(activation: str):
    from gaaf_kernels.adapters.torch import gaaf

    def gaaf_call(x: torch.Tensor) -> torch.Tensor:
        return gaaf(x, activation)

    return gaaf_call


def compiled(fn, label: str):
    """``torch.compile`` of ``fn`` with its defaults (autograd through AOTAutograd).

    One compiled copy per (dtype, rank, grad mode), as a user with one call site per
    tensor kind would have it; a second size recompiles once with dynamic sizes (Dynamo's
    automatic dynamic shapes). Not ``dynamic=True``: that passes every float Dynamo
    reads from an attribute or a default as a tensor, and ``gaaf()``'s configuration
    then breaks the graph (docs/api.md).
    """

    def run(x: torch.Tensor) -> torch.Tensor:
        key = (label, x.dtype, x.dim(), torch.is_grad_enabled())
        compiled_fn = _compiled.get(key)
        if compiled_fn is None:
            compiled_fn = _compiled[key] = torch.compile(own_code(fn, key))
        return compiled_fn(x)

    return run


def compiled_naive(activation: str):
    """``torch.compile`` of the naive formula."""
    return compiled(NAIVE[activation], NAIVE[activation].__name__)


def contender_fn(contender: str, activation: str):
    """The differentiable callable ``f(x) -> y`` that one contender stands for."""
    if contender in ("gaaf_triton", "gaaf_torch", "gaaf_auto"):
        from gaaf_kernels.adapters.torch import gaaf

        backend = contender.removeprefix("gaaf_")
        return lambda x: gaaf(x, activation, backend=backend)
    if contender == "compile":
        return compiled_naive(activation)
    if contender == "gaaf_compiled":
        return compiled(_package_gaaf(activation), f"gaaf_{activation}")
    if contender == "eager":
        return NAIVE[activation]
    if contender == "plain":
        return PLAIN[activation]
    raise ValueError(f"unknown contender {contender!r}")


# --- inputs and timing ------------------------------------------------------------


class TensorCache:
    """Input tensors made once (per test module): (x, dy) per (device, dtype, size)."""

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, device: str, dtype: str, size: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = (device, dtype, size)
        if key not in self._store:
            # made on the device itself: 2^28 random numbers take seconds on a CPU
            gen = torch.Generator(device=device).manual_seed(1234)
            shape = SIZES[size]
            x = torch.randn(shape, generator=gen, dtype=torch.float32, device=device)
            dy = torch.randn(shape, generator=gen, dtype=torch.float32, device=device)
            self._store[key] = (x.to(DTYPES[dtype]), dy.to(DTYPES[dtype]))
        return self._store[key]

    def clear(self) -> None:
        self._store.clear()


def _no_sync() -> None:
    return None


def synchronizer(device: str):
    """A no-op on CPU; ``torch.cuda.synchronize`` on CUDA, so timings cover the work."""
    return torch.cuda.synchronize if device == "cuda" else _no_sync


def describe(benchmark, *, contender: str, role: str, activation: str, device: str,
             dtype: str, size: str, pass_: str, group: str | None = None,
             suite: str = "passes") -> None:
    """Set the group and the static ``extra_info`` of one benchmark, before it runs.

    ``role`` is "floor" for the plain activation each group is compared with, "copy"
    for the bandwidth ceiling and "contender" otherwise; ``suite`` names the table the
    report puts the result in ("passes", "copy", "target", "overhead").
    """
    shape = SIZES[size]
    numel = 1
    for n in shape:
        numel *= n
    itemsize = torch.empty((), dtype=DTYPES[dtype]).element_size()
    passes = PASS_TENSOR_PASSES[pass_]
    benchmark.group = group or f"{device} {pass_} {dtype} {size} {activation}"
    benchmark.extra_info.update(
        suite=suite, contender=contender, role=role, activation=activation, device=device,
        dtype=dtype, size=size, shape="x".join(map(str, shape)), numel=numel, pass_name=pass_,
        tensor_passes=passes, bytes=passes * numel * itemsize,
    )


def record_bandwidth(benchmark) -> None:
    """Add ``median_s`` and ``gbps`` once the benchmark has run (nothing when disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None or not benchmark.enabled:
        return
    median = stats.stats.median
    benchmark.extra_info["median_s"] = median
    if median > 0:
        benchmark.extra_info["gbps"] = benchmark.extra_info["bytes"] / median / 1e9


def rounds_for(benchmark, seconds_per_round: float) -> int:
    """Rounds for ``benchmark.pedantic`` within --benchmark-max-time, at least min-rounds."""
    # pytest-benchmark keeps its options on the fixture, privately; else its defaults.
    max_time = getattr(benchmark, "_max_time", None) or 1.0
    min_rounds = getattr(benchmark, "_min_rounds", None) or 5
    if seconds_per_round <= 0:
        return 1000
    return int(max(min_rounds, min(1000, max_time / seconds_per_round)))


def back_to_back(benchmark, fn, device: str):
    """Time ``fn`` (which does not wait for the GPU) on CUDA as launches back to back:
    each round runs it ``iterations`` times and synchronizes once at its end, so the
    host's launch latency hides behind the queued kernels; the time per iteration is
    the GPU's. On CPU: ``benchmark(fn)``."""
    if device != "cuda" or not benchmark.enabled:
        return benchmark(fn)
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    iterations = max(1, min(1000, int(0.02 / max(time.perf_counter() - start, 1e-6))))
    calls = [0]

    def batch_member():
        out = fn()
        calls[0] += 1
        if calls[0] % iterations == 0:
            torch.cuda.synchronize()  # once per round: the round covers every kernel
        return out

    rounds = rounds_for(benchmark, 0.02)
    return benchmark.pedantic(batch_member, rounds=rounds, iterations=iterations,
                              warmup_rounds=1)


def run_pass(benchmark, f, x: torch.Tensor, dy: torch.Tensor, pass_: str, device: str,
             *, sync: bool = True):
    """Time one pass of ``f`` on ``x`` (upstream gradient ``dy``); returns its result.

    ``fwd``: inference (no autograd graph). ``fwdbwd``: forward with autograd, then
    ``torch.autograd.grad``. ``bwd``: backward alone; the forward graph is rebuilt
    before each round, untimed (``torch.compile``'s backward donates its buffers and
    refuses ``retain_graph=True``). With ``sync=False`` CUDA work is not waited for
    (host overhead). When benchmarking is enabled, one untimed call comes first
    (compilation, JIT); with ``--benchmark-disable`` the body runs exactly once. On
    CUDA (``sync=True``) the forward and forward+backward are timed back to back
    (:func:`back_to_back`), without a synchronization per call.
    """
    batched = device == "cuda" and sync
    wait = synchronizer(device) if sync and not batched else _no_sync
    if pass_ == "fwd":
        def forward():
            with torch.no_grad():
                y = f(x)
            wait()
            return y

        if benchmark.enabled and not batched:
            forward()
        return back_to_back(benchmark, forward, device) if batched else benchmark(forward)

    xg = x.detach().clone().requires_grad_(True)
    if pass_ == "fwdbwd":
        def forward_backward():
            (dx,) = torch.autograd.grad(f(xg), xg, dy)
            wait()
            return dx

        if benchmark.enabled and not batched:
            forward_backward()
        if batched:
            return back_to_back(benchmark, forward_backward, device)
        return benchmark(forward_backward)

    if pass_ != "bwd":
        raise ValueError(f"unknown pass {pass_!r}")
    # A graph per round cannot be queued back to back: on CUDA each call waits (before,
    # so the forward stays out of the time; after, so the backward is in it).
    wait = synchronizer(device) if sync else _no_sync

    def setup():
        y = f(xg)
        wait()
        return (y,), {}

    def backward(y):
        (dx,) = torch.autograd.grad(y, xg, dy)
        wait()
        return dx

    rounds = 1
    if benchmark.enabled:
        (y,), _ = setup()
        start = time.perf_counter()
        backward(y)
        rounds = rounds_for(benchmark, time.perf_counter() - start)
    return benchmark.pedantic(backward, setup=setup, rounds=rounds, warmup_rounds=1)
