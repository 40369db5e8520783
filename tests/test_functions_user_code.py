"""User code (fn=py): a function by import path, with or without a trusted derivative,
custom autograd.Functions included."""
import numpy as np
import pytest
import torch

from harness.config.validate import ConfigError, validate
from harness.functions.catalog import import_target
from support import user


def test_user_function_with_trusted_derivative_uses_it_as_reference(run):
    outcome = run(*user("swish", "fn.derivative=tests.userpkg.ops:swish_prime"), "grid.n=50")
    x = torch.tensor(outcome.points["x"].to_numpy())
    s = torch.sigmoid(x)
    assert outcome.record["reference"] == "user-derivative"
    assert outcome.record["fn"] == "tests.userpkg.ops:swish"
    np.testing.assert_array_equal(outcome.points["df_ref"], (s + x * s * (1 - s)).numpy())


def test_user_function_without_derivative_uses_ridders_with_uncertainty(run):
    outcome = run(*user("swish"), "grid.n=50")
    assert outcome.record["reference"] == "float64-richardson"
    assert "df_ref_uncertainty" in outcome.points
    assert outcome.record["norm_rel_err"] < 1e-12


def test_a_correct_cube_as_user_code_has_no_absurd_ulp_headline(run):
    # float64 Ridders cannot resolve float64 autograd's errors (its uncertainty is ~1e-13
    # relative): every point is reference-limited, and the ULP headline says "—" instead
    # of 2.8e298 ULPs at x = -2.1e-13, where Ridders' reference is 0 +/- 5e-21.
    from harness.report.format import headline

    record = run(*user("cube")).record
    assert record["n_reference_limited"] == record["n_used"] == 2000
    assert np.isnan(record["max_ulp"]) and np.isnan(record["median_ulp"])
    assert headline(record).endswith(
        "median — ULP, max — ULP, pass — (rel ≤ 1e-07), 2000 reference-limited")
    # In float32 the same reference resolves the method's errors: about a ULP.
    record32 = run(*user("cube"), "dtype=float32").record
    assert record32["max_ulp"] <= 2.0 and record32["n_wrong"] == 0
    assert record32["n_reference_limited"] <= 1  # the point where Ridders gives 0 +/- ...


@pytest.mark.parametrize("target,message", [
    ("nonsense", "fn.target must look like package.module:function, got 'nonsense'"),
    ("no_such_module_xyz:f", "fn.target: cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'"),
    ("tests.userpkg.ops:missing", "fn.target: 'tests.userpkg.ops' has no attribute 'missing'"),
    ("tests.userpkg.ops:NOT_CALLABLE", "fn.target: 'tests.userpkg.ops:NOT_CALLABLE' is not callable"),
])
def test_bad_user_targets_have_exact_messages(compose_config, target, message):
    cfg = compose_config("fn=py", f"fn.target={target}")
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value) == message


def test_autograd_function_class_is_used_through_apply():
    f = import_target("tests.userpkg.ops:GoodCube", "fn.target")
    x = torch.tensor([2.0], requires_grad=True)
    f(x).backward()
    assert x.grad.item() == 12.0
