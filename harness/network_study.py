"""Vector-Jacobian products of a network with respect to its input: methods, checks, a run.

For a network out = model(x) with out of any shape, the derivative studied is the
vector-Jacobian product vᵀJ = ∂(v·out)/∂x, one entry per input element, with v of the
output's shape: ones (the default; what `out.backward()` of a sum gives) or a seeded
random normal. The tutorial's claim under test: `out.backward(v)` then `x.grad` and
`torch.autograd.grad(out, x, grad_outputs=v)` are the same computation.

`VJP_METHODS` (pure: tensors in, tensor out, no I/O):
  autograd    torch.autograd.grad(out, x, grad_outputs=v)
  backward    out.backward(v), then x.grad (the tutorial's form)
  loop        one backward per output element, accumulating into x.grad (small outputs only)
  finite      difference quotient of v·out along each checked input element e_i
  forward_ad  forward mode: v·(J e_i) by torch.func.jvp, per checked element
Per-point methods (finite, forward_ad) cost a forward pass or two per input element, so they
run on a deterministic strided subsample of at most `max_points` elements (`n_checked`;
default: the preset's `default_points`) and are timed on the first TIMED_POINTS of them;
the others give every entry and are checked and timed on all of them.

The reference is float64 autograd (`reference = float64-autograd`): a deep copy of the
network in float64, at exactly the dtype-rounded x and v the method saw, with the same
dropout mask. In float64 the autograd method *is* the reference, so its error is 0 by
construction; the float64 finite and forward-mode rows are the independent checks.

Every record also carries the network's cross-checks, whatever the method:
  bitwise_backward_vs_autograd / max_abs_diff_backward_vs_autograd  in the run's dtype
  forward_mode_rel_diff  |v·(J u) - (vᵀJ)·u| / max of the two, u a seeded random direction
  gp_rel_err  gradient-penalty second order: g = autograd.grad(out, x, ones,
              create_graph=True), P = sum(g²), dP/dx by double backward vs a central
              difference of P, in float64, along a few seeded coordinate directions
A finite difference whose stencil changes which side of a ReLU/LeakyReLU kink an
activation is on, or which element a max pool picks, is excluded as 'stencil' and
counted (the design's rule for stencils across kinks), not averaged in silently.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.benchmark.utils.timer import timer as synced_timer

from harness.config import DTYPES, ConfigError, TimingConf, parse_device, parse_dtype, parse_timing
from harness.machine import machine_info
from harness.methods import FINITE_OFFSETS, METHODS, default_step, describe_finite
from harness.metrics import estimate_calibration, point_errors, summarize
from harness.networks import NETWORKS, NetworkPreset, network_input, prepare_network, stream_seed
from harness.registry import Registry, choice_error
from harness.runner import (DTYPE_NAMES, UNSUPPORTED_PHRASES, Outcome, check_indices,
                            timing_columns)
from harness.timing import time_call

REFERENCE = "float64-autograd"
V_KINDS = ("ones", "random")
# The loop does one backward pass per output element; past this many it is not a method
# anyone would use, and the run is recorded as unsupported.
LOOP_MAX_OUTPUTS = 1000
# Per-point methods are timed on at most this many elements: their cost is linear in the
# count (points_per_s says it), and timing all checked points would cost minutes.
TIMED_POINTS = 8
GP_DIRECTIONS = 3

Model = Callable[[torch.Tensor], torch.Tensor]


# --- the vector-Jacobian methods -----------------------------------------------------------

def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def vjp_autograd(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """torch.autograd.grad(out, x, grad_outputs=v): only the path to x is differentiated."""
    xg = _leaf(x)
    with torch.enable_grad():
        out = model(xg)
        (grad,) = torch.autograd.grad(out, xg, grad_outputs=v)
    return grad


def vjp_backward(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """out.backward(v); x.grad, as in the tutorial.

    backward() also accumulates the weights' gradients (part of what it costs, so it is
    timed); they are set back to None afterwards so repeated calls never accumulate.
    """
    xg = _leaf(x)
    with torch.enable_grad():
        model(xg).backward(v)
    if isinstance(model, nn.Module):
        for parameter in model.parameters():
            parameter.grad = None
    return xg.grad


def vjp_loop(model: Model, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One backward per output element j, each adding v_j ∂out_j/∂x into x.grad.

    `inputs=[x]` keeps the weights' gradients out of it: the loop is about accumulation
    in x.grad (a different summation order from autograd's, hence not bitwise equal).
    """
    xg = _leaf(x)
    with torch.enable_grad():
        out, weights = model(xg).reshape(-1), v.reshape(-1)
        for j in range(out.numel()):
            out[j].backward(weights[j], retain_graph=j + 1 < out.numel(), inputs=[xg])
    return xg.grad if xg.grad is not None else torch.zeros_like(x)


