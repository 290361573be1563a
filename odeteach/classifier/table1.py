"""The paper's Table 1 next to this lesson's measurements, and a one-epoch benchmark of the three models."""

from __future__ import annotations

import torch

from ..data.digits import load_digits
from ..memory import format_bytes
from .models import KINDS, make_model, resolve_device
from .training import TrainConfig, train

__all__ = ["PAPER_TABLE1", "table1_markdown", "benchmark"]

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
