"""``python -m gaaf_kernels.experiments TASK --variant V ...`` (the arguments of
``gaaf train``; a leading ``train`` is accepted). This is the entry point for torchrun::

    torchrun --nproc-per-node 2 -m gaaf_kernels.experiments mnist-mlp --variant gaaf
"""

from __future__ import annotations

import argparse
import sys

from .cli import add_train_arguments, cmd_train


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m gaaf_kernels.experiments",
                                     description="train one (task, variant, seed) run")
    add_train_arguments(parser)
    return cmd_train(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