def _with_element(x: torch.Tensor, i: int, value: torch.Tensor) -> torch.Tensor:
    shifted = x.clone()
    shifted.view(-1)[i] = value
    return shifted


# Layers with kinks: what decides their branch (ReLU side, max-pool winner). A finite
# difference whose two ends see different patterns straddles a kink. One line per layer.
KINK_PATTERNS: dict[type, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    nn.ReLU: lambda m, x: x > 0,
    nn.LeakyReLU: lambda m, x: x > 0,
    nn.MaxPool1d: lambda m, x: F.max_pool1d(x, m.kernel_size, m.stride, m.padding, m.dilation,
                                            m.ceil_mode, return_indices=True)[1],
}


@contextmanager
def watch_kinks(model: Model) -> Iterator[list[torch.Tensor]]:
    """Inside the block, every forward pass appends each kinked layer's pattern to the list."""
    seen: list[torch.Tensor] = []
    modules = model.modules() if isinstance(model, nn.Module) else []

    def record(module: nn.Module, args: tuple, _output) -> None:
        seen.append(KINK_PATTERNS[type(module)](module, args[0]))

    hooks = [m.register_forward_hook(record) for m in modules if type(m) in KINK_PATTERNS]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def _finite_entry(model: Model, x: torch.Tensor, v: torch.Tensor, i: int, scheme: str,
                  h: Optional[float], seen: list) -> tuple[torch.Tensor, bool]:
    """(v·out(x + b e_i) - v·out(x + a e_i)) / ((b - a) step), and whether it crossed a kink.

    The step is the one the dtype really takes, (x_i + h) - x_i. Outputs are subtracted
    elementwise before the dot with v: the same quotient, without first rounding the two
    large sums whose difference is wanted.
    """
    xi = x.reshape(-1)[i]
    step = default_step(xi, scheme, 1) if h is None else torch.full_like(xi, h)
    step = (xi + step) - xi
    a, b = min(FINITE_OFFSETS[(scheme, 1)]), max(FINITE_OFFSETS[(scheme, 1)])
    ends = []
    for k in (a, b):
        seen.clear()
        ends.append((model(_with_element(x, i, xi + k * step)), list(seen)))
    (lo, lo_pattern), (hi, hi_pattern) = ends
    crossed = any(not torch.equal(p, q) for p, q in zip(lo_pattern, hi_pattern))
    return (v * (hi - lo)).sum() / ((b - a) * step), crossed


def finite_with_kinks(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray,
                      h: Optional[float] = None,
                      scheme: str = "central") -> tuple[torch.Tensor, np.ndarray]:
    """vjp_finite's values at idx, and per point whether its stencil crossed a kink."""
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    crossed = np.zeros(len(idx), dtype=bool)
    with torch.no_grad(), watch_kinks(model) as seen:
        for k, i in enumerate(idx):
            values[k], crossed[k] = _finite_entry(model, x, v, int(i), scheme, h, seen)
    return values, crossed


def vjp_finite(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray,
               h: Optional[float] = None, scheme: str = "central") -> torch.Tensor:
    """Difference quotient of v·out along e_i for each i in idx (flat indices of x).

    Default step: the dtype's eps^(1/3)·max(1, |x_i|) for central differences and
    eps^(1/2)·max(1, |x_i|) for one-sided ones (harness.methods.default_step); `h` fixes it.
    """
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    seen: list = []  # no layer is watched: the list stays empty
    with torch.no_grad():
        for k, i in enumerate(idx):
            values[k] = _finite_entry(model, x, v, int(i), scheme, h, seen)[0]
    return values


