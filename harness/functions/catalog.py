"""The functions a study can differentiate: named builtins, torch.nn activations, expressions.

`FUNCTIONS` holds the named builtins (one per primitive, plus `cube`); `NN_ACTIVATIONS`
holds every activation class in `torch.nn` that constructs without arguments and acts
elementwise, found by reflection as in the tutorial's `getattr(nn, name)()`; torch's own
unary ops, by torch's name, are `harness.functions.torch_ops.TORCH_OPS` (fn=torch).
`resolve_function(kind, name, expr)` turns a config into a `Function`.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from harness.errors import DydxError
from harness.functions.expr import parse_expression
from harness.functions.nodes import PRIMITIVES, Apply, BinOp, Const, Node, X
from harness.functions.torch_ops import TORCH_OPS, unknown_op_message
from harness.lazy import sympy as sp
from harness.registry import Registry, choice_error, near_miss

KINDS = ("builtin", "nn", "torch", "expr", "py")
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

# nn classes whose default construction is exactly one of our symbolic primitives.
NN_SYMBOLIC = {
    "CELU": "elu", "ELU": "elu", "GELU": "gelu", "Hardshrink": "hardshrink",
    "Hardsigmoid": "hardsigmoid", "Hardswish": "hardswish", "Hardtanh": "hardtanh",
    "LeakyReLU": "leaky_relu", "LogSigmoid": "logsigmoid", "Mish": "mish", "ReLU": "relu",
    "ReLU6": "relu6", "SELU": "selu", "SiLU": "silu", "Sigmoid": "sigmoid",
    "Softplus": "softplus", "Softshrink": "softshrink", "Softsign": "softsign",
    "Tanh": "tanh", "Tanhshrink": "tanhshrink",
}


@dataclass(frozen=True)
class Function:
    """An elementwise function under study.

    `node` is its symbolic tree (None for a torch module with no known closed form, whose
    reference then falls back to float64 autograd); `make_module` builds the nn.Module
    when the function is studied through torch.nn reflection.
    """

    name: str
    source: str
    node: Node | None
    make_module: Callable[[], nn.Module] | None = None
    # fn=py: the user's callable, and optionally the user's trusted derivative(s).
    user_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    user_derivative: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def reference_kind(self) -> str:
        """What backs the reference: certified ball arithmetic (Arb) when every primitive
        has a ball form, else mpmath on the symbolic form; the user's derivative; or a
        float64 computation (Ridders for user code, whose backward may be under test)."""
        if self.node is not None:
            return "mpmath" if self.node.without_arb() else "arb"
        if self.user_derivative is not None:
            return "user-derivative"
        return "float64-richardson" if self.user_fn is not None else "float64-autograd"

    def callable_for(self, dtype: torch.dtype, device: torch.device | str) -> Callable:
        """The torch callable in the run's dtype and device."""
        if self.make_module is not None:
            return self.make_module().to(device=device, dtype=dtype).eval()
        if self.user_fn is not None:
            return self.user_fn
        return _node_callable(self.node)

    def symbolic(self) -> sp.Expr | None:
        return None if self.node is None else self.node.sympy()

    def outside_domain(self, x: np.ndarray) -> np.ndarray:
        if self.node is None:
            return np.zeros(np.shape(x), dtype=bool)
        return self.node.outside_domain(x)

    def singular_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        if self.node is None:
            return np.zeros(np.shape(lo), dtype=bool)
        return self.node.singular_in(lo, hi)

    def notes(self) -> list[str]:
        return [] if self.node is None else self.node.notes()

    def check_user_code(self, x: torch.Tensor) -> None:
        """fn=py: call your function (and derivative) once on x, in the run's dtype and in
        float64 for the reference, and say what is wrong with what it returns."""
        x64 = x.detach().double().cpu()
        for field, fn, probe in (("fn.target", self.user_fn, x), ("fn.target", self.user_fn, x64),
                                 ("fn.derivative", self.user_derivative, x64)):
            if fn is not None:
                with torch.no_grad():
                    problem = output_problem(fn(probe), probe)
                if problem:
                    raise UserCodeError(
                        f"{field} {self.name if field == 'fn.target' else 'of ' + self.name} "
                        f"returned {problem} for x of shape {tuple(probe.shape)} in "
                        f"{str(probe.dtype).removeprefix('torch.')}; it must return a torch.Tensor "
                        f"of x's shape and dtype, one value per element")

    @property
    def analytic(self) -> bool:
        """Whether Im f(x+ih)/h is f'(x): known only for functions with a symbolic tree."""
        return self.node is not None and self.node.analytic


class UserCodeError(DydxError, ValueError):
    """Your code (fn=py) returned something a study cannot use; the message says what."""


def output_problem(y: object, x: torch.Tensor) -> str | None:
    """What is wrong with y = f(x) for an elementwise f, in words; None if nothing."""
    if y is None:
        return "None"
    if isinstance(y, np.ndarray):
        return "a numpy array"
    if not isinstance(y, torch.Tensor):
        builtin = type(y).__module__ == "builtins"
        return f"a Python {type(y).__name__}" if builtin else f"a {type(y).__qualname__} object"
    if y.shape != x.shape:
        return f"a tensor of shape {tuple(y.shape)}"
    if y.dtype != x.dtype:
        return f"{str(y.dtype).removeprefix('torch.')} values"
    return None


