"""The network spec: the vector-Jacobian product vᵀJ = ∂(v·out)/∂x of a network preset.

v has the output's shape: ones (the default; what `out.backward()` of a sum gives) or a
seeded random normal. Per-point forms (finite, forward_ad: a forward pass or two per input
element) run on a deterministic strided subsample of at most `max_points` elements
(`n_checked`; default: the preset's `default_points`) and are timed on the first
TIMED_POINTS of them; the others give every entry and are checked and timed on all.

The reference is float64 autograd (`reference = float64-autograd`): a deep copy of the
network in float64, at exactly the dtype-rounded x and v the method saw, with the same
dropout mask. In float64 the autograd method *is* the reference, so its error is 0 by
construction; the float64 finite and forward-mode rows are the independent checks. A
finite difference whose stencil changes which side of a ReLU/LeakyReLU kink an activation
is on, or which element a max pool picks, is excluded as 'stencil' and counted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from harness.dtypes import facts
from harness.methods.vjp import vjp_autograd
from harness.networks.checks import cotangent, cross_checks, float64_copy
from harness.networks.presets import network_input, prepare_network
from harness.study.grid import check_indices
from harness.study.record import identity_columns
from harness.study.reference import Reference
from harness.study.spec import Checked, Raw, Study

REFERENCE = "float64-autograd"
# Per-point forms are timed on at most this many elements: their cost is linear in the
# count (points_per_s says it), and timing all checked points would cost minutes.
TIMED_POINTS = 8


class NetworkSpec:
    def __init__(self, study: Study) -> None:
        self.study, self.subject, self.form = study, study.subject, study.method.vjp
        self.preset = self.subject.preset
        self.n = self.preset.numel
        points = self.subject.max_points or self.preset.default_points
        self.index = check_indices(self.n, points) if self.form.per_point else np.arange(self.n)

    def identity(self, run_dir: Path) -> dict:
        s = self.study
        return {**identity_columns(self.preset.name, "network", s.method.name,
                                   s.method.describe(s.dtype, 1, **s.params), 1,
                                   facts(s.dtype).name, s.device.type, self.n, s.seed, run_dir),
                "network": self.preset.description,
                "input_shape": "x".join(map(str, self.preset.input_shape)),
                "v_kind": self.subject.v_kind, "train_mode": bool(self.subject.train)}

    def unsupported(self) -> Optional[str]:
        """Builds the network (a dtype without kernels fails here) and asks the form."""
        s = self.study
        self.model = prepare_network(self.preset, s.dtype, s.device, s.seed, self.subject.train)
        self.x = network_input(self.preset, s.dtype, s.device, s.seed)
        with torch.no_grad():
            shape = self.model(self.x).shape
        self.v = cotangent(shape, self.subject.v_kind, s.dtype, s.device, s.seed)
        return self.form.supports(self.v.numel())

    def prepare(self) -> None:
        pass

    def call(self, log: Callable[[str], None]) -> Raw:
        """The form's entries at the checked elements (flat), and which crossed a kink."""
        params = self.study.params
        if not self.form.per_point:
            return Raw(self.form.fn(self.model, self.x, self.v).reshape(-1)[self._at()])
        if self.form.with_kinks is not None:
            values, crossed = self.form.with_kinks(self.model, self.x, self.v, self.index, **params)
            return Raw(values, crossed=crossed)
        return Raw(self.form.fn(self.model, self.x, self.v, self.index, **params))

    def _at(self) -> torch.Tensor:
        return torch.as_tensor(self.index, device=self.x.device)

    def checked(self, raw: Raw) -> Checked:
        x64 = self.x.reshape(-1)[self._at()].double().cpu().numpy()
        crossed = raw.crossed if raw.crossed is not None else np.zeros(len(self.index), bool)
        return Checked(self.index, x64, raw.values.detach().double().cpu().numpy(),
                       crossed=crossed)

    def reference(self, checked: Checked) -> Reference:
        self.model64 = float64_copy(self.model)
        grad = vjp_autograd(self.model64, self.x.double(), self.v.double()).reshape(-1)
        hi = grad[self._at()].double().cpu().numpy()
        return Reference(hi, np.zeros_like(hi), REFERENCE)

    def exclusions(self, checked: Checked, ref: Reference) -> np.ndarray:
        return np.where(checked.crossed, "stencil", "").astype(object)

    def timed(self):
        params = self.study.params
        if self.form.per_point:
            timed = self.index[:TIMED_POINTS]
            call = lambda: self.form.fn(self.model, self.x, self.v, timed, **params)  # noqa: E731
        else:
            call = lambda: self.form.fn(self.model, self.x, self.v)  # noqa: E731

        def forward():
            with torch.no_grad():
                return self.model(self.x)

        return call, forward

    def n_timed(self) -> int:
        """Elements one timed call differentiates (known before the network is built)."""
        return min(len(self.index), TIMED_POINTS) if self.form.per_point else self.n

    def extra(self, checked: Checked, ref: Reference, points: pd.DataFrame) -> dict:
        return {"n_outputs": self.v.numel(),
                **cross_checks(self.model, self.x, self.v, self.model64, self.study.seed)}
