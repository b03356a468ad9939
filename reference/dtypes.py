"""The dtype policy: which storage dtypes GAAF takes, and what each computes in.

One record per storage dtype: its compute dtype (float16, bfloat16 and float32 compute in
float32, float64 in float64; the result is rounded once to the storage dtype), the Triton
name of the compute dtype, its size, and the accuracy contract every path is held to
against the reference (``gaaf_kernels/verify.py`` explains the tolerances). Dtypes are
named by strings here, so the policy imports no framework; each adapter maps the name to
its own dtype object.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DtypePolicy:
    """How GAAF treats one storage dtype."""

    name: str  # the storage dtype: "float16", "bfloat16", "float32" or "float64"
    compute: str  # "float32" or "float64"
    triton_compute: str  # the compute dtype's name in triton.language
    triton_storage: str  # the storage dtype in Triton's signatures ("*fp32": a pointer)
    itemsize: int  # bytes per element in storage
    atol: float  # the accuracy contract: |got - want| <= atol + rtol * |want|
    rtol: float


# float16/bfloat16: float32's contract plus one unit in the last place of the storage dtype
POLICIES: dict[str, DtypePolicy] = {p.name: p for p in (
    DtypePolicy("float16", "float32", "float32", "fp16", 2, 1e-5, 2.0**-10 + 1e-5),
    DtypePolicy("bfloat16", "float32", "float32", "bf16", 2, 1e-5, 2.0**-7 + 1e-5),
    DtypePolicy("float32", "float32", "float32", "fp32", 4, 1e-5, 1e-5),
    DtypePolicy("float64", "float64", "float64", "fp64", 8, 1e-13, 1e-13),
)}
SUPPORTED_DTYPES = tuple(POLICIES)


def dtype_name(dtype) -> str:
    """The name of a NumPy, PyTorch, JAX or CuPy dtype (or of a name): ``"float32"``."""
    name = getattr(dtype, "name", None)
    if not isinstance(name, str):  # torch.dtype has no .name; str() gives "torch.float32"
        name = str(dtype)
    return name.removeprefix("torch.")


def policy(dtype) -> DtypePolicy:
    """The policy of a storage dtype (any library's, or its name); TypeError otherwise."""
    name = dtype_name(dtype)
    try:
        return POLICIES[name]
    except KeyError:
        raise TypeError(f"GAAF supports floating dtypes {', '.join(SUPPORTED_DTYPES)}; "
                        f"got {name}") from None
