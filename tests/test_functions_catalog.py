"""harness.functions.catalog and nodes: builtins agree with their symbolic forms; domains,
kinks, nn reflection."""
from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

from harness.functions.catalog import (FUNCTIONS, NN_ACTIVATIONS, NN_SYMBOLIC, nn_function,
                                      resolve_function)
from harness.functions.nodes import x_symbol
from support import FUNCTION_NAMES, NN_ACTIVATION_NAMES

# Away from every kink of every builtin (0, +-0.5, +-1, +-3, 6) and from tan's poles.
POINTS = np.array([-2.7, -1.3, -0.7, -0.2, 0.3, 0.8, 1.3, 2.6, 4.1])


def sympy_values(expr: sp.Expr, xs: np.ndarray) -> np.ndarray:
    """The symbolic form at xs, evaluated at 30 digits with mpmath and rounded once."""
    fn = sp.lambdify([x_symbol()], expr, modules="mpmath")
    with mpmath.workdps(30):
        return np.array([float(fn(mpmath.mpf(float(v)))) for v in xs])


def torch_values(function, xs: np.ndarray) -> np.ndarray:
    f = function.callable_for(torch.float64, "cpu")
    with torch.no_grad():
        return f(torch.tensor(xs, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("name", FUNCTIONS.names())
def test_builtin_torch_values_match_its_symbolic_form(name):
    function = FUNCTIONS.get(name)
    xs = POINTS[~function.outside_domain(POINTS)]
    assert xs.size >= 5
    expected = sympy_values(function.symbolic(), xs)
    # torch's float64 kernels are within a few ulps of the correctly rounded value.
    np.testing.assert_allclose(torch_values(function, xs), expected, rtol=4e-15, atol=1e-16)


def test_builtin_names_are_the_primitives_plus_cube():
    from harness.functions.nodes import PRIMITIVES
    assert FUNCTIONS.names() == sorted(PRIMITIVES.names() + ["cube"])


def test_cube_is_x_cubed():
    function = FUNCTIONS.get("cube")
    assert function.symbolic() == x_symbol()**3
    np.testing.assert_array_equal(torch_values(function, np.array([-2.0, 0.5, 3.0])),
                                  [-8.0, 0.125, 27.0])


@pytest.mark.parametrize("name", ["log", "sqrt"])
def test_domain_of_log_and_sqrt_excludes_nonpositive_x(name):
    xs = np.array([-2.0, -1e-300, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(FUNCTIONS.get(name).outside_domain(xs),
                                  [True, True, True, False, False])


def test_smooth_builtin_has_no_domain_exclusions_or_kinks():
    xs = np.array([-1e6, -1.0, 0.0, 1.0, 1e6])
    sin = FUNCTIONS.get("sin")
    assert not sin.outside_domain(xs).any()
    assert not sin.singular_in(xs, xs).any()


def test_relu_kink_is_at_zero_only():
    xs = np.array([-1e-300, 0.0, 1e-300, 1.0])
    np.testing.assert_array_equal(FUNCTIONS.get("relu").singular_in(xs, xs),
                                  [False, True, False, False])


def test_relu_stencil_across_zero_is_singular():
    lo, hi = np.array([-1e-6, 1e-6, -2.0]), np.array([1e-6, 2e-6, -1.0])
    np.testing.assert_array_equal(FUNCTIONS.get("relu").singular_in(lo, hi), [True, False, False])


def test_hardtanh_kinks_are_at_plus_and_minus_one():
    xs = np.array([-1.0, -0.999, 0.0, 0.999, 1.0, 1.001])
    np.testing.assert_array_equal(FUNCTIONS.get("hardtanh").singular_in(xs, xs),
                                  [True, False, False, False, True, False])


def test_tan_poles_repeat_every_pi():
    lo = np.array([1.5, 1.6, -1.6, 4.70, 1.0, -7.9, 10.9])
    hi = np.array([1.6, 1.7, -1.5, 4.72, 1.5, -7.8, 11.0])
    # pi/2 = 1.5708, -pi/2, 3pi/2 = 4.7124, -5pi/2 = -7.854, 7pi/2 = 10.996
    np.testing.assert_array_equal(FUNCTIONS.get("tan").singular_in(lo, hi),
                                  [True, False, True, True, False, True, True])


def test_reciprocal_expression_has_a_pole_at_zero():
    function = resolve_function("expr", expr="1/x")
    np.testing.assert_array_equal(function.outside_domain(np.array([-1.0, 0.0, 1e-300])),
                                  [False, True, False])
    np.testing.assert_array_equal(
        function.singular_in(np.array([-0.1, 0.1, -0.2]), np.array([0.1, 0.2, -0.1])),
        [True, False, False])


def test_log_inside_an_expression_carries_its_domain_through_the_argument():
    function = resolve_function("expr", expr="log(x - 1)")
    np.testing.assert_array_equal(function.outside_domain(np.array([0.5, 1.0, 1.5])),
                                  [True, True, False])


def test_kink_inside_an_expression_moves_with_the_argument():
    function = resolve_function("expr", expr="relu(x - 2)")
    xs = np.array([0.0, 2.0, 3.0])
    np.testing.assert_array_equal(function.singular_in(xs, xs), [False, True, False])


def test_softplus_carries_a_note_about_torchs_threshold():
    assert FUNCTIONS.get("softplus").notes() == [
        "softplus: torch's softplus returns x itself for x > 20 (threshold=20), "
        "so its derivative there is 1, not sigmoid(x)"]


# --- torch.nn reflection --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["GELU", "ReLU", "Tanh", "SiLU", "Softplus"])
def test_nn_activations_include_elementwise_modules(name):
    assert name in NN_ACTIVATIONS


@pytest.mark.parametrize("name", ["Softmax", "GLU", "Threshold", "MultiheadAttention",
                                  "LogSoftmax", "Softmin"])
def test_nn_activations_exclude_modules_that_need_arguments_or_mix_points(name):
    assert name not in NN_ACTIVATIONS


def test_unknown_nn_name_lists_the_supported_names():
    message = f"unsupported fn.name 'Softmax' for fn=nn; choose one of: {NN_ACTIVATION_NAMES}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_function("nn", "Softmax")


@pytest.mark.parametrize("nn_name", sorted(NN_SYMBOLIC))
def test_nn_module_with_a_symbolic_mapping_matches_the_builtin(nn_name):
    module_fn = nn_function(nn_name)
    builtin = FUNCTIONS.get(NN_SYMBOLIC[nn_name])
    xs = np.linspace(-7.0, 7.0, 57)  # step 0.25: hits every kink of every builtin
    np.testing.assert_allclose(torch_values(module_fn, xs), torch_values(builtin, xs),
                               rtol=2e-16, atol=0)
    assert module_fn.symbolic() == builtin.symbolic()
    assert (module_fn.name, module_fn.source, module_fn.reference_kind) == \
        (f"nn.{nn_name}", "nn", "arb")


def test_nn_module_without_symbolic_form_falls_back_to_float64_autograd():
    function = nn_function("PReLU")
    assert function.node is None
    assert function.reference_kind == "float64-autograd"
    # PReLU's default slope for x < 0 is 0.25.
    np.testing.assert_array_equal(torch_values(function, np.array([-2.0, 3.0])), [-0.5, 3.0])


def test_nn_module_is_built_in_the_requested_dtype_and_eval_mode():
    module = nn_function("RReLU").callable_for(torch.float32, "cpu")
    assert not module.training
    x = torch.tensor([-1.0, 2.0], dtype=torch.float32)
    # eval-mode RReLU is leaky ReLU with slope (lower + upper) / 2 = (1/8 + 1/3) / 2.
    torch.testing.assert_close(module(x), torch.tensor([-(1 / 8 + 1 / 3) / 2, 2.0]),
                               rtol=1e-7, atol=0)


# --- resolve_function ----------------------------------------------------------------------

def test_unknown_builtin_lists_the_registered_functions():
    message = f"unknown fn 'bogus'; choose one of: {FUNCTION_NAMES}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_function("builtin", "bogus")


def test_unknown_kind_lists_the_kinds():
    message = "unknown fn.kind 'weird'; choose one of: builtin, nn, torch, expr, py"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_function("weird", "sin")


def test_expression_function_is_named_by_its_stripped_text():
    function = resolve_function("expr", expr="  x**2*sin(x) ")
    assert (function.name, function.source) == ("x**2*sin(x)", "expr")
    assert function.symbolic() == x_symbol()**2 * sp.sin(x_symbol())


def test_missing_expression_gives_the_empty_expression_message():
    with pytest.raises(ValueError, match=re.escape("fn.expr is empty")):
        resolve_function("expr", expr=None)


def test_constant_expression_maps_a_tensor_to_a_same_shape_tensor():
    f = resolve_function("expr", expr="2*pi").callable_for(torch.float64, "cpu")
    np.testing.assert_array_equal(f(torch.zeros(3, dtype=torch.float64)).numpy(),
                                  [2 * math.pi] * 3)
