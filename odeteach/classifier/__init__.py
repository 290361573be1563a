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

The package reads in the order a lesson uses it:

- :mod:`.models`: the layers, :func:`make_model` and the device;
- :mod:`.training`: :func:`train` (on :func:`odeteach.training.fit`), :class:`TrainConfig`, :class:`History`;
- :mod:`.evaluation`: :func:`evaluate`, :func:`tolerance_sweep`, :func:`below_the_floor`, :func:`compare_mistakes`,
  :func:`solver_steps`, :func:`training_memory`;
- :mod:`.checkpoints`: the shipped checkpoints, retrained from scratch by ``python -m odeteach.train digits``
  (:func:`train_checkpoints`) and loaded by :func:`load_pretrained`;
- :mod:`.table1`: the paper's Table 1 beside ours, and ``python -m odeteach.classifier``'s benchmark.
"""

from . import checkpoints, evaluation, models, table1, training
from .checkpoints import (CHECKPOINT_DIR, CHECKPOINT_RECIPE, CHECKPOINT_TRAIN, REGULARISATION, REGULARISED, SHIPPED,
                          checkpoint_path, load_pretrained, save_checkpoint, train_checkpoints, train_regularised)
from .evaluation import (COARSE_SOLVERS, Comparison, SweepPoint, below_the_floor, breakdown_tolerance, check_images,
                         cheapest_safe_tolerance, compare_mistakes, evaluate, loosest_safe_tolerance, solver_steps,
                         tolerance_sweep, training_memory)
from .models import (CHANNELS, GROUPS, KINDS, N_CLASSES, N_RES_BLOCKS, RKNET_STEP, Classifier, ConcatConv2d, ODEBlock,
                     ODEFunc, ResBlock, count_parameters, group_norm, make_model, resolve_device, synchronize)
from .table1 import PAPER_TABLE1, benchmark, table1_markdown
from .training import History, TrainConfig, train

__all__ = [*models.__all__, *training.__all__, *evaluation.__all__, *checkpoints.__all__, *table1.__all__]
