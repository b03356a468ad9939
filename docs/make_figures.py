"""Draw docs/img/semantics.png (g(x), s(x) and the GAAF derivative for tanh and relu)
and docs/img/band.png (phi', s and the total derivative, default shape against the
saturation band, for tanh, sigmoid, relu and silu).

Everything is computed with the NumPy reference (``gaaf_kernels.reference``), in
float64, with the activations' default shapes. K = 20 instead of the default 10^4 so
that the sawtooth is visible.

    python docs/make_figures.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gaaf_kernels import reference  # noqa: E402
from gaaf_kernels.reference.namespaces import NUMPY  # noqa: E402

K = 20.0
OUT = Path(__file__).resolve().parent / "img" / "semantics.png"
BAND_OUT = OUT.with_name("band.png")


def shape_of(activation: str, x: np.ndarray) -> tuple[str, np.ndarray]:
    """The default shape's name (with parameters) and its values s(x)."""
    cfg = reference.resolve(activation)
    params = ", ".join(f"{n}={v:g}" for n, v in zip(cfg.shape.param_names, cfg.shape_params,
                                                    strict=True))
    return f"{cfg.shape.name}({params})", cfg.shape.value(NUMPY, x, *cfg.shape_params)


def sawtooth(x: np.ndarray) -> np.ndarray:
    """g(x), as y - phi(x) with the shape s = 1 (``constant``)."""
    return (reference.forward(x, "relu", "constant", K=K)
            - reference.forward(x, "relu", "none", K=K))


def main() -> None:
    x = np.linspace(-6.0, 6.0, 24001)
    ones = np.ones_like(x)
    fig = plt.figure(figsize=(12, 8.2), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[0.8, 1, 1])

    ax = fig.add_subplot(grid[0, :])
    near = np.linspace(-0.25, 0.25, 4001)
    ax.plot(near, sawtooth(near), color="tab:gray")
    ax.axhline(0.5 / K, color="k", lw=0.6, ls=":")
    ax.axhline(-0.5 / K, color="k", lw=0.6, ls=":")
    ax.set_title(f"g(x) = (xK - floor(xK) - 0.5) / K  with K = {K:g}: period 1/K, "
                 "|g| ≤ 0.5/K (dotted), g'(x) = 1 between the jumps")
    ax.set_xlabel("x")

    for row, activation in enumerate(["tanh", "relu"], start=1):
        shape_name, s = shape_of(activation, x)
        plain = reference.backward(x, ones, activation, "none", K=K)
        gaaf = reference.backward(x, ones, activation, K=K)
        perturbation = (reference.forward(x, activation, K=K)
                        - reference.forward(x, activation, "none", K=K))

        ax = fig.add_subplot(grid[row, 0])
        ax.plot(x, s, color="tab:green")
        ax.set_title(f"{activation}: s(x) = {shape_name}")
        ax.set_ylim(-0.05, 1.1)

        ax = fig.add_subplot(grid[row, 1])
        ax.fill_between(x, -0.5 / K * s, 0.5 / K * s, color="tab:green", alpha=0.15, lw=0)
        ax.plot(x, perturbation, color="tab:green", lw=0.4)
        ax.set_title(f"{activation}: y - φ(x) = g(x)·s(x), K = {K:g}")
        ax.set_ylabel("teeth 1/K wide, envelope ±s(x)/(2K)", fontsize=8)

        ax = fig.add_subplot(grid[row, 2])
        ax.plot(x, plain, color="k", ls="--", label="φ'(x)  (shape none)")
        ax.plot(x, gaaf, color="tab:blue", lw=1.2, label="φ'(x) + s(x) + g(x)·s'(x)")
        ax.set_title(f"{activation}: derivative, K = {K:g}")
        ax.legend(loc="upper left", fontsize=8)

        for ax in fig.axes[-3:]:
            ax.set_xlabel("x")
            ax.grid(alpha=0.3)

    fig.suptitle("GAAF semantics (NumPy reference, float64; K = 20 instead of the default "
                 "10⁴ so that the sawtooth is visible)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")
    band_figure()


def band_figure() -> None:
    """phi', s, s_band and the mean total derivative phi' + s (the g*s' term averages to
    0 over a tooth; K = 1e12 makes it invisible) for the default shape and the band."""
    x = np.linspace(-6.0, 6.0, 4801)
    ones = np.ones_like(x)
    names = ["tanh", "sigmoid", "relu", "silu"]
    fig, axes = plt.subplots(1, len(names), figsize=(14, 3.8), layout="constrained")
    for ax, activation in zip(axes, names, strict=True):
        cfg = reference.resolve(activation, band=True)
        act_p = cfg.activation_params
        dphi = cfg.activation.derivative(NUMPY, x, *act_p)
        shape_name, s = shape_of(activation, x)
        band = s * (1.0 - dphi * cfg.inv_bound)
        total = reference.backward(x, ones, activation, K=1e12)
        total_band = reference.backward(x, ones, activation, K=1e12, band=True)
        ax.plot(x, dphi, color="k", lw=1, label="φ'(x)")
        ax.plot(x, s, color="tab:green", lw=0.8, ls="--", label=f"s = {shape_name}")
        ax.plot(x, band, color="tab:orange", lw=0.8, ls="--", label="s_band = s·(1 - φ'/m)")
        ax.plot(x, total, color="tab:green", lw=1.6, label="φ' + s  (default)")
        ax.plot(x, total_band, color="tab:orange", lw=1.6, label="φ' + s_band  (band)")
        ax.set_title(f"{activation}: m = {1 / cfg.inv_bound:.4g}")
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=7)
    fig.suptitle("Saturation band: the shape fades where φ' is near its bound m, so the "
                 "total derivative stays near max(φ', s) (NumPy reference, float64)")
    fig.savefig(BAND_OUT, dpi=90)
    print(f"wrote {BAND_OUT} ({BAND_OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
