"""ResNet, RK-Net and ODE-Net: the paper's MNIST classifier (Chen et al. 2018, §7.1), scaled to 8×8 digits.

All three share one shape::

    image (1×8×8) ─ downsampling (conv 3×3, GroupNorm, ReLU, conv 4×4 stride 2) ─ 4×4 feature maps
                  ─ feature block ─ head (GroupNorm, ReLU, global average pool, linear) ─ 10 logits

and differ only in the feature block:

- **ResNet**: 6 residual blocks ``h_{t+1} = h_t + f(h_t, θ_t)``, each with its own parameters θ_t;
- **ODE-Net**: one ODE block ``dh/dt = f(h(t), θ, t)`` on t ∈ [0, 1], solved by an adaptive solver
  (dopri5 by default) at tolerance rtol/atol; its gradients come from the adjoint method or
  from backprop through the solver's operations;
- **RK-Net**: the same dynamics, solved by fixed-step RK4 and trained by backprop through it.

The dynamics f are the paper's: GroupNorm, ReLU, a 3×3 convolution that sees t as one more input
channel, again, and a final GroupNorm. The ODE block counts function evaluations (NFE) in the
forward pass and in the backward pass.

Train with :func:`train`, evaluate with :func:`evaluate` and :func:`tolerance_sweep`; the shipped
checkpoints are retrained from scratch by ``python -m odeteach.train digits``
(:func:`train_checkpoints`) and loaded by :func:`load_pretrained`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .adjoint import odeint_adjoint
from .errors import SolverError
from .progress import progress as progress_bar
from .integrate import solve
from .tableaux import TABLEAUX

__all__ = [
    "KINDS", "CHANNELS", "GROUPS", "N_RES_BLOCKS", "ConcatConv2d", "ODEFunc", "ResBlock", "ODEBlock", "Classifier",
    "make_model", "count_parameters", "TrainConfig", "History", "train", "evaluate", "tolerance_sweep",
    "SweepPoint", "breakdown_tolerance", "training_memory", "PAPER_TABLE1", "table1_markdown", "benchmark", "loosest_safe_tolerance", "train_checkpoints", "load_pretrained", "checkpoint_path", "CHECKPOINT_DIR", "resolve_device",
    "cheapest_safe_tolerance", "Comparison", "compare_mistakes", "solver_steps", "below_the_floor", "COARSE_SOLVERS",
]

KINDS = ("resnet", "rknet", "odenet")
CHANNELS = 32          # feature maps in every layer (the paper's MNIST net uses 64 on 28×28 images)
GROUPS = 8             # GroupNorm groups: 4 channels per group (the paper: min(32, channels))
N_RES_BLOCKS = 6       # the paper's ResNet has 6 residual blocks after downsampling
N_CLASSES = 10
RKNET_STEP = 0.25      # RK-Net: 4 fixed RK4 steps on [0, 1], 16 evaluations of f per forward pass
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def resolve_device(device=None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but torch sees no CUDA device here. Use device='cpu'.")
    return device


# --------------------------------------------------------------------------------------------
# Layers


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, channels), channels)


class ConcatConv2d(nn.Module):
    """A 3×3 convolution of ``[t, h]``: the time t enters as one more constant input channel."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv = nn.Conv2d(channels_in + 1, channels_out, kernel_size=3, padding=1)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t_channel = torch.ones_like(h[:, :1]) * t
        return self.conv(torch.cat([t_channel, h], dim=1))


class ODEFunc(nn.Module):
    """The dynamics f(h(t), θ, t): norm, ReLU, conv[t, ·], norm, ReLU, conv[t, ·], norm.

    ``nfe`` counts evaluations of f; ``vjp`` counts vector–Jacobian products that backprop took
    through an evaluation (when ``count_vjp`` is on).
    """

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = ConcatConv2d(channels, channels)
        self.norm2 = _norm(channels)
        self.conv2 = ConcatConv2d(channels, channels)
        self.norm3 = _norm(channels)
        self.nfe = 0
        self.vjp = 0
        self.count_vjp = False

    def _count_vjp(self, grad):
        self.vjp += 1
        return grad

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.conv1(t, F.relu(self.norm1(h)))
        out = self.conv2(t, F.relu(self.norm2(out)))
        out = self.norm3(out)
        if self.count_vjp and out.requires_grad:
            out.register_hook(self._count_vjp)
        return out