def _node_callable(node: Node) -> Callable[[torch.Tensor], torch.Tensor]:
    def f(x: torch.Tensor) -> torch.Tensor:
        y = node.torch(x)
        # A constant expression still maps a tensor to a tensor of the same shape.
        return y if isinstance(y, torch.Tensor) else torch.full_like(x, y)

    return f


def _builtins() -> list[Function]:
    """One builtin per primitive, f(x) = primitive(x), plus cube (a polynomial)."""
    return [*(Function(name, "builtin", Apply(PRIMITIVES.get(name), X())) for name in PRIMITIVES),
            Function("cube", "builtin", BinOp("**", X(), Const(3.0, 3)))]


def _acts_elementwise(module: nn.Module) -> bool:
    """Probe: same shape out, and each output depends only on its own input."""
    x = torch.linspace(-3, 3, 8, dtype=torch.float64)
    try:
        module = module.to(torch.float64).eval()
        # Softmax-like classes warn about an implicit dim before failing the probe.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = module(x)
            apart = torch.cat([module(x[i:i + 1]) for i in range(len(x))])
    except Exception:  # noqa: BLE001 - any failure means "not a plain elementwise map"
        return False
    return whole.shape == x.shape and torch.allclose(whole, apart)


def _constructs_elementwise(cls: type) -> bool:
    try:
        module = cls()
    except TypeError:  # needs constructor arguments
        return False
    return _acts_elementwise(module)


def _nn_activations() -> list[type]:
    """Every activation class of torch.nn that constructs without arguments and acts
    elementwise (the tutorial's getattr(nn, name)() reflection, made safe by a probe)."""
    classes = (getattr(nn, name) for name in nn.modules.activation.__all__)
    return [cls for cls in classes if _constructs_elementwise(cls)]


FUNCTIONS: Registry[Function] = Registry("fn", _builtins())
NN_ACTIVATIONS: Registry[type] = Registry("torch.nn activation", _nn_activations(),
                                          key=lambda cls: cls.__name__)


def nn_function(name: str) -> Function:
    if name not in NN_ACTIVATIONS:
        guess = near_miss(name, NN_ACTIVATIONS.names())
        hint = f" (did you mean {guess!r}?)" if guess is not None else ""
        raise ValueError(f"unsupported fn.name {name!r}{hint} for fn=nn; choose one of: "
                         f"{', '.join(NN_ACTIVATIONS.names())}")
    symbolic = NN_SYMBOLIC.get(name)
    node = FUNCTIONS.get(symbolic).node if symbolic else None
    return Function(f"nn.{name}", "nn", node, make_module=NN_ACTIVATIONS.get(name))


def torch_op_function(name: str) -> Function:
    """torch.<name> itself (fn=torch fn.name=special.erfcx), with its registered forms."""
    if name not in TORCH_OPS:
        raise ValueError(unknown_op_message(name))
    return Function(f"torch.{name}", "torch", Apply(TORCH_OPS.get(name), X()))


def import_target(target: str, field: str) -> Callable:
    """'package.module:attr' -> the object, importing the module (from the working directory
    too, where users keep their own code). An autograd.Function class gives its .apply."""
    if not isinstance(target, str) or not TARGET.match(target):
        raise ValueError(f"{field} must look like package.module:function, got {target!r}")
    module_name, attr_path = target.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{field}: cannot import module {module_name!r}: {err}") from None
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ValueError(f"{field}: {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, attr)
    if not callable(obj):
        raise ValueError(f"{field}: {target!r} is not callable")
    return _as_callable(obj, field)


def callable_name(fn: Callable) -> str:
    """What records call a Python callable: its __name__ ('special_erfcx' for
    torch.special.erfcx), or its class name for a module instance such as nn.GELU()."""
    return getattr(fn, "__name__", None) or type(fn).__name__


def callable_function(fn: Callable, name: str | None = None,
                      derivative: Callable | None = None) -> Function:
    """Your own code as a study subject (fn=py, or a callable given to the Python API).

    It has no symbolic form: its reference is float64 Ridders extrapolation of the forward
    (never its backward, which may be what is under test), or `derivative` when given. A
    torch.autograd.Function class is called through .apply, so its backward is exercised.
    """
    fn, derivative = (_as_callable(f, field) for f, field in
                      ((fn, "fn"), (derivative, "derivative")))
    return Function(name or callable_name(fn), "py", None, user_fn=fn, user_derivative=derivative)


def _as_callable(obj, field: str):
    if obj is None:
        return None
    if isinstance(obj, type) and issubclass(obj, torch.autograd.Function):
        return obj.apply
    if not callable(obj):
        raise ValueError(f"{field} must be callable (a function of one tensor), got "
                         f"{type(obj).__name__}")
    return obj


def user_function(target: str, derivative: str | None = None) -> Function:
    """fn=py: `package.module:function` (and its trusted derivative), imported."""
    return callable_function(import_target(target, "fn.target"), target,
                             None if derivative is None
                             else import_target(derivative, "fn.derivative"))


def resolve_function(kind: str, name: str | None = None, expr: str | None = None,
                     target: str | None = None, derivative: str | None = None) -> Function:
    """Config fields -> Function; raises ValueError with a one-line message on bad input."""
    if kind == "builtin":
        return FUNCTIONS.get(name)
    if kind == "nn":
        return nn_function(name)
    if kind == "torch":
        return torch_op_function(name)
    if kind == "expr":
        node = parse_expression(expr)  # says what is wrong with an empty or missing one
        return Function(expr.strip(), "expr", node)
    if kind == "py":
        return user_function(target, derivative)
    raise ValueError(choice_error("fn.kind", kind, list(KINDS)))
