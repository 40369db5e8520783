"""harness.methods.METHODS: the one registry of methods, and how a user names one."""
from __future__ import annotations

import re

import pytest

from harness.config.validate import validate
from harness.methods import METHODS


def test_registry_holds_the_tutorials_three_methods():
    assert {"autograd", "loop", "finite"} <= set(METHODS.names())
    assert METHODS.get("loop").per_point and not METHODS.get("autograd").per_point
    assert METHODS.get("finite").reach is not None


def test_unknown_method_lists_the_registered_methods():
    message = ("unknown method 'bogus'; choose one of: autograd, backward, compiled, "
               "complex_step, finite, forward_ad, loop, numdifftools, richardson, scipy, "
               "stencil, vmap_grad")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        METHODS.get("bogus")


def test_a_misspelt_method_gets_a_did_you_mean_hint():
    with pytest.raises(ValueError) as caught:
        METHODS.get("autgrad")
    assert str(caught.value).startswith(
        "unknown method 'autgrad' (did you mean 'autograd'?); choose one of: autograd, ")


@pytest.mark.parametrize("name", METHODS.names())
def test_every_registered_method_is_a_cli_choice_under_its_own_name(compose_config, name):
    method = METHODS.get(name)
    assert method.name == name
    assert validate(compose_config(f"method={name}")).method is method


def test_the_methods_with_a_network_form_are_the_ad_methods_and_finite():
    # A network is differentiated by vector-Jacobian forms; elementwise-only methods
    # (stencils, complex step, peers, vmap, compile) have none.
    assert [name for name in METHODS.names() if METHODS.get(name).vjp is not None] == \
        ["autograd", "backward", "finite", "forward_ad", "loop"]