class ResBlock(nn.Module):
    """One residual block h + f(h, θ_t): the same layers as :class:`ODEFunc`, without t."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.norm1 = _norm(channels)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm2 = _norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.norm3 = _norm(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(h)))
        out = self.conv2(F.relu(self.norm2(out)))
        return h + self.norm3(out)


class ODEBlock(nn.Module):
    """h(1) = h(0) + ∫₀¹ f(h(t), θ, t) dt, solved by ``method`` at ``rtol``/``atol``.

    Parameters
    ----------
    func : the dynamics (an :class:`ODEFunc`).
    method : an adaptive method (``"dopri5"``, ``"bosh3"``) or a fixed-step one (``"rk4"`` …, then
        ``step_size`` sets h).
    rtol, atol : tolerances of an adaptive method; change them any time, e.g. at test time.
    adjoint : gradients by the adjoint method (O(1) memory in the number of steps) instead of
        backprop through every operation of the solver.

    After each forward pass ``nfe_forward`` is the number of evaluations of f it took; after a
    backward pass ``nfe_backward`` is the number the backward pass took: evaluations of f on the
    augmented adjoint system with ``adjoint=True``, and vector–Jacobian products through the
    recorded evaluations of f (one per evaluation that the loss depends on) without it.
    """

    def __init__(self, func: ODEFunc, *, method: str = "dopri5", rtol: float = 1e-3, atol: float = 1e-3,
                 adjoint: bool = False, step_size: float | None = None, max_num_steps: int = 1000):
        super().__init__()
        if method not in TABLEAUX:
            raise ValueError(f"Unknown method {method!r}. Valid methods: {', '.join(TABLEAUX)}.")
        if not TABLEAUX[method].adaptive and step_size is None:
            raise ValueError(f"the fixed-step method {method!r} needs a step_size, e.g. step_size=0.25.")
        self.func = func
        self.method = method
        self.rtol = rtol
        self.atol = atol
        self.adjoint = bool(adjoint)
        self.step_size = step_size
        self.max_num_steps = max_num_steps
        self.register_buffer("integration_time", torch.tensor([0.0, 1.0]), persistent=False)
        self._nfe_at_forward_end = 0
        self._vjp_at_forward_start = 0
        self.nfe_forward = 0

    @property
    def nfe_backward(self) -> int:
        if self.adjoint:
            return self.func.nfe - self._nfe_at_forward_end
        return self.func.vjp - self._vjp_at_forward_start

    def options(self) -> dict:
        if TABLEAUX[self.method].adaptive:
            return {"max_num_steps": self.max_num_steps}
        return {"step_size": self.step_size, "max_num_steps": self.max_num_steps}

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        t = self.integration_time.to(h0.dtype)
        start = self.func.nfe
        self._vjp_at_forward_start = self.func.vjp
        kwargs = dict(rtol=self.rtol, atol=self.atol, method=self.method, options=self.options())
        if self.adjoint and torch.is_grad_enabled():
            self.func.count_vjp = False
            h1 = odeint_adjoint(self.func, h0, t, **kwargs)[-1]
        else:
            self.func.count_vjp = torch.is_grad_enabled()
            h1 = solve(self.func, h0, t, **kwargs).ys[-1]
            self.func.count_vjp = False
        self._nfe_at_forward_end = self.func.nfe
        self.nfe_forward = self.func.nfe - start
        return h1

    def extra_repr(self) -> str:
        how = f"step_size={self.step_size}" if self.step_size is not None else f"rtol={self.rtol:g}, atol={self.atol:g}"
        return f"method={self.method!r}, {how}, adjoint={self.adjoint}"


class Classifier(nn.Module):
    """downsampling → feature block (6 ResBlocks or one ODEBlock) → head. ``kind`` names which."""

    def __init__(self, kind: str, feature: nn.Module, channels: int = CHANNELS, in_channels: int = 1):
        super().__init__()
        self.kind = kind
        self.downsampling = nn.Sequential(
            nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
            _norm(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=4, stride=2, padding=1),
        )
        self.feature = feature
        self.head = nn.Sequential(_norm(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(channels, N_CLASSES))

    @property
    def ode_block(self) -> ODEBlock | None:
        return self.feature if isinstance(self.feature, ODEBlock) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.downsampling[0].in_channels:
            raise ValueError(f"expected images of shape (N, {self.downsampling[0].in_channels}, H, W); "
                             f"got {tuple(x.shape)}.")
        return self.head(self.feature(self.downsampling(x)))


def make_model(kind: str, *, channels: int = CHANNELS, method: str | None = None, rtol: float = 1e-3,
               atol: float = 1e-3, adjoint: bool | None = None, step_size: float | None = None,
               seed: int | None = 0, device=None) -> Classifier:
    """A fresh model of ``kind`` (``"resnet"``, ``"rknet"`` or ``"odenet"``), initialised from ``seed``.

    ODE-Net defaults: dopri5 at rtol = atol = 1e-3 with the adjoint. RK-Net: rk4 with step 0.25 and
    backprop through the solver. The ODE options are rejected for the ResNet.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}. Valid kinds: {', '.join(KINDS)}.")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"channels must be a positive integer; got {channels!r}.")
    if channels > GROUPS and channels % GROUPS:
        raise ValueError(f"channels must be a multiple of {GROUPS} (GroupNorm splits them into {GROUPS} groups); got {channels}.")
    if seed is not None:
        torch.manual_seed(seed)
    if kind == "resnet":
        if method is not None or adjoint is not None or step_size is not None:
            raise ValueError("method, adjoint and step_size apply to the ODE blocks (rknet, odenet), not to the resnet.")
        feature = nn.Sequential(*(ResBlock(channels) for _ in range(N_RES_BLOCKS)))
    elif kind == "rknet":
        if adjoint:
            raise ValueError("RK-Net is defined by backprop through a fixed-step solver: adjoint must be False.")
        feature = ODEBlock(ODEFunc(channels), method=method or "rk4", step_size=step_size or RKNET_STEP, adjoint=False)
    else:
        feature = ODEBlock(ODEFunc(channels), method=method or "dopri5", rtol=rtol, atol=atol,
                           adjoint=True if adjoint is None else adjoint, step_size=step_size)
    return Classifier(kind, feature, channels).to(resolve_device(device))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------
