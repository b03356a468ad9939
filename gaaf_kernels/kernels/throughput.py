"""A static throughput model of the compiled kernels: SASS counts against the memory roofline.

GAAF is elementwise, so a kernel runs at the memory roofline only while the SMs can issue
its instructions faster than memory delivers its elements. The kernels are straight-line
code (no loops, no branches but the final exit), so the static SASS count of the cubin is
the dynamic count per thread; divided by the elements each thread handles it gives
instructions per element. The model then predicts

    fraction of the copy roofline = min(1, issue rate / instructions per element,
                                           MUFU rate / MUFU per element)
                                    / (copy bandwidth / bytes per element)

Assumptions and limits: one instruction issued per scheduler per clock at the card's
boost clock listed below, 16 MUFU (special-function) results per SM per clock, memory at
the device-to-device copy bandwidth; no latency, occupancy, dual-issue or cache effects.
It predicts; only a GPU measures (``scripts/gpu_check.sh`` prints both side by side).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import triton

from gaaf_kernels.reference.dtypes import policy


@dataclass(frozen=True)
class Card:
    """What the model needs to know about a GPU (see ``CARDS`` for the sources)."""

    name: str
    arch: int  # compute capability x 10 (the cubin the card runs)
    sms: int
    clock_ghz: float
    copy_tb_s: float  # device-to-device copy, bytes read + written per second
    issue_per_sm_clk: int = 128  # 4 schedulers x 32 lanes
    mufu_per_sm_clk: int = 16

    def instructions_per_s(self) -> float:
        return self.sms * self.issue_per_sm_clk * self.clock_ghz * 1e9

    def mufu_per_s(self) -> float:
        return self.sms * self.mufu_per_sm_clk * self.clock_ghz * 1e9


# The one table of cards. SM counts and clocks are the vendor's SXM specifications (boost
# clock under sustained load as the model's assumption); copy bandwidths are what a torch
# device-to-device copy reaches, below the spec sheet's peak (docs/performance.md).
CARDS: tuple[Card, ...] = (
    Card("A100", arch=80, sms=108, clock_ghz=1.41, copy_tb_s=1.7),
    Card("H100", arch=90, sms=132, clock_ghz=1.755, copy_tb_s=3.0),
    Card("H200", arch=90, sms=132, clock_ghz=1.755, copy_tb_s=4.3),
)

TENSOR_PASSES = {"forward": 2, "backward": 3}  # x -> y; x, dy -> dx
_INSTRUCTION = re.compile(r"^\s+/\*[0-9a-f]{4}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)")


@dataclass(frozen=True)
class SassCount:
    instructions: int  # static count, NOPs excluded
    mufu: int
    straight_line: bool  # no branch or call but the exit's self-loop


def cuobjdump() -> Path:
    """The ``cuobjdump`` shipped in the triton wheel."""
    return Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def run_cuobjdump(flag: str, cubin: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kernel.cubin"
        path.write_bytes(cubin)
        return subprocess.run([str(cuobjdump()), flag, str(path)], capture_output=True,
                              text=True, check=True).stdout


def count_sass(sass: str) -> SassCount:
    """Count the instructions of a ``cuobjdump -sass`` listing."""
    ops = [m.group(1) for line in sass.splitlines() if (m := _INSTRUCTION.match(line))]
    ops = [op for op in ops if not op.startswith("NOP")]
    branches = [op for op in ops if op.split(".")[0] in ("BRA", "CALL", "BRX", "JMP")]
    # Every kernel ends in EXIT followed by a BRA to itself; anything else branches.
    return SassCount(instructions=len(ops), mufu=sum(op.startswith("MUFU") for op in ops),
                     straight_line=len(branches) <= 1)


def predicted_fraction(card: Card, kernel: str, dtype: str, instructions_per_element: float,
                       mufu_per_element: float) -> float:
    """Predicted fraction of ``card``'s copy roofline (0..1) for one kernel."""
    memory = card.copy_tb_s * 1e12 / (TENSOR_PASSES[kernel] * policy(dtype).itemsize)
    compute = card.instructions_per_s() / max(instructions_per_element, 1e-9)
    if mufu_per_element > 0:
        compute = min(compute, card.mufu_per_s() / mufu_per_element)
    return min(1.0, compute / memory)


def budget(card: Card, kernel: str, dtype: str, fraction: float = 1.0) -> float:
    """Instructions per element at which ``card`` reaches ``fraction`` of its roofline."""
    memory = card.copy_tb_s * 1e12 / (TENSOR_PASSES[kernel] * policy(dtype).itemsize)
    return card.instructions_per_s() / (fraction * memory)


def cards_for(arch: int) -> list[Card]:
    return [card for card in CARDS if card.arch == arch]
