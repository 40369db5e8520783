"""The expression parser under fuzzing (hypothesis): whatever the text, parse_expression
returns a tree or raises ExpressionError (its own error type, nothing else), within a
deadline; an accepted tree always has an exact symbolic form that the reference can key
its cache on. Thousands of examples: texts built from the language's own tokens (and a
few hostile ones), soups of its characters, and arbitrary Unicode.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.functions.expr import ExpressionError, parse_expression
from harness.functions.nodes import PRIMITIVES
from harness.study.reference import cache_key

# Words of the language, numbers that stress exact folding (near 1, huge, tiny, based),
# and tokens that are not in it at all.
TOKENS = ["x", "x", "pi", "e", "0", "1", "2", "9", "10", "0.5", "1e3", "1e-300", "1.0000001",
          "9999", "300", "1_000", "0x1f", "0b11", "0o7", "+", "-", "*", "/", "**", "**", "(",
          "(", ")", ")", " ", "x-x+", *[f"{name}(" for name in PRIMITIVES.names()],
          "1j", "True", "None", "'a'", "[", "]", ",", "=", "<", "%", "//", "~", "if", "lambda",
          "__import__(", ".real", "x.", "\x00", "\ud800", "²", "\t", "\n", "#", "@", ";"]
CHARACTERS = "x0123456789.+-*/()eijpsnt_ ,'\"[]\\"
SETTINGS = dict(deadline=1000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
X = np.linspace(0.5, 2.0, 4)


def check(text: str) -> None:
    """Only ExpressionError may escape; an accepted tree has a symbolic form and a key."""
    try:
        node = parse_expression(text)
    except ExpressionError:
        return
    assert len(cache_key("arb", node.key(), X, "fuzz")) == 32


@settings(max_examples=3000, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_token_sequences_parse_or_raise_only_expression_error(text):
    check(text)


@settings(max_examples=1500, **SETTINGS)
@given(st.text(alphabet=CHARACTERS, max_size=40))
def test_character_soups_parse_or_raise_only_expression_error(text):
    check(text)


@settings(max_examples=1000, **SETTINGS)
@given(st.text(max_size=60))
def test_arbitrary_unicode_parses_or_raises_only_expression_error(text):
    check(text)


def power(depth: int) -> st.SearchStrategy[str]:
    """Nested powers and products of constants and x: the shapes that blow up exact folding."""
    leaf = st.sampled_from(["x", "2", "9", "1.0000001", "0.5", "10", "(x-x+2)", "(x-x+1.0000001)"])
    return st.recursive(leaf, lambda inner: st.builds(
        lambda a, op, b: f"({a}){op}({b})", inner, st.sampled_from(["**", "*", "+", "/"]), inner),
        max_leaves=depth)


@settings(max_examples=1500, **SETTINGS)
@given(power(8))
def test_towers_of_powers_are_folded_within_bounds_or_refused(text):
    check(text)