def jvp_dot(model: Model, x: torch.Tensor, v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """v·(J u): one forward-mode pass (torch.func.jvp) with tangent u, dotted with v."""
    with torch.no_grad():  # no reverse graph through the weights; forward AD is unaffected
        _, tangent_out = torch.func.jvp(model, (x.detach(),), (u,))
    return (v * tangent_out).sum()


def vjp_forward(model: Model, x: torch.Tensor, v: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
    """Forward mode, one element at a time: entry i of vᵀJ is v·(J e_i)."""
    values = torch.empty(len(idx), dtype=x.dtype, device=x.device)
    for k, i in enumerate(idx):
        values[k] = jvp_dot(model, x, v, _with_element(torch.zeros_like(x), int(i),
                                                       torch.ones((), dtype=x.dtype)))
    return values


def _any_outputs(n_outputs: int) -> Optional[str]:
    return None


def _few_outputs(n_outputs: int) -> Optional[str]:
    if n_outputs > LOOP_MAX_OUTPUTS:
        return (f"the output has {n_outputs} elements; the loop does one backward pass per "
                f"element and is run only up to {LOOP_MAX_OUTPUTS}")
    return None


@dataclass(frozen=True)
class VjpMethod:
    name: str
    # Whole-input methods: fn(model, x, v) -> vᵀJ shaped like x. Per-point methods:
    # fn(model, x, v, idx, **params) -> the entries at the flat indices idx.
    fn: Callable[..., torch.Tensor]
    per_point: bool = False
    # n_outputs -> why the method cannot run, or None.
    supports: Callable[[int], Optional[str]] = _any_outputs
    # (dtype, **params) -> record fields such as scheme, h, h_mode.
    describe: Callable[..., dict] = lambda dtype, **_: {}
    # Same values as fn, plus per point whether the stencil crossed a kink.
    with_kinks: Optional[Callable[..., tuple[torch.Tensor, np.ndarray]]] = None


VJP_METHODS: Registry[VjpMethod] = Registry("vector-Jacobian method")
VJP_METHODS.add("autograd", VjpMethod("autograd", vjp_autograd))
VJP_METHODS.add("backward", VjpMethod("backward", vjp_backward))
VJP_METHODS.add("loop", VjpMethod("loop", vjp_loop, supports=_few_outputs))
VJP_METHODS.add("finite", VjpMethod(
    "finite", vjp_finite, per_point=True, with_kinks=finite_with_kinks,
    describe=lambda dtype, scheme="central", h=None: describe_finite(dtype, 1, scheme, h)))
VJP_METHODS.add("forward_ad", VjpMethod("forward_ad", vjp_forward, per_point=True))


# --- inputs, reference and the cross-checks ------------------------------------------------

def cotangent(shape: torch.Size, v_kind: str, dtype: torch.dtype, device: torch.device,
              seed: int) -> torch.Tensor:
    """v: ones, or a seeded standard normal drawn in float64 and rounded once to dtype."""
    if v_kind == "ones":
        return torch.ones(shape, dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(stream_seed(seed, "cotangent"))
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype).to(device)


def float64_copy(model: nn.Module) -> nn.Module:
    """The same network, weights cast to float64 (exactly: every dtype embeds in float64)."""
    return copy.deepcopy(model).to(torch.float64)


def backward_vs_autograd(model: Model, x: torch.Tensor, v: torch.Tensor) -> dict:
    """Whether out.backward(v) and autograd.grad(out, x, v) agree bit for bit, in x's dtype."""
    by_backward, by_grad = vjp_backward(model, x, v), vjp_autograd(model, x, v)
    return {"bitwise_backward_vs_autograd": bool(torch.equal(by_backward, by_grad)),
            "max_abs_diff_backward_vs_autograd":
                float((by_backward.double() - by_grad.double()).abs().max())}


def _rel_diff(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def forward_mode_check(model: Model, x: torch.Tensor, v: torch.Tensor, seed: int) -> dict:
    """v·(J u) by forward mode against (vᵀJ)·u by reverse mode, u a seeded random direction,
    both in x's dtype; the dots are accumulated in float64 so only the AD differs."""
    generator = torch.Generator().manual_seed(stream_seed(seed, "direction"))
    u = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.dtype).to(x.device)
    with torch.no_grad():
        _, ju = torch.func.jvp(model, (x.detach(),), (u,))
    forward = float((v.double() * ju.double()).sum())
    reverse = float((vjp_autograd(model, x, v).double() * u.double()).sum())
    return {"forward_mode_rel_diff": _rel_diff(forward, reverse)}


def penalty(model: Model, x: torch.Tensor,
            create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A gradient penalty's P = sum(g²), g = autograd.grad(out, x, ones) -> (P, leaf x)."""
    xg = _leaf(x)
    with torch.enable_grad():
        out = model(xg)
        (g,) = torch.autograd.grad(out, xg, torch.ones_like(out), create_graph=create_graph)
        return (g * g).sum(), xg


def penalty_gradient(model: Model, x: torch.Tensor) -> torch.Tensor:
    """dP/dx by double backward (create_graph=True, then the gradient of P).

    materialize_grads: a piecewise-linear network's g does not depend on x, so dP/dx is 0.
    """
    value, xg = penalty(model, x, create_graph=True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(value, xg, allow_unused=True, materialize_grads=True)
    return grad


def _penalty_difference(model: Model, x: torch.Tensor, i: int) -> float:
    """Central difference of P along e_i, exact step, float64 step eps^(1/3)·max(1, |x_i|)."""
    xi = x.reshape(-1)[i]
    step = (xi + default_step(xi, "central", 1)) - xi
    hi = penalty(model, _with_element(x, i, xi + step))[0]
    lo = penalty(model, _with_element(x, i, xi - step))[0]
    return float((hi - lo) / (2 * step))


def gradient_penalty_check(model64: Model, x64: torch.Tensor, seed: int,
                           n_directions: int = GP_DIRECTIONS) -> dict:
    """Double-backward dP/dx against central differences of P, in float64.

    The directions are seeded random coordinates e_i rather than dense random vectors: a
    dense direction moves every ReLU input of the discriminator at once and almost surely
    crosses a kink within the step, where a difference of P means nothing.
    gp_rel_err = max |AD - FD| / max |FD or AD| (0 when both are exactly 0, as for a
    piecewise-linear network); gp_max_abs shows the size of what was compared.
    """
    generator = torch.Generator().manual_seed(stream_seed(seed, "penalty"))
    coords = torch.randperm(x64.numel(), generator=generator)[:n_directions].tolist()
    by_ad = penalty_gradient(model64, x64).reshape(-1)[coords].double().cpu().numpy()
    by_fd = np.array([_penalty_difference(model64, x64, i) for i in coords])
    scale = float(np.max(np.abs(np.concatenate([by_ad, by_fd]))))
    error = float(np.max(np.abs(by_ad - by_fd)))
    return {"gp_rel_err": error / scale if scale > 0 else 0.0, "gp_max_abs": scale,
            "gp_n_directions": len(coords)}


# --- one study run ----------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkRun:
    """Everything one run computes with: the network in the run's dtype, x, v."""

    preset: NetworkPreset
    model: nn.Module
    x: torch.Tensor
    v: torch.Tensor
    seed: int


def network_run(name: str, dtype: torch.dtype, device: torch.device, v_kind: str, train: bool,
                seed: int) -> NetworkRun:
    preset = NETWORKS.get(name)
    model = prepare_network(preset, dtype, device, seed, train)
    x = network_input(preset, dtype, device, seed)
    with torch.no_grad():
        shape = model(x).shape
    return NetworkRun(preset, model, x, cotangent(shape, v_kind, dtype, device, seed), seed)


def evaluate(method: VjpMethod, run: NetworkRun, idx: np.ndarray,
             params: dict) -> tuple[torch.Tensor, np.ndarray]:
    """The method's entries at idx (flat), and per entry whether a stencil crossed a kink."""
    if not method.per_point:
        whole = method.fn(run.model, run.x, run.v).reshape(-1)
        return whole[torch.as_tensor(idx, device=whole.device)], np.zeros(len(idx), dtype=bool)
    if method.with_kinks is not None:
        return method.with_kinks(run.model, run.x, run.v, idx, **params)
    return method.fn(run.model, run.x, run.v, idx, **params), np.zeros(len(idx), dtype=bool)


def time_method(method: VjpMethod, run: NetworkRun, idx: np.ndarray, params: dict,
                timing: TimingConf) -> tuple:
    """(method timing, forward timing, n_timed); per-point methods on TIMED_POINTS of idx."""
    threads = timing.num_threads or torch.get_num_threads()
    if method.per_point:
        timed = idx[:TIMED_POINTS]
        call, n_timed = (lambda: method.fn(run.model, run.x, run.v, timed, **params)), len(timed)
    else:
        call, n_timed = (lambda: method.fn(run.model, run.x, run.v)), run.x.numel()

    def forward():
        with torch.no_grad():
            return run.model(run.x)

    return (time_call(call, min_run_time=timing.min_run_time, num_threads=threads),
            time_call(forward, min_run_time=timing.min_run_time, num_threads=threads), n_timed)


def cross_checks(run: NetworkRun, model64: nn.Module) -> dict:
    """The network's consistency columns; the same for every method of a configuration."""
    return {**backward_vs_autograd(run.model, run.x, run.v),
            **forward_mode_check(run.model, run.x, run.v, run.seed),
            **gradient_penalty_check(model64, run.x.double(), run.seed)}


def identity_columns(name: str, method: str, describe: dict, dtype: torch.dtype,
                     device: torch.device, n: int, v_kind: str, train: bool, seed: int,
                     run_dir: Path) -> dict:
    """What ran, where and when: runner.identity_columns' names, plus the network's own."""
    preset = NETWORKS.get(name)
    return {
        "fn": name, "fn_source": "network", "method": method, "scheme": "", "h": math.nan,
        "h_mode": "", "accuracy_order": math.nan, **describe, "order": 1,
        "dtype": DTYPE_NAMES[dtype], "device": device.type, "n": n,
        **machine_info(device), "seed": seed,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run_dir), "notes": "",
        "network": preset.description, "input_shape": "x".join(map(str, preset.input_shape)),
        "v_kind": v_kind, "train_mode": bool(train),
    }


def _unsupported(identity: dict, reason: str) -> Outcome:
    return Outcome({**identity, "status": "unsupported",
                    "status_reason": f"{identity['method']}: {reason}"}, pd.DataFrame())


def _unsupported_reason(err: Exception) -> Optional[str]:
    """torch's 'no kernel for this dtype/device' errors, as runner._call recognises them."""
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return first_line[:300] if any(p in first_line for p in UNSUPPORTED_PHRASES) else None


def run_network_study(name: str, method: str, dtype: torch.dtype | str,
                      device: torch.device | str = "cpu", v_kind: str = "ones",
                      train: bool = False, seed: int = 0,
                      max_points: Optional[int] = None, run_dir: Path = Path("."),
                      params: Optional[dict] = None,
                      timing: Optional[TimingConf] = None) -> Outcome:
    """One network x VJP method x dtype x device x v x train mode: values, errors, checks, timing.

    max_points: input elements the per-point methods check (None: the preset's default);
    the other methods are checked at every element.
    """
    dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    device, params, timing = torch.device(device), params or {}, timing or TimingConf()
    n = NETWORKS.get(name).numel
    known = method in VJP_METHODS
    describe = VJP_METHODS.get(method).describe(dtype, **params) if known else {}
    identity = identity_columns(name, method, describe, dtype, device, n, v_kind, train, seed,
                                run_dir)
    if not known:
        return _unsupported(identity, "not a vector-Jacobian method for networks; "
                                      + choice_error("method", method, VJP_METHODS.names()))
    try:
        return _measure(VJP_METHODS.get(method), identity, dtype, device, v_kind, train, seed,
                        max_points, params, timing)
    except (RuntimeError, NotImplementedError, TypeError, ValueError) as err:
        reason = _unsupported_reason(err)
        if reason is None:
            raise
        return _unsupported(identity, reason)


def _measure(method: VjpMethod, identity: dict, dtype: torch.dtype, device: torch.device,
             v_kind: str, train: bool, seed: int, max_points: Optional[int], params: dict,
             timing: TimingConf) -> Outcome:
    run = network_run(identity["fn"], dtype, device, v_kind, train, seed)
    n = run.x.numel()
    reason = method.supports(run.v.numel())
    if reason:
        return _unsupported(identity, reason)
    points = max_points or run.preset.default_points
    idx = check_indices(n, points) if method.per_point else np.arange(n)
    start = synced_timer()
    values, crossed = evaluate(method, run, idx, params)
    first_call_s = synced_timer() - start
    model64 = float64_copy(run.model)
    ref64 = _at(vjp_autograd(model64, run.x.double(), run.v.double()), idx)
    df64, x64 = values.detach().double().cpu().numpy(), _at(run.x, idx)
    timings = time_method(method, run, idx, params, timing) if timing.enabled else (None, None, 0)
    record = {
        **identity, "n_checked": len(idx), "x_min": float(x64.min()), "x_max": float(x64.max()),
        "reference": REFERENCE, "reference_dps": 0,
        "reference_uncertainty_max": math.nan,  # float64 autograd gives no error estimate
        "status": "ok", "status_reason": "",
        **summarize(df64, ref64, np.zeros_like(ref64), crossed, dtype),
        **estimate_calibration(None, df64, ref64, np.zeros_like(ref64), crossed),
        "n_excluded": int(crossed.sum()), "n_excluded_domain": 0, "n_excluded_kink": 0,
        "n_excluded_stencil": int(crossed.sum()),
        **timing_columns(timings[0], timings[1], n_timed=timings[2], first_call_s=first_call_s),
        "n_outputs": run.v.numel(),
        **cross_checks(run, model64),
    }
    return Outcome(record, points_table(idx, x64, df64, ref64, crossed, dtype))


def _at(values: torch.Tensor, idx: np.ndarray) -> np.ndarray:
    """The entries at flat indices idx, as float64 NumPy."""
    flat = values.reshape(-1)
    return flat[torch.as_tensor(idx, device=flat.device)].double().cpu().numpy()


def points_table(idx: np.ndarray, x64: np.ndarray, df64: np.ndarray, ref64: np.ndarray,
                 crossed: np.ndarray, dtype: torch.dtype) -> pd.DataFrame:
    """One row per checked input element (flat index into x)."""
    ref_lo = np.zeros_like(ref64)
    abs_err, ulp_err = point_errors(df64, ref64, ref_lo, dtype)
    return pd.DataFrame({
        "index": idx, "x": x64, "df": df64, "df_ref": ref64, "df_ref_lo": ref_lo,
        "abs_err": abs_err, "ulp_err": ulp_err,
        "excluded": np.where(crossed, "stencil", "").astype(str),
    })


# --- from a composed config -----------------------------------------------------------------

def network_study_args(cfg: DictConfig) -> dict:
    """A composed config with fn.kind == 'network' -> run_network_study's arguments, or
    ConfigError with a one-line message."""
    if cfg.fn.name not in NETWORKS:
        raise ConfigError(choice_error("network", cfg.fn.name, NETWORKS.names()))
    if cfg.get("order", 1) != 1:
        raise ConfigError(f"networks: order must be 1 (the vector-Jacobian product; the "
                          f"gradient-penalty check covers second order), got {cfg.order}")
    v_kind, train = cfg.fn.get("v", "ones"), cfg.fn.get("train", False)
    if v_kind not in V_KINDS:
        raise ConfigError(choice_error("fn.v", v_kind, list(V_KINDS)))
    if not isinstance(train, bool):
        raise ConfigError(f"fn.train must be true or false, got {train!r}")
    max_points = cfg.fn.get("max_points", None)
    if max_points is not None and max_points < 2:
        raise ConfigError(f"fn.max_points must be >= 2, got {max_points}")
    params = {k: val for k, val in OmegaConf.to_container(cfg.method).items() if k != "name"}
    if cfg.method.name in METHODS:
        problem = METHODS.get(cfg.method.name).check(**params)
        if problem:
            raise ConfigError(problem)
    return {"name": cfg.fn.name, "method": cfg.method.name, "dtype": parse_dtype(cfg.dtype.name),
            "device": parse_device(cfg.device.name), "v_kind": v_kind, "train": train,
            "seed": int(cfg.seed), "max_points": max_points, "params": params,
            "timing": parse_timing(cfg.timing)}


def run_network_config(cfg: DictConfig, run_dir: Path) -> Outcome:
    """cli.py's call for fn.kind == 'network' (in place of validate + run_study)."""
    return run_network_study(**network_study_args(cfg), run_dir=run_dir)


# --- for reports --------------------------------------------------------------------------------

CONSISTENCY_KEYS = ["fn", "dtype", "device", "v_kind", "train_mode"]


def consistency_table(records: pd.DataFrame) -> pd.DataFrame:
    """One row per network x dtype x device x v x train mode: whether out.backward(v) and
    autograd.grad agree bitwise (in every run), their largest difference, the forward-mode
    and gradient-penalty checks, and how far the finite differences are from the reference."""
    if "fn_source" not in records:
        return pd.DataFrame()
    ok = records[(records["fn_source"] == "network") & (records["status"] == "ok")]
    if ok.empty:
        return pd.DataFrame()
    checks = ok.groupby(CONSISTENCY_KEYS).agg(
        bitwise_backward_vs_autograd=("bitwise_backward_vs_autograd", "all"),
        max_abs_diff_backward_vs_autograd=("max_abs_diff_backward_vs_autograd", "max"),
        forward_mode_rel_diff=("forward_mode_rel_diff", "max"),
        gp_rel_err=("gp_rel_err", "max"))
    finite = ok[ok["method"] == "finite"].groupby(CONSISTENCY_KEYS).agg(
        finite_max_rel_err=("max_rel_err", "max"), finite_norm_rel_err=("norm_rel_err", "max"),
        finite_n_excluded=("n_excluded", "max"))
    return checks.join(finite, how="left").reset_index()


def consistency_rows(record: dict) -> list[tuple[str, object]]:
    """(quantity, value) rows for one network run's report."""
    if record.get("fn_source") != "network" or record.get("status") != "ok":
        return []
    return [
        ("v (cotangent)", record["v_kind"]),
        ("train mode (dropout active, fixed seed)", record["train_mode"]),
        ("out.backward(v) == autograd.grad(out, x, v), bitwise",
         record["bitwise_backward_vs_autograd"]),
        ("max |backward - autograd.grad|", record["max_abs_diff_backward_vs_autograd"]),
        ("forward mode v·(Ju) vs reverse (vᵀJ)·u, relative", record["forward_mode_rel_diff"]),
        ("gradient penalty dP/dx, double backward vs finite difference (float64), relative",
         record["gp_rel_err"]),
        ("reference", record["reference"]),
    ]


def consistency_words(table: pd.DataFrame) -> list[str]:
    """One sentence per row of consistency_table, for a report's findings."""
    lines = []
    for row in table.itertuples(index=False):
        agree = "agree bitwise" if row.bitwise_backward_vs_autograd else \
            f"differ by up to {row.max_abs_diff_backward_vs_autograd:.3g}"
        line = (f"{row.fn} ({row.dtype}, {row.device}, v={row.v_kind}"
                f"{', train mode' if row.train_mode else ''}): out.backward(v) and "
                f"torch.autograd.grad {agree}; forward mode within "
                f"{row.forward_mode_rel_diff:.2g} (relative); gradient-penalty check "
                f"{row.gp_rel_err:.2g}")
        if not pd.isna(row.finite_max_rel_err):
            line += f"; finite differences up to {row.finite_norm_rel_err:.2g} (norm-relative)"
        lines.append(line + ".")
    return lines
