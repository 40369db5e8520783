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