# Training and evaluation


@dataclass
class TrainConfig:
    """How :func:`train` trains: plain numbers, so that they can be saved with a checkpoint."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and name != "seed"):
                raise ValueError(f"TrainConfig.{name} must be a positive integer; got {value!r}.")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                raise ValueError(f"TrainConfig.{name} must be a finite number {'> 0' if name == 'lr' else '≥ 0'}; got {value!r}.")


@dataclass
class History:
    """What happened during training: one entry per batch (``loss``, NFE) or per epoch (the rest)."""

    loss: list[float] = field(default_factory=list)          # per batch
    nfe_forward: list[int] = field(default_factory=list)     # per batch (ODE blocks only)
    nfe_backward: list[int] = field(default_factory=list)    # per batch (ODE blocks only)
    epoch_time: list[float] = field(default_factory=list)    # seconds per epoch
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: list(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    def extend(self, other: "History") -> "History":
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))
        return self


def _check_images(x, y, what="data"):
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{what}: images and labels must be tensors; got {type(x).__name__} and {type(y).__name__}.")
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{what}: expected images (N, C, H, W) and labels (N,) with the same N > 0; "
                         f"got {tuple(x.shape)} and {tuple(y.shape)}.")


def train(model: Classifier, data, config: TrainConfig | None = None, *, progress: bool = True,
          on_batch: Callable[[History], None] | None = None, history: History | None = None) -> History:
    """Train ``model`` on ``data`` (a :class:`~odeteach.data.digits.Digits`) with Adam and cross-entropy.

    Batches are shuffled with a generator seeded from ``config.seed``, so the same model, data and
    config always give the same run on one machine. ``on_batch(history)`` is called after every
    batch (a live loss curve); the return value is the (extended) :class:`History`.
    """
    config = config or TrainConfig()
    _check_images(data.x_train, data.y_train, "training data")
    device = next(model.parameters()).device
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    history = history if history is not None else History()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(y_train)
    n_batches = math.ceil(n / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * n_batches)
    block = model.ode_block
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        correct = 0
        _sync(device)
        start = time.perf_counter()
        bar = progress_bar(range(n_batches), desc=f"{model.kind} epoch {epoch + 1}/{config.epochs}", enabled=progress)
        for b in bar:
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            logits = model(x_train[idx])
            loss = F.cross_entropy(logits, y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} in epoch {epoch + 1}; lower config.lr.")
            history.loss.append(value)
            correct += int((logits.argmax(1) == y_train[idx]).sum())
            if block is not None:
                history.nfe_forward.append(block.nfe_forward)
                history.nfe_backward.append(block.nfe_backward)
            bar.set_postfix(loss=f"{value:.3f}", **({"nfe": block.nfe_forward} if block is not None else {}))
            if on_batch is not None:
                on_batch(history)
        _sync(device)
        history.epoch_time.append(time.perf_counter() - start)
        history.train_accuracy.append(correct / n)
        history.test_accuracy.append(evaluate(model, data.x_test, data.y_test)["accuracy"])
    model.eval()
    return history


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(model: Classifier, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> dict:
    """Accuracy, mean loss, NFE per batch and seconds per batch of ``model`` on ``(x, y)``, and
    ``wrong``: the indices of the images it misclassifies (for :func:`compare_mistakes`).

    ``nfe_per_batch`` is the mean number of evaluations of f per forward pass of a batch (0 for
    the ResNet); one adaptive solve serves the whole batch, so every image of a batch shares it.
    """
    _check_images(x, y, "evaluation data")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    block = model.ode_block
    correct, loss_sum, nfes, times, wrong = 0, 0.0, [], [], []
    try:
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            _sync(device)
            start = time.perf_counter()
            logits = model(xb)
            _sync(device)
            times.append(time.perf_counter() - start)
            correct += int((logits.argmax(1) == yb).sum())
            wrong += (i + (logits.argmax(1) != yb).nonzero().flatten()).tolist()
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            nfes.append(block.nfe_forward if block is not None else 0)
    finally:
        model.train(was_training)
    return {"accuracy": correct / len(y), "loss": loss_sum / len(y), "nfe_per_batch": sum(nfes) / len(nfes),
            "seconds_per_batch": sum(times) / len(times), "batch_size": min(batch_size, len(y)),
            "wrong": tuple(wrong)}


@dataclass(frozen=True)
class SweepPoint:
    """The ODE-Net tested at one tolerance (rtol = atol = ``tol``)."""

    tol: float
    accuracy: float
    nfe_per_batch: float
    seconds_per_batch: float
    error: str | None = None     # why the solve failed at this tolerance, if it did
    wrong: tuple[int, ...] = ()  # indices of the misclassified images


def tolerance_sweep(model: Classifier, x: torch.Tensor, y: torch.Tensor, tolerances, *,
                    batch_size: int = 512, repeats: int = 1) -> list[SweepPoint]:
    """Test ``model`` (an ODE-Net) at each test-time tolerance; the training tolerance is restored after.

    ``seconds_per_batch`` is the fastest of ``repeats`` timings. A tolerance at which the solver
    fails gives a point with ``error`` set and NaN numbers, not an exception.
    """
    block = model.ode_block
    if block is None or not TABLEAUX[block.method].adaptive:
        raise ValueError("tolerance_sweep needs an ODE-Net with an adaptive method (e.g. make_model('odenet')).")
    tolerances = [float(t) for t in tolerances]
    if not tolerances or any(not math.isfinite(t) or t <= 0 for t in tolerances):
        raise ValueError(f"tolerances must be finite numbers > 0; got {tolerances}.")
    saved = (block.rtol, block.atol)
    points = []
    try:
        for tol in tolerances:
            block.rtol = block.atol = tol
            try:
                runs = [evaluate(model, x, y, batch_size=batch_size) for _ in range(max(1, int(repeats)))]
            except SolverError as exc:
                points.append(SweepPoint(tol, math.nan, math.nan, math.nan, str(exc)))
                continue
            best = min(runs, key=lambda r: r["seconds_per_batch"])
            points.append(SweepPoint(tol, best["accuracy"], best["nfe_per_batch"], best["seconds_per_batch"],
                                     wrong=best["wrong"]))
    finally:
        block.rtol, block.atol = saved
    return points


# --------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_path(kind: str, directory=None) -> Path:
    if kind not in KINDS:
        raise ValueError(f"Unknown model kind {kind!r}. Valid kinds: {', '.join(KINDS)}.")
    return Path(directory or CHECKPOINT_DIR) / f"digits_{kind}.pt"


def _model_config(model: Classifier) -> dict:
    block = model.ode_block
    config = {"kind": model.kind, "channels": model.head[-1].in_features}
    if block is not None:
        config.update(method=block.method, rtol=block.rtol, atol=block.atol, adjoint=block.adjoint,
                      step_size=block.step_size)
    return config


def save_checkpoint(model: Classifier, path, *, train_config: TrainConfig, history: History) -> Path:
    """Weights, the model's and training's configuration, and the history, all ``weights_only``-loadable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"format": 1, "model": _model_config(model), "train": asdict(train_config),
                "history": history.as_dict(), "state_dict": state}, path)
    return path


