"""The experiment tasks and their protocols (what the paper says, and our choices where it
is silent). Every field of :class:`Protocol` is written into each run's ``record.json``.

Besides the paper's tasks: the hidden tasks of ``gaaf study`` (``mnist-deep<D>``: tanh
MLPs of D hidden layers of 256; ``mnist-mlp-sens``: the paper's MLP with the K and c
variants of the sensitivity study) and their tiny synthetic twins for the tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

__all__ = ["TASKS", "PUBLIC_TASKS", "Protocol", "Task", "get_task", "STUDY_DEPTHS",
           "DEPTH_VARIANTS", "SENSITIVITY_KS", "SENSITIVITY_CS", "SENSITIVITY_VARIANTS",
           "sensitivity_variant", "CNN_STUDY_VARIANTS", "DEEP_CNN_VARIANTS", "DEEP_CNN_CONV",
           "CNN_STUDY_PROTOCOL", "DEEP_CNN_ADAM_PROTOCOL"]


@dataclass(frozen=True)
class Protocol:
    """Training protocol of a task. See docs/reproduction.md for why each value."""

    optimizer: str = "sgd"  # "sgd" or "adam" (train.make_optimizer)
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 50
    patience: int = 10  # stop after this many epochs without a new best validation accuracy
    val_fraction: float = 1 / 6  # last part of the training set held out (MNIST: 10000)
    augment: str = "none"  # "none" or "crop-flip" (4-pixel pad + random crop, h-flip)
    normalize: str = "none"  # "none" (pixels in [0, 1]) or "channel" (train mean/std)
    init: str = "glorot-uniform"  # or "kaiming-normal"
    convergence: str = (
        "converged epoch = epoch of the best validation accuracy (first one on ties); "
        "training stops after `patience` epochs without improvement or at `max_epochs`; "
        "the reported test accuracy is that of the converged epoch's weights"
    )
    flush_denormal: bool = True
    eval_batch_size: int = 1000
    grad_clip: float | None = None  # max global gradient norm (None: no clipping)

    def to_dict(self) -> dict:
        """The fields, without those that are None (absent = not used)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Task:
    """A dataset, an architecture and its variants."""

    name: str
    dataset: str  # a name for data.load_dataset, or "tiny" (synthetic, generated)
    arch: str  # "mlp", "vgg", "svhn-cnn" or "cnn" (the conv stack in ``conv``)
    in_shape: tuple[int, int, int]
    num_classes: int
    variants: tuple[str, ...]
    widths: tuple[int, ...] = (512, 256, 256)  # hidden dense widths (MLP)
    protocol: Protocol = field(default_factory=Protocol)
    hidden: bool = False  # test-only and `gaaf study` tasks, not listed in help
    # Variants that run only when asked for (``--variants``), e.g. the saturation band's.
    extra_variants: tuple[str, ...] = ()
    # arch "cnn": the conv stack (channels per 3x3 conv layer, "M" = 2x2 max-pool)
    conv: tuple[int | str, ...] = ()

    @property
    def all_variants(self) -> tuple[str, ...]:
        """The default variants, then the ones that run only when asked for."""
        return self.variants + self.extra_variants


_MLP_VARIANTS = ("base", "dropout", "gaaf")
_CNN_VARIANTS = ("base", "bn", "gaaf", "bn-gaaf")
# GAAF with the saturation band (convert(model, band=True)), beside the paper's rows.
_MLP_EXTRA = ("gaaf-band",)
_CNN_EXTRA = ("gaaf-band", "bn-gaaf-band")
# grad_clip: GAAF's ReLU shape sigmoid(x + 4) adds ~1 to the derivative wherever x > -4, so
# without BN the gradient grows ~2x per layer and SGD at lr 0.01 diverges (NaN in the first
# epoch); clipping the global norm at 5 for every variant keeps the comparison fair.
_CNN_PROTOCOL = Protocol(lr=0.01, weight_decay=5e-4, max_epochs=60, patience=10,
                         val_fraction=0.1, normalize="channel", init="kaiming-normal",
                         grad_clip=5.0)

