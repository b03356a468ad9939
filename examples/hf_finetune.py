"""A few training steps of a tiny Hugging Face GPT-2 with GAAF activations.

    python examples/hf_finetune.py --steps 30

The model is built from a config (random weights, nothing downloaded) and trained as a
byte-level language model (vocabulary: the 256 byte values, so no tokenizer is needed)
on the short text below. ``convert_report(model)`` swaps GPT-2's activation
(``NewGELUActivation``, i.e. ``gelu_new``) for ``GAAF("gelu_tanh")`` and says what it
did. The same call works on a model from ``from_pretrained``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # build from a config; never download

import torch  # noqa: E402
import transformers  # noqa: E402

from gaaf_kernels import convert_report  # noqa: E402

TEXT = (
    "Gradient acceleration in activation functions adds a small sawtooth to each "
    "activation. The forward value barely changes, while the gradient gains a shape "
    "function where the activation saturates, so that saturated units keep learning. "
) * 4


def batches(text: str, length: int, batch: int, generator: torch.Generator):
    data = torch.tensor(list(text.encode()), dtype=torch.long)
    while True:
        starts = torch.randint(0, len(data) - length, (batch,), generator=generator)
        yield torch.stack([data[s:s + length] for s in starts])


def main(steps: int = 30, seed: int = 0, log_every: int = 10) -> tuple[list[float], object]:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=256, n_positions=64, n_embd=64, n_layer=2,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    report = convert_report(transformers.GPT2LMHeadModel(config))
    model = report.model
    print(report.summary())
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = batches(TEXT, length=32, batch=8, generator=torch.Generator().manual_seed(seed))
    losses = []
    model.train()
    for step in range(1, steps + 1):
        ids = next(data)
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % log_every == 0 or step == 1:
            print(f"step {step:3d}  loss {loss.item():.3f}")
    return losses, report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.steps, args.seed)