def load_pretrained(kind: str, *, directory=None, device=None) -> tuple[Classifier, History, dict]:
    """The shipped (or retrained) model of ``kind``, its training :class:`History` and its configs.

    Loaded with ``torch.load(..., weights_only=True)``.
    """
    path = checkpoint_path(kind, directory)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}. Retrain the shipped ones with: python -m odeteach.train digits")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(blob["model"])
    config.pop("kind")
    if kind == "resnet":
        config = {"channels": config["channels"]}
    elif kind == "rknet":
        config.pop("rtol"), config.pop("atol"), config.pop("adjoint")
    model = make_model(kind, seed=None, device="cpu", **config)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model.to(resolve_device(device)), History.from_dict(blob["history"]), {"model": blob["model"], "train": blob["train"]}


# The recipe the shipped checkpoints were trained with: python -m odeteach.train digits
CHECKPOINT_RECIPE = {
    "resnet": {},
    "rknet": {},
    "odenet": {"rtol": 1e-3, "atol": 1e-3, "adjoint": True},
}
CHECKPOINT_TRAIN = TrainConfig(epochs=15, batch_size=64, lr=3e-3, weight_decay=1e-4, seed=0)


def train_checkpoints(directory=None, *, kinds=KINDS, config: TrainConfig | None = None, data=None, device="cpu",
                      progress: bool = True) -> dict[str, Path]:
    """Retrain the shipped checkpoints from scratch into ``odeteach/checkpoints/digits_*.pt``.

    This is ``python -m odeteach.train digits``. Every model starts from ``config.seed`` and sees the
    batches in the same seeded order, so a rerun on the same machine and torch version gives the
    same weights. Defaults: :data:`CHECKPOINT_TRAIN` on :func:`~odeteach.data.digits.load_digits`, on the CPU.
    """
    from .data.digits import load_digits

    config = config or CHECKPOINT_TRAIN
    data = data if data is not None else load_digits()
    written = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # one thread: the same sums in the same order on any CPU count
    try:
        for kind in kinds:
            model = make_model(kind, seed=config.seed, device=device, **CHECKPOINT_RECIPE[kind])
            history = train(model, data, config, progress=progress)
            path = save_checkpoint(model, checkpoint_path(kind, directory), train_config=config, history=history)
            written[kind] = path
            print(f"{kind:7s} {count_parameters(model):7d} parameters · test accuracy {history.test_accuracy[-1]:.2%} · "
                  f"{sum(history.epoch_time):.0f} s · {path} ({path.stat().st_size / 1024:.0f} KiB)")
    finally:
        torch.set_num_threads(threads)
    return written

