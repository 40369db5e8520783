"""Network presets: the tutorial's last two sections, where the function is a whole network.

`NETWORKS` holds one `NetworkPreset` per name (`fn=tutorial_mlp`, `fn=discriminator`). A
preset builds its module from a seed and says what input it takes; the derivative studied
(see harness.study.network) is the vector-Jacobian product vᵀ ∂out/∂x with respect to the
input, not to the weights.

tutorial_mlp
    The tutorial's Sequential(Linear(10, 10), Tanh(), Conv1d(1, 1, 5, padding=2),
    Linear(10, 10)) on input (10, 1, 10): the Linear layers act on the last axis, the
    convolution on the (1 channel, 10 long) signal. Output (10, 1, 10), 100 elements.
    Smooth (tanh), so finite differences have no kinks to cross.

discriminator
    The tutorial's 1-D convolutional discriminator on input (batch 10, 1 channel, 2048):
      six parallel branches, kernel k in DISCRIMINATOR_KERNELS = 5, 17, 33, 65, 129, 257
      (about doubling, spanning 5..257): Conv1d(1, 4, k, padding=k//2) keeps length 2048
      (k odd), then ReLU, then MaxPool1d(32): 2048 -> 64;
      the six (10, 4, 64) maps concatenated on channels -> (10, 24, 64), flattened -> 1536;
      Dropout(p=0.3) (inactive in eval mode, the default; see `train` in network_study);
      Linear(1536, 64), LeakyReLU(0.2), Linear(64, 1). Output (10, 1), one score per sample.
    Piecewise linear in x (ReLU, max pooling, LeakyReLU): its gradient is piecewise
    constant, so a finite difference is exact up to rounding unless its stencil crosses a
    kink, and the gradient penalty's dP/dx is zero almost everywhere.

Weights come from torch's default initialisation under torch.manual_seed(seed), in float32,
and are cast to the run's dtype afterwards, so every dtype (and the float64 reference)
sees the same weight values. Inputs are seeded standard normals drawn in float64 and
rounded once to the run's dtype.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from harness.registry import Registry

DISCRIMINATOR_KERNELS = (5, 17, 33, 65, 129, 257)
DISCRIMINATOR_CHANNELS = 4
DISCRIMINATOR_LENGTH = 2048
DISCRIMINATOR_POOLED = 64
DISCRIMINATOR_HIDDEN = 64
DROPOUT_P = 0.3


@dataclass(frozen=True)
class NetworkPreset:
    name: str
    description: str
    input_shape: tuple[int, ...]
    # Builds the module with torch's default initialisation; `build` seeds it.
    make: Callable[[], nn.Module]
    # Input elements the per-point methods (finite, forward_ad: a forward pass or two per
    # element) check unless told otherwise; every element when the input is small.
    default_points: int = 64

    def build(self, seed: int) -> nn.Module:
        """The module with weights drawn under torch.manual_seed(seed), in eval mode.

        The global RNG is forked, so building a network leaves the caller's RNG untouched.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.make().eval()

    @property
    def numel(self) -> int:
        return int(torch.Size(self.input_shape).numel())


def stream_seed(seed: int, purpose: str) -> int:
    """An independent seed per purpose (input, cotangent, dropout, directions), so two
    draws from the same run seed never share their first numbers."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def network_input(preset: NetworkPreset, dtype: torch.dtype, device: torch.device | str,
                  seed: int) -> torch.Tensor:
    """Seeded standard normal of the preset's input shape: drawn in float64 on the CPU
    (identical on every machine), rounded once to `dtype`, then moved to `device`."""
    generator = torch.Generator().manual_seed(stream_seed(seed, "input"))
    x64 = torch.randn(preset.input_shape, generator=generator, dtype=torch.float64)
    return x64.to(dtype).to(device)


class SeededForward(nn.Module):
    """Wraps a network so that, in train mode, every forward pass draws the same random
    numbers (dropout masks) from `seed`: the method, the float64 reference and every
    finite-difference evaluation then see one and the same network. In eval mode it is
    the plain network (no RNG is touched). The caller's RNG state is restored afterwards."""

    def __init__(self, network: nn.Module, seed: int) -> None:
        super().__init__()
        self.network = network
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.network(x)
        devices = [_cuda_index(x.device)] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            return self.network(x)


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def prepare_network(preset: NetworkPreset, dtype: torch.dtype, device: torch.device | str,
                    seed: int, train: bool = False) -> nn.Module:
    """The preset's seeded network in `dtype` on `device`, in eval mode unless `train`."""
    network = SeededForward(preset.build(seed), stream_seed(seed, "dropout"))
    return network.to(device=device, dtype=dtype).train(train)


# --- presets ----------------------------------------------------------------------------------

def tutorial_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 10), nn.Tanh(), nn.Conv1d(1, 1, 5, padding=2),
                         nn.Linear(10, 10))


class ParallelConv1d(nn.Module):
    """Conv1d branches of different kernel sizes over the same signal, each followed by
    ReLU and max pooling to a common length, concatenated along the channel axis."""

    def __init__(self, kernels: tuple[int, ...], channels: int, length: int,
                 pooled: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv1d(1, channels, k, padding=k // 2), nn.ReLU(),
                          nn.MaxPool1d(length // pooled))
            for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


def discriminator() -> nn.Module:
    features = len(DISCRIMINATOR_KERNELS) * DISCRIMINATOR_CHANNELS * DISCRIMINATOR_POOLED
    return nn.Sequential(
        ParallelConv1d(DISCRIMINATOR_KERNELS, DISCRIMINATOR_CHANNELS, DISCRIMINATOR_LENGTH,
                       DISCRIMINATOR_POOLED),
        nn.Flatten(),
        nn.Dropout(DROPOUT_P),
        nn.Linear(features, DISCRIMINATOR_HIDDEN),
        nn.LeakyReLU(0.2),
        nn.Linear(DISCRIMINATOR_HIDDEN, 1),
    )


NETWORKS: Registry[NetworkPreset] = Registry("network", [
    NetworkPreset(
        "tutorial_mlp",
        "the tutorial's Sequential(Linear(10,10), Tanh(), Conv1d(1,1,5,padding=2), "
        "Linear(10,10)) on (10,1,10)",
        (10, 1, 10), tutorial_mlp, default_points=100),
    NetworkPreset(
        "discriminator",
        "1-D conv discriminator on (10,1,2048): Conv1d(1,4,k) for k in 5..257, ReLU, "
        "MaxPool1d(32), concat, Dropout(0.3), Linear(1536,64), LeakyReLU, Linear(64,1)",
        # 64 of 20480: a float64 forward pass takes about 0.5 s on a 2-core CPU.
        (10, 1, DISCRIMINATOR_LENGTH), discriminator, default_points=64),
])
