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

import os
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


LAUNCHES_ENV = "GAAF_BENCH_LAUNCHES"


def launches_per_round(device: str, numel: int, pass_: str = "fwd") -> int:
    """Back-to-back calls timed together in one round (between one pair of CUDA events).

    On CUDA a single call per round would count the host's launch latency (10-20 us per
    kernel, a few % of a 2^28-element kernel): 10 calls per round from 2^24 elements, 50
    below. A backward round keeps that many autograd graphs alive, so it takes 3 from 2^26
    elements (the eager composite saves several tensors per graph). On CPU 1 (the calls
    are synchronous) unless ``GAAF_BENCH_LAUNCHES=N`` says otherwise, which also sets the
    CUDA count (the CPU rehearsal of scripts/gpu_check.sh uses it to run this path).
    """
    env = os.environ.get(LAUNCHES_ENV)
    if env:
        return max(1, int(env))
    if device != "cuda":
        return 1
    if pass_ == "bwd" and numel >= 2**26:
        return 3
    return 10 if numel >= 2**24 else 50


class EventClock:
    """A pytest-benchmark timer on CUDA events: GPU seconds since the clock was made.

    Each reading records an event on the current stream and waits for it, so a round
    (a reading, the calls, a reading) is timed on the GPU between two events; the calls
    in between are launched back to back. ``per`` divides the reading: a round of ``per``
    calls made without pytest-benchmark's ``iterations`` (backward, which needs a setup)
    then reads as the time of one call.
    """

    def __init__(self, per: int = 1) -> None:
        self.per = per
        self.__name__ = "cuda_event_clock"
        self.origin = torch.cuda.Event(enable_timing=True)
        self.origin.record()

    def __call__(self) -> float:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        event.synchronize()
        return self.origin.elapsed_time(event) * 1e-3 / self.per


class WallClock:
    """``time.perf_counter`` divided by ``per`` (the CPU's clock, same interface)."""

    def __init__(self, per: int = 1) -> None:
        self.per = per
        self.__name__ = "perf_counter"

    def __call__(self) -> float:
        return time.perf_counter() / self.per


def clock_for(device: str, per: int = 1):
    return EventClock(per) if device == "cuda" else WallClock(per)


def time_batched(benchmark, target, device: str, launches: int, *, setup=None):
    """Time ``launches`` back-to-back calls of ``target`` per round; returns its result.

    Without ``setup`` the round is ``launches`` iterations of pytest-benchmark; with it
    (a function returning the arguments of one round), ``target`` makes the ``launches``
    calls itself and the clock divides by them. The clock reads CUDA events on CUDA.
    With benchmarking disabled, ``target`` runs once.
    """
    if not benchmark.enabled:
        args = setup() if setup else ((), {})
        return target(*args[0], **args[1])
    wait = synchronizer(device)
    per = launches if setup else 1
    iterations = 1 if setup else launches
    args = setup() if setup else ((), {})
    start = time.perf_counter()
    for _ in range(iterations):
        target(*args[0], **args[1])
    wait()
    rounds = rounds_for(benchmark, time.perf_counter() - start)
    benchmark.extra_info.update(launches_per_round=launches,
                                timer="cuda events" if device == "cuda" else "perf_counter")
    if hasattr(benchmark, "_timer"):  # pytest-benchmark's timer, read once per round
        benchmark._timer = clock_for(device, per)
    return benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=iterations,
                              warmup_rounds=1)


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


def run_pass(benchmark, f, x: torch.Tensor, dy: torch.Tensor, pass_: str, device: str,
             *, sync: bool = True):
    """Time one pass of ``f`` on ``x`` (upstream gradient ``dy``); returns its result.

    ``fwd``: inference (no autograd graph). ``fwdbwd``: forward with autograd, then
    ``torch.autograd.grad``. ``bwd``: backward alone; the forward graphs are built before
    each round, untimed (``torch.compile``'s backward donates its buffers and refuses
    ``retain_graph=True``, so each backward has a graph of its own). With ``sync=False``
    CUDA work is not waited for (host overhead), one call per round. Otherwise
    :func:`launches_per_round` calls run back to back per round (:func:`time_batched`,
    CUDA events on CUDA); on CPU by default that is one call, timed as before. When
    benchmarking is enabled, one untimed call comes first (compilation, JIT); with
    ``--benchmark-disable`` the body runs exactly once.
    """
    launches = launches_per_round(device, x.numel(), pass_) if sync else 1
    batched = launches > 1 or (device == "cuda" and sync)
    wait = _no_sync if batched or not sync else synchronizer(device)
    if pass_ == "fwd":
        def forward():
            with torch.no_grad():
                y = f(x)
            wait()
            return y

        if batched:
            return time_batched(benchmark, forward, device, launches)
        if benchmark.enabled:
            forward()
        return benchmark(forward)

    xg = x.detach().clone().requires_grad_(True)
    if pass_ == "fwdbwd":
        def forward_backward():
            (dx,) = torch.autograd.grad(f(xg), xg, dy)
            wait()
            return dx

        if batched:
            return time_batched(benchmark, forward_backward, device, launches)
        if benchmark.enabled:
            forward_backward()
        return benchmark(forward_backward)

    if pass_ != "bwd":
        raise ValueError(f"unknown pass {pass_!r}")

    if batched:
        def graphs():
            ys = [f(xg) for _ in range(launches)]
            synchronizer(device)()
            return (ys,), {}

        def backwards(ys):
            for _ in range(len(ys)):
                (dx,) = torch.autograd.grad(ys.pop(), xg, dy)
            return dx

        return time_batched(benchmark, backwards, device, launches, setup=graphs)

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