# Coarser than any tolerance gets: (method, step size); (None, None) skips the ODE block, h(1) = h(0).
COARSE_SOLVERS = ((None, None), ("euler", 1.0), ("euler", 0.5), ("midpoint", 1.0), ("rk4", 1.0))


@torch.no_grad()
def below_the_floor(model: Classifier, x: torch.Tensor, y: torch.Tensor, settings=COARSE_SOLVERS,
                    *, batch_size: int = 512) -> list[dict]:
    """Test an ODE-Net with fixed-step solvers coarser than its adaptive solver ever goes.

    For each ``(method, step_size)`` returns ``{"method", "step_size", "nfe", "accuracy", "wrong"}``; ``(None, None)``
    skips the ODE block (NFE 0). The model's own solver settings are restored afterwards.
    """
    block = model.ode_block
    if block is None:
        raise ValueError("below_the_floor needs a model with an ODE block (rknet or odenet).")
    _check_images(x, y, "evaluation data")
    saved = (block.method, block.step_size)
    rows = []
    try:
        for method, step_size in settings:
            if method is None:
                device = next(model.parameters()).device
                was_training = model.training
                model.eval()
                wrong = [i + int(k) for i in range(0, len(y), batch_size)
                         for k in (model.head(model.downsampling(x[i:i + batch_size].to(device))).argmax(1).cpu()
                                   != y[i:i + batch_size].cpu()).nonzero().flatten()]
                model.train(was_training)
                rows.append({"method": None, "step_size": None, "nfe": 0, "accuracy": 1 - len(wrong) / len(y),
                             "wrong": tuple(wrong)})
                continue
            if method not in TABLEAUX or TABLEAUX[method].adaptive:
                raise ValueError(f"below_the_floor takes fixed-step methods (euler, midpoint, heun, rk4); got {method!r}.")
            block.method, block.step_size = method, float(step_size)
            r = evaluate(model, x, y, batch_size=batch_size)
            rows.append({"method": method, "step_size": float(step_size), "nfe": r["nfe_per_batch"], "accuracy": r["accuracy"],
                         "wrong": r["wrong"]})
    finally:
        block.method, block.step_size = saved
    return rows


