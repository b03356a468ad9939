"""The paper's MNIST MLP (784-512-256-256-10, tanh) with GAAF, in plain JAX and optax.

GAAF is a frozen callable (``GAAF("tanh")``), used like ``jnp.tanh``; ``jax.grad`` goes
through its custom JVP and the whole training step is one ``jax.jit``. Data: the MNIST
files that ``gaaf data fetch-mnist`` puts under ``$GAAF_DATA_DIR`` (or ``./data``);
where they are absent, synthetic MNIST-shaped data (so the example always runs).
Without optax installed, plain SGD with momentum written out.

Usage: ``python examples/jax_mlp.py [--steps 300] [--activation gaaf|tanh]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gaaf_kernels.jax import GAAF

SIZES = (784, 512, 256, 256, 10)  # the paper's MNIST MLP


def load_data(data_dir: str | None = None, seed: int = 0):
    """(train_x, train_y, test_x, test_y, source): MNIST if its files are found, else
    synthetic data with MNIST's shapes (10 noisy class prototypes)."""
    from gaaf_kernels.experiments.data import DatasetNotFoundError, load_dataset

    try:
        data = load_dataset("mnist", data_dir)
        flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
        return (flat(data.train_x), data.train_y, flat(data.test_x), data.test_y, "MNIST")
    except DatasetNotFoundError:
        rng = np.random.default_rng(seed)
        prototypes = rng.uniform(0, 1, (10, 784)).astype(np.float32)

        def make(n):
            labels = rng.integers(0, 10, n)
            images = prototypes[labels] + 0.5 * rng.standard_normal((n, 784))
            return np.clip(images, 0, 1).astype(np.float32), labels

        (tx, ty), (vx, vy) = make(6000), make(1000)
        return tx, ty, vx, vy, "synthetic (MNIST files not found)"


def init_params(key: jax.Array, sizes=SIZES) -> list[dict[str, jax.Array]]:
    """Glorot-uniform weights, zero biases."""
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        limit = (6.0 / (m + n)) ** 0.5
        params.append({"w": jax.random.uniform(sub, (m, n), minval=-limit, maxval=limit),
                       "b": jnp.zeros(n)})
    return params


def forward(params, x: jax.Array, act: Callable[[jax.Array], jax.Array]) -> jax.Array:
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def loss_fn(params, x, y, act) -> jax.Array:
    logits = forward(params, x, act)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def make_optimizer(lr: float):
    """optax SGD with momentum if optax is installed, else the same update by hand."""
    try:
        import optax

        return optax.sgd(lr, momentum=0.9), optax.apply_updates
    except ImportError:
        def init(params):
            return jax.tree.map(jnp.zeros_like, params)

        def update(grads, velocity, params=None):
            velocity = jax.tree.map(lambda v, g: 0.9 * v + g, velocity, grads)
            return jax.tree.map(lambda v: -lr * v, velocity), velocity

        class Plain:
            pass

        opt = Plain()
        opt.init, opt.update = init, update
        return opt, lambda p, u: jax.tree.map(jnp.add, p, u)


def make_step(act: Callable, optimizer, apply_updates) -> Callable:
    @jax.jit
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y, act)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, loss

    return step


def train(steps: int = 300, batch: int = 128, lr: float = 0.01, activation: str = "gaaf",
          seed: int = 0, data_dir: str | None = None, data=None) -> dict:
    """Train for ``steps`` minibatch steps; returns losses, test accuracy and the data."""
    train_x, train_y, test_x, test_y, source = data or load_data(data_dir, seed)
    act = GAAF("tanh") if activation == "gaaf" else jnp.tanh
    optimizer, apply_updates = make_optimizer(lr)
    params = init_params(jax.random.key(seed))
    opt_state = optimizer.init(params)
    step = make_step(act, optimizer, apply_updates)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        idx = rng.integers(0, len(train_x), batch)
        params, opt_state, loss = step(params, opt_state, jnp.asarray(train_x[idx]),
                                       jnp.asarray(train_y[idx]))
        losses.append(float(loss))
    logits = forward(params, jnp.asarray(test_x), act)
    accuracy = float(jnp.mean(jnp.argmax(logits, axis=1) == jnp.asarray(test_y)))
    return {"losses": losses, "test_accuracy": accuracy, "data": source}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--activation", choices=("gaaf", "tanh"), default="gaaf")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    result = train(args.steps, args.batch, args.lr, args.activation, data_dir=args.data_dir)
    losses = result["losses"]
    print(f"{args.activation} on {result['data']}, JAX {jax.__version__} "
          f"({jax.default_backend()}): loss {losses[0]:.4f} -> {np.mean(losses[-20:]):.4f} "
          f"after {args.steps} steps, test accuracy {result['test_accuracy']:.4f} "
          f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
