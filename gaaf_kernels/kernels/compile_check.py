"""Compile every kernel specialization for GPU targets, without a GPU.

``triton.compile`` on an ``ASTSource`` with a ``GPUTarget`` produces PTX and a cubin on
any machine; ``cuobjdump`` (shipped in the triton wheel) reads registers, local-memory
(spill) bytes and the SASS off the cubin, and the PTX tells whether global loads are
128-bit wide. The SASS feeds the throughput model (``throughput.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from gaaf_kernels.reference import DEFAULT_ACTIVATION, get_activation, get_shape
from gaaf_kernels.reference.dtypes import POLICIES, policy
from gaaf_kernels.reference.registry import default_shape_of

from ..registry import activations, shapes
from .launch import gpu_launch_config, kernel_for
from .throughput import cards_for, count_sass, predicted_fraction, run_cuobjdump

POINTER_TYPES = {name: f"*{p.triton_storage}" for name, p in POLICIES.items()}
SCALARS = ("K", "inv_K", "a0", "a1", "a2", "s0", "s1", "s2", "inv_m")
WIDE_LOAD = re.compile(r"ld\.global(?:\.\w+)*\.(?:v4\.b32|v2\.b64|v4\.b64|v8\.b32)")
ANY_LOAD = re.compile(r"ld\.global")


@dataclass(frozen=True)
class CompileResult:
    target: str
    kernel: str  # "forward" or "backward"
    activation: str
    shape: str
    dtype: str
    int64_offsets: bool
    registers: int
    spill_bytes: int
    wide_loads: bool
    stack_bytes: int = 0  # call frames (e.g. float64 division's slow path), not spills
    error: str = ""
    instructions_per_element: float = 0.0  # SASS per element (static = dynamic if straight)
    mufu_per_element: float = 0.0
    straight_line: bool = True
    # Predicted fraction of the copy roofline per card of this target (throughput model).
    predicted: dict[str, float] = field(default_factory=dict)
    band: bool = False  # the saturation band (band=True) specialization

    @property
    def ok(self) -> bool:
        if self.error or self.spill_bytes > 0:
            return False
        # 128-bit loads are required where the pointers are 16-byte aligned (always
        # here) for 16- and 32-bit storage; float64 rows are reported only.
        return self.wide_loads or self.dtype == "float64"


def parse_target(text: str) -> GPUTarget:
    """``sm_90`` or ``90`` -> GPUTarget("cuda", 90, 32)."""
    match = re.fullmatch(r"(?:sm_?)?(\d+)a?", text.strip())
    if not match:
        raise ValueError(f"bad GPU target {text!r}; use e.g. sm_80,sm_90")
    return GPUTarget("cuda", int(match.group(1)), 32)


def default_pairs(activation: str | None = None) -> list[tuple[str, str]]:
    """Every activation with its default shape, and every shape at least once.

    With ``activation`` given: that activation with every registered shape.
    """
    if activation is not None:
        get_activation(activation)
        return [(activation, shape) for shape in shapes()]
    pairs = [(name, default_shape_of(get_activation(name))) for name in activations()]
    covered = {shape for _, shape in pairs}
    pairs += [(DEFAULT_ACTIVATION, shape) for shape in shapes() if shape not in covered]
    return pairs


def _resource_usage(cubin: bytes) -> tuple[int, int, int]:
    """Registers, local-memory bytes (spills) and call-stack bytes of the kernel."""
    text = run_cuobjdump("--dump-resource-usage", cubin)

    def usage(name: str) -> int:
        found = re.search(rf"{name}:(\d+)", text)
        if found is None:
            raise RuntimeError(f"cuobjdump printed no {name}: in {text[:200]!r}")
        return int(found.group(1))

    return usage("REG"), usage("LOCAL"), usage("STACK")


def compile_one(target: GPUTarget, kernel: str, activation: str, shape: str, dtype: str,
                int64_offsets: bool = False, band: bool = False) -> CompileResult:
    act, shp = get_activation(activation), get_shape(shape)
    pointer = POINTER_TYPES[dtype]
    block_size, num_warps = gpu_launch_config(dtype)
    fn, constexprs = kernel_for(kernel, act, shp, dtype, band)
    pointers = ("x_ptr", "y_ptr") if kernel == "forward" else ("x_ptr", "dy_ptr", "dx_ptr")
    constexprs.update({
        "COMPUTE_DTYPE": getattr(tl, policy(dtype).triton_compute),
        "BLOCK_SIZE": block_size, "INT64_OFFSETS": int64_offsets, "BF16_AS_BITS": False,
    })
    signature = {name: pointer for name in pointers}
    signature["n_elements"] = "i64" if int64_offsets else "i32"
    signature.update({name: "fp64" for name in SCALARS})
    signature.update({name: "constexpr" for name in constexprs})
    # Pointers and the element count are multiples of 16, as torch allocations are.
    attrs = {(i,): [["tt.divisibility", 16]] for i in range(len(pointers) + 1)}
    label: dict[str, Any] = dict(target=f"sm_{target.arch}", kernel=kernel,
                                 activation=activation, shape=shape, dtype=dtype,
                                 int64_offsets=int64_offsets, band=band)
    try:
        compiled = triton.compile(
            ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs),
            target=target,
            options={"num_warps": num_warps, "enable_fp_fusion": False},
        )
        registers, spills, stack = _resource_usage(compiled.asm["cubin"])
        ptx = compiled.asm["ptx"]
        loads = [line for line in ptx.splitlines() if ANY_LOAD.search(line)]
        wide = bool(loads) and all(WIDE_LOAD.search(line) for line in loads)
        sass = count_sass(run_cuobjdump("-sass", compiled.asm["cubin"]))
    except Exception as exc:  # report, do not stop the sweep
        return CompileResult(**label, registers=0, spill_bytes=0, wide_loads=False,
                             error=f"{type(exc).__name__}: {str(exc)[:300]}")
    per_thread = block_size // (num_warps * 32)
    instructions, mufu = sass.instructions / per_thread, sass.mufu / per_thread
    predicted = {card.name: predicted_fraction(card, kernel, dtype, instructions, mufu)
                 for card in cards_for(target.arch)}
    return CompileResult(**label, registers=registers, spill_bytes=spills, wide_loads=wide,
                         stack_bytes=stack, instructions_per_element=instructions,
                         mufu_per_element=mufu, straight_line=sass.straight_line,
                         predicted=predicted)


def sweep(targets: Iterable[GPUTarget], pairs: Iterable[tuple[str, str]],
          dtypes: Iterable[str] = tuple(POINTER_TYPES), int64_dtypes=("float32",),
          progress=None, band_pairs: Iterable[tuple[str, str]] = ()) -> list[CompileResult]:
    """Compile forward and backward for every target x pair x dtype.

    The 64-bit-offset specialization is compiled for ``int64_dtypes`` too, and the
    saturation band's (32-bit offsets) for ``band_pairs``.
    """
    jobs: list[tuple] = []
    for target in targets:
        for activation, shape in pairs:
            for dtype in dtypes:
                for int64 in (False, True) if dtype in int64_dtypes else (False,):
                    for kernel in ("forward", "backward"):
                        jobs.append((target, kernel, activation, shape, dtype, int64))
        for activation, shape in band_pairs:
            for dtype in dtypes:
                for kernel in ("forward", "backward"):
                    jobs.append((target, kernel, activation, shape, dtype, False, True))
    results = []
    for job in jobs:
        results.append(compile_one(*job))
        if progress is not None:
            progress(len(results), len(jobs))
    return results