def breakdown_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float | None:
    """The tightest tested tolerance at which accuracy has fallen more than ``drop`` (0.01 = 1 point)
    below the accuracy at the tightest tolerance tested; ``None`` if it never does."""
    valid = sorted((p for p in points if math.isfinite(p.accuracy)), key=lambda p: p.tol)
    if not valid:
        raise ValueError("no tolerance in the sweep gave a result.")
    reference = valid[0].accuracy
    for p in valid:
        if p.accuracy < reference - drop:
            return p.tol
    return None


def _safe_run(points: list[SweepPoint], drop: float) -> list[SweepPoint]:
    """The points from the tightest tolerance up to the first whose accuracy falls more than ``drop``
    below the tightest one's (or whose solve failed), that one excluded."""
    if not isinstance(drop, (int, float)) or isinstance(drop, bool) or not math.isfinite(drop) or drop < 0:
        raise ValueError(f"drop must be a finite number ≥ 0; got {drop!r}.")
    ordered = sorted(points, key=lambda p: p.tol)
    if not ordered or not math.isfinite(ordered[0].accuracy):
        raise ValueError("the tightest tolerance of the sweep must have a result to compare with.")
    reference = ordered[0].accuracy
    run = [ordered[0]]
    for p in ordered[1:]:
        if not math.isfinite(p.accuracy) or p.accuracy < reference - drop:
            break
        run.append(p)
    return run