# `gaaf study` (experiments/study): the depth study's depths and variants ("gaaf-band" is
# GAAF with the saturation band, convert(model, band=True); models.gaaf_settings reads the
# parts of a variant name), and the sensitivity grid: K ("k1e2" = 1e2) with the default
# gaussian c = 3, and c with the default K = 1e4 ("gaaf" itself is K = 1e4, c = 3), each
# without and with the band.
STUDY_DEPTHS = (3, 6, 10, 20)
DEPTH_VARIANTS = ("base", "dropout", "gaaf", "gaaf-band")
SENSITIVITY_KS = (1e2, 1e3, 1e4, 1e5, 1e6)
SENSITIVITY_CS = (1.0, 3.0, 10.0)


def _k_name(K: float) -> str:
    return f"k{K:.0e}".replace("e+0", "e").replace("e+", "e")


def sensitivity_variant(band: bool, K: float = 1e4, c: float = 3.0) -> str:
    """The variant name of GAAF with ``K`` and gaussian ``c`` (one of them the default),
    e.g. ``gaaf-k1e6``, ``gaaf-band-c10``, ``gaaf-band`` (K = 1e4, c = 3)."""
    name = "gaaf-band" if band else "gaaf"
    if K != 1e4:
        name += f"-{_k_name(K)}"
    if c != 3.0:
        name += f"-c{c:g}"
    return name


SENSITIVITY_VARIANTS = ("base", *(
    sensitivity_variant(band, K=K) for band in (False, True) for K in SENSITIVITY_KS), *(
    sensitivity_variant(band, c=c) for band in (False, True) for c in SENSITIVITY_CS
    if c != 3.0))
# `gaaf study cnn` (experiments/study/cnn.py): ReLU CNNs. "leaky" swaps every ReLU for
# LeakyReLU(0.01); "bsilu"/"nelu" are GAAF with the surrogate-gradient shapes; "noclip"
# runs the variant without the protocol's gradient clipping (the study's own switch).
_CNN_STUDY_GAAF = ("gaaf", "gaaf-band", "gaaf-bsilu", "gaaf-nelu")
CNN_STUDY_VARIANTS = ("base", "leaky", *_CNN_STUDY_GAAF, "bn", "bn-leaky",
                      *(f"bn-{v}" for v in _CNN_STUDY_GAAF), "base-noclip", "gaaf-noclip")
DEEP_CNN_VARIANTS = ("base", "leaky", *_CNN_STUDY_GAAF, "base-noclip", "gaaf-noclip")
#: The deep plain CNN: 10 conv layers of 16 channels, pools after the 4th and 7th (the
#: depth chosen from a pilot, docs/studies.md).
DEEP_CNN_CONV: tuple[int | str, ...] = (16,) * 4 + ("M",) + (16,) * 3 + ("M",) + (16,) * 3
#: The CNN protocol with a twelfth of the training set held out (5000 images): the study
#: evaluates every epoch, and its runs are short.
CNN_STUDY_PROTOCOL = replace(_CNN_PROTOCOL, val_fraction=1 / 12)
#: The deep plain CNN trained with Adam (PyTorch's defaults, lr 0.001, no weight decay):
#: under it the dense layer loses a fifth of its units, where SGD at lr 0.01 revives the
#: few that start dead (the pilot, results/logs/2026-12-04-cnn-study-pilot.md).
DEEP_CNN_ADAM_PROTOCOL = replace(CNN_STUDY_PROTOCOL, optimizer="adam", lr=1e-3,
                                 weight_decay=0.0)
_CNN_DATASETS = (("fashion", "fashion-mnist"), ("mnist", "mnist"))
_TINY = Protocol(lr=0.05, batch_size=32, max_epochs=3, patience=2, val_fraction=0.25)

TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        # MNIST, MLP 784-512-256-256-10, tanh (Table 4)
        Task("mnist-mlp", "mnist", "mlp", (1, 28, 28), 10, _MLP_VARIANTS,
             extra_variants=_MLP_EXTRA),
        # Fashion-MNIST, the MNIST MLP protocol
        Task("fashion-mlp", "fashion-mnist", "mlp", (1, 28, 28), 10, _MLP_VARIANTS,
             extra_variants=_MLP_EXTRA),
        # CIFAR-10, VGG16 minus its last three conv layers (Table 5)
        Task("cifar10-vgg", "cifar10", "vgg", (3, 32, 32), 10, _CNN_VARIANTS, (512, 512),
             replace(_CNN_PROTOCOL, augment="crop-flip"), extra_variants=_CNN_EXTRA),
        # CIFAR-100, VGG16 minus its last three conv layers (Table 5)
        Task("cifar100-vgg", "cifar100", "vgg", (3, 32, 32), 100, _CNN_VARIANTS, (512, 512),
             replace(_CNN_PROTOCOL, augment="crop-flip"), extra_variants=_CNN_EXTRA),
        # SVHN, 4 conv (max-pool after every second) + 3 dense (Table 5)
        Task("svhn-cnn", "svhn", "svhn-cnn", (3, 32, 32), 10, _CNN_VARIANTS, (512, 256),
             _CNN_PROTOCOL, extra_variants=_CNN_EXTRA),
        # Fashion-MNIST, the SVHN CNN protocol
        Task("fashion-cnn", "fashion-mnist", "svhn-cnn", (1, 28, 28), 10, _CNN_VARIANTS, (512, 256),
             replace(_CNN_PROTOCOL, val_fraction=1 / 6), extra_variants=_CNN_EXTRA),
        # synthetic random data, for tests
        Task("tiny-mlp", "tiny", "mlp", (1, 4, 4), 4, _MLP_VARIANTS, (16, 16, 16), _TINY,
             hidden=True, extra_variants=_MLP_EXTRA),
        # gaaf study sensitivity: the MNIST MLP (784-512-256-256-10) with the K, c variants
        Task("mnist-mlp-sens", "mnist", "mlp", (1, 28, 28), 10, SENSITIVITY_VARIANTS,
             hidden=True),
        Task("tiny-mlp-sens", "tiny", "mlp", (1, 4, 4), 4, SENSITIVITY_VARIANTS, (16, 16, 16),
             _TINY, hidden=True),
        # gaaf study depth: MNIST tanh MLPs, D hidden layers of 256, the MNIST protocol (the
        # study sets its own max epochs and patience)
        *(Task(f"mnist-deep{d}", "mnist", "mlp", (1, 28, 28), 10, DEPTH_VARIANTS, (256,) * d,
               hidden=True) for d in STUDY_DEPTHS),
        # gaaf study cnn: the harness's CNN (with and without BN) and the deep plain CNN
        *(Task(f"{short}-cnn-study", ds, "svhn-cnn", (1, 28, 28), 10, CNN_STUDY_VARIANTS,
               (512, 256), CNN_STUDY_PROTOCOL, hidden=True) for short, ds in _CNN_DATASETS),
        *(Task(f"{short}-deep-cnn", ds, "cnn", (1, 28, 28), 10, DEEP_CNN_VARIANTS, (256,),
               CNN_STUDY_PROTOCOL, hidden=True, conv=DEEP_CNN_CONV)
          for short, ds in _CNN_DATASETS),
        *(Task(f"{short}-deep-cnn-adam", ds, "cnn", (1, 28, 28), 10, DEEP_CNN_VARIANTS,
               (256,), DEEP_CNN_ADAM_PROTOCOL, hidden=True, conv=DEEP_CNN_CONV)
          for short, ds in _CNN_DATASETS),
        Task("tiny-cnn-study", "tiny", "svhn-cnn", (1, 8, 8), 4, CNN_STUDY_VARIANTS, (16, 16),
             replace(_TINY, grad_clip=5.0), hidden=True),
        Task("tiny-deep-cnn", "tiny", "cnn", (1, 8, 8), 4, DEEP_CNN_VARIANTS, (16,),
             replace(_TINY, grad_clip=5.0), hidden=True, conv=(4, 4, "M", 4, 4, "M", 4)),
        Task("tiny-deep-cnn-adam", "tiny", "cnn", (1, 8, 8), 4, DEEP_CNN_VARIANTS, (16,),
             replace(_TINY, grad_clip=5.0, optimizer="adam", lr=1e-3), hidden=True,
             conv=(4, 4, "M", 4, 4, "M", 4)),
        *(Task(f"tiny-deep{d}", "tiny", "mlp", (1, 4, 4), 4, DEPTH_VARIANTS, (16,) * d, _TINY,
               hidden=True) for d in STUDY_DEPTHS),
    )
}
PUBLIC_TASKS = tuple(name for name, t in TASKS.items() if not t.hidden)


def get_task(name: str) -> Task:
    """The task called ``name``; ``KeyError`` with the valid names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(PUBLIC_TASKS)}") from None