def loosest_safe_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float:
    """The loosest tested tolerance up to which accuracy never falls more than ``drop`` below the
    accuracy at the tightest tolerance tested. A tolerance at which the solve failed counts as a fall.

    Looser is not always cheaper: past dopri5's floor of evaluations every tolerance costs the same
    (see :func:`cheapest_safe_tolerance`).
    """
    return _safe_run(points, drop)[-1].tol


def cheapest_safe_tolerance(points: list[SweepPoint], *, drop: float = 0.01) -> float:
    """The tolerance to test at: among the safe ones (those :func:`loosest_safe_tolerance` accepts,
    from the tightest up), the one with the fewest NFE per batch, and of equal NFE the tightest,
    since a tolerance looser than that buys no evaluation and only adds solver error.
    """
    run = _safe_run(points, drop)
    return min(run, key=lambda p: (p.nfe_per_batch, p.tol)).tol


@dataclass(frozen=True)
class Comparison:
    """Two classifiers (or one at two solver settings) on the same ``n_images`` test images.

    ``only_a`` images are wrong for A alone, ``only_b`` for B alone. Only these decide which is better
    (McNemar's test): if A and B were equally good, each such image would be A's mistake or B's with
    even odds, so ``only_a − only_b`` would be within about 2·√(only_a + only_b) of zero 95% of the time.
    A smaller difference is a **tie**: these images cannot tell the two apart.
    """

    n_images: int
    wrong_a: int
    wrong_b: int
    only_a: int
    only_b: int

    @property
    def tie(self) -> bool:
        return abs(self.only_a - self.only_b) <= 2 * math.sqrt(self.only_a + self.only_b)

    def __str__(self) -> str:
        verdict = "a tie" if self.tie else "a real difference on these images"
        return (f"{self.wrong_a} vs {self.wrong_b} wrong of {self.n_images} images "
                f"({self.only_a} wrong only for the first, {self.only_b} only for the second): {verdict}")


def compare_mistakes(wrong_a, wrong_b, n_images: int) -> Comparison:
    """Compare two sets of misclassified image indices (``evaluate(...)["wrong"]``) on ``n_images``."""
    if not isinstance(n_images, int) or isinstance(n_images, bool) or n_images < 1:
        raise ValueError(f"n_images must be a positive integer; got {n_images!r}.")
    a, b = set(int(i) for i in wrong_a), set(int(i) for i in wrong_b)
    outside = [i for i in a | b if not 0 <= i < n_images]
    if outside:
        raise ValueError(f"image indices must lie in 0…{n_images - 1}; got {sorted(outside)[:5]}. "
                         "Pass the indices of the wrong images, e.g. evaluate(...)['wrong'].")
    return Comparison(n_images, len(a), len(b), len(a - b), len(b - a))


@torch.no_grad()
def solver_steps(model: Classifier, x: torch.Tensor, tol: float) -> list[float]:
    """Where the ODE-Net's adaptive solver puts its accepted steps on [0, 1] for the batch ``x`` at
    test-time tolerance rtol = atol = ``tol``: the step boundaries, 0.0 first and 1.0 last."""
    block = model.ode_block
    if block is None or not TABLEAUX[block.method].adaptive:
        raise ValueError("solver_steps needs an ODE-Net with an adaptive method (e.g. make_model('odenet')).")
    if not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a finite number > 0; got {tol!r}.")
    was_training = model.training
    model.eval()
    try:
        h0 = model.downsampling(x.to(next(model.parameters()).device))
        t = block.integration_time.to(h0.dtype)
        trace = solve(block.func, h0, t, rtol=tol, atol=tol, method=block.method, options=block.options(), trace=True).trace
    finally:
        model.train(was_training)
    return [0.0] + [s.t + s.h for s in trace if s.accepted]


# --------------------------------------------------------------------------------------------
# Memory, the Table-1 comparison, and a benchmark


def training_memory(model: Classifier, x: torch.Tensor, y: torch.Tensor):
    """Bytes autograd keeps for one training step on ``(x, y)`` (forward, loss, backward), counted by
    :func:`odeteach.memory.measure_saved`; parameters and the input batch are not counted.

    Returns the :class:`~odeteach.memory.MemoryReport`; the model's gradients are cleared afterwards.
    """
    from .memory import measure_saved

    _check_images(x, y, "memory batch")
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    was_training = model.training
    model.train()
    try:
        report = measure_saved(lambda: F.cross_entropy(model(x), y), exclude=[*model.parameters(), x],
                               backward=lambda loss: loss.backward())
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    report.result = None
    return report


# Chen et al. 2018, Table 1: MNIST, the paper's numbers (L: layers; L̃: function evaluations of the solver).
PAPER_TABLE1 = {
    "1-Layer MLP": {"test error": "1.60%", "params": "0.24M", "memory": "–", "time": "–"},
    "ResNet": {"test error": "0.41%", "params": "0.60M", "memory": "O(L)", "time": "O(L)"},
    "RK-Net": {"test error": "0.47%", "params": "0.22M", "memory": "O(L̃)", "time": "O(L̃)"},
    "ODE-Net": {"test error": "0.42%", "params": "0.22M", "memory": "O(1)", "time": "O(L̃)"},
}


def table1_markdown(rows: dict[str, dict]) -> str:
    """This lesson's measured rows next to the paper's Table 1, as a Markdown table.

    ``rows`` maps "ResNet", "RK-Net", "ODE-Net" to dicts with ``test_error`` (fraction), ``params``,
    ``saved_bytes`` (one training batch), ``ms_per_train_batch`` and ``nfe`` (forward, or None); with
    ``n_wrong`` and ``n_images`` the error also says how many test images it is.
    """
    from .memory import format_bytes

    lines = ["| model | test error (ours, digits) | params (ours) | memory saved for backward (ours) "
             "| time per training batch (ours) | NFE forward (ours) | test error (paper, MNIST) | params (paper) "
             "| memory (paper) | time (paper) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        paper = PAPER_TABLE1.get(name, dict.fromkeys(("test error", "params", "memory", "time"), "–"))
        nfe = "–" if row.get("nfe") is None else f"{row['nfe']:.0f}"
        images = f" ({row['n_wrong']} of {row['n_images']})" if "n_wrong" in row and "n_images" in row else ""
        lines.append(f"| {name} | {100 * row['test_error']:.2f}%{images} | {row['params'] / 1e6:.3f}M | "
                     f"{format_bytes(row['saved_bytes'])} | {row['ms_per_train_batch']:.0f} ms | {nfe} | "
                     f"{paper['test error']} | {paper['params']} | {paper['memory']} | {paper['time']} |")
    return "\n".join(lines)


def benchmark(*, epochs: int = 1, device="cpu", batch_size: int = 64) -> dict[str, dict]:
    """One training epoch of each model from scratch on the digits: seconds, and the CUDA peak where used.

    ``python -m odeteach.classifier [--device cuda]`` prints it (benchmarks/README.md, lesson 4).
    """
    from .data.digits import load_digits

    device = resolve_device(device)
    data = load_digits()
    results = {}
    for kind in KINDS:
        model = make_model(kind, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        history = train(model, data, TrainConfig(epochs=epochs, batch_size=batch_size), progress=False)
        results[kind] = {"seconds_per_epoch": sum(history.epoch_time) / epochs,
                         "test_accuracy": history.test_accuracy[-1],
                         "nfe_forward": (sum(history.nfe_forward) / len(history.nfe_forward)) if history.nfe_forward else None,
                         "cuda_peak_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None}
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m odeteach.classifier", description=benchmark.__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for kind, r in benchmark(epochs=args.epochs, device=args.device).items():
        peak = "" if r["cuda_peak_bytes"] is None else f" · CUDA peak {r['cuda_peak_bytes'] / 2**20:.1f} MiB"
        nfe = "" if r["nfe_forward"] is None else f" · NFE forward {r['nfe_forward']:.1f}"
        print(f"{kind:7s} {r['seconds_per_epoch']:6.1f} s per epoch on {args.device}{nfe}{peak}")
