"""harness.functions.expr: the safe expression language, its symbolic and torch views,
every rejection."""
from __future__ import annotations

import builtins
import math

import pytest
import sympy as sp
import torch

from harness.functions.expr import MAX_LENGTH, ExpressionError, parse_expression
from harness.functions.nodes import x_symbol
from support import EXPRESSION_WORDS

x = x_symbol()
XS = torch.tensor([-2.5, -0.75, 0.5, 1.25, 3.0], dtype=torch.float64)
# The tail every whitelist rejection ends with: the grammar and every primitive.
ALLOWED = EXPRESSION_WORDS


def rejection(text: str, what: str, column: int = 1) -> str:
    return f"fn.expr {text!r}: {what} at column {column}; {ALLOWED}"


def raises_exactly(text: str, message: str):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert str(info.value) == message


# --- accepted expressions: symbolic form and torch values -----------------------------------

def test_product_with_function_call_has_symbolic_form_and_values():
    node = parse_expression("x**2*sin(x)")
    assert node.sympy() == x**2 * sp.sin(x)
    expected = torch.tensor([v**2 * math.sin(v) for v in XS.tolist()], dtype=torch.float64)
    torch.testing.assert_close(node.torch(XS), expected, rtol=2e-16, atol=0)


def test_negated_negative_power_is_minus_one_over_x():
    node = parse_expression("-x**-1")
    assert sp.simplify(node.sympy() - (-1 / x)) == 0
    assert node.sympy() == -1 / x
    torch.testing.assert_close(node.torch(XS), -1 / XS, rtol=0, atol=0)


def test_numeric_base_with_variable_exponent():
    node = parse_expression("2**x")
    assert node.sympy() == sp.Integer(2) ** x
    expected = torch.tensor([2.0**v for v in XS.tolist()], dtype=torch.float64)
    torch.testing.assert_close(node.torch(XS), expected, rtol=2e-16, atol=0)


def test_decimal_literal_is_exact_rational_symbolically_and_nearest_float_in_torch():
    node = parse_expression("0.1*x")
    constant = node.left
    assert constant.exact == sp.Rational(1, 10)
    assert constant.value == 0.1
    assert node.sympy() == x / 10
    torch.testing.assert_close(node.torch(XS), 0.1 * XS, rtol=0, atol=0)


def test_exponent_literal_is_exact_rational():
    assert parse_expression("1e-3*x").sympy() == x / 1000


def test_underscored_integer_literal_is_read_as_its_value():
    assert parse_expression("1_000*x").sympy() == 1000 * x


def test_constants_pi_and_e_are_exact_symbols():
    assert parse_expression("pi*x").sympy() == sp.pi * x
    assert parse_expression("e**x").sympy() == sp.exp(x)
    torch.testing.assert_close(parse_expression("pi*x").torch(XS), math.pi * XS, rtol=0, atol=0)


def test_unary_plus_is_dropped_and_unary_minus_negates():
    assert parse_expression("+x").sympy() == x
    assert parse_expression("-(x)").sympy() == -x
    torch.testing.assert_close(parse_expression("-sin(x)").torch(XS), -torch.sin(XS),
                               rtol=0, atol=0)


def test_nested_calls_of_registered_primitives():
    node = parse_expression("exp(sin(x))/(1+x**2)")
    assert node.sympy() == sp.exp(sp.sin(x)) / (1 + x**2)
    expected = torch.tensor([math.exp(math.sin(v)) / (1 + v**2) for v in XS.tolist()],
                            dtype=torch.float64)
    torch.testing.assert_close(node.torch(XS), expected, rtol=4e-16, atol=0)


def test_surrounding_whitespace_is_ignored():
    assert parse_expression("  x**2  ").sympy() == x**2


# --- rejections: one exact message per path ----------------------------------------------

def test_unknown_name_is_rejected():
    raises_exactly("y", rejection("y", "unknown name 'y'"))


def test_unknown_name_reports_its_column():
    raises_exactly("x+y", rejection("x+y", "unknown name 'y'", column=3))


def test_unknown_function_is_rejected():
    raises_exactly("foo(x)", rejection("foo(x)", "unknown function 'foo'"))


def test_attribute_access_is_rejected():
    raises_exactly("x.real", rejection("x.real", "attribute access '.real' is not allowed"))


def test_dunder_attribute_access_is_rejected():
    raises_exactly("x.__class__",
                   rejection("x.__class__", "attribute access '.__class__' is not allowed"))


def test_call_of_a_non_name_is_rejected():
    raises_exactly("(lambda: 1)()",
                   rejection("(lambda: 1)()", "only calls of plain function names are allowed"))


def test_call_of_a_method_is_rejected():
    raises_exactly("sin.__call__(x)",
                   rejection("sin.__call__(x)", "only calls of plain function names are allowed"))


def test_keyword_argument_is_rejected():
    raises_exactly("sin(x=1)", rejection("sin(x=1)", "sin() takes exactly one argument"))


def test_two_arguments_are_rejected():
    raises_exactly("sin(x,x)", rejection("sin(x,x)", "sin() takes exactly one argument"))


def test_syntax_error_is_rejected_with_position():
    raises_exactly("sin(", "fn.expr 'sin(' is not a valid expression: '(' was never closed "
                           "at column 4")


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_expression_is_rejected(text):
    raises_exactly(text, "fn.expr is empty; write an expression in x, e.g. fn.expr='x**2*sin(x)'")


def test_expression_over_the_length_limit_is_rejected():
    text = "x+" * (MAX_LENGTH // 2) + "x"
    raises_exactly(text, f"fn.expr is {MAX_LENGTH + 1} characters long; the limit is {MAX_LENGTH}")


def test_expression_at_the_length_limit_is_accepted():
    text = "x+" * (MAX_LENGTH // 2 - 2) + "x**1"
    assert len(text) == MAX_LENGTH
    assert parse_expression(text).sympy() == (MAX_LENGTH // 2 - 1) * x


def test_string_literal_is_rejected():
    raises_exactly("'a'", rejection("'a'", "the literal 'a' is not a number"))


def test_boolean_literal_is_rejected():
    raises_exactly("True*x", rejection("True*x", "the literal True is not a number"))


def test_complex_literal_is_rejected():
    raises_exactly("1j*x", rejection("1j*x", "the literal 1j is not a number"))


@pytest.mark.parametrize("text, kind", [
    ("x if x else x", "IfExp"), ("[x]", "List"), ("x<1", "Compare"), ("x % 2", "Mod"),
    ("x // 2", "FloorDiv"), ("~x", "Invert"), ("x and x", "And"),
])
def test_construct_outside_the_grammar_is_rejected_by_name(text, kind):
    raises_exactly(text, rejection(text, f"'{kind}' is not allowed"))


def test_rejection_is_an_expression_error_and_a_value_error():
    # validate() turns ValueError into a one-line ConfigError; a TypeError would escape it.
    assert issubclass(ExpressionError, ValueError)


def test_integer_literals_in_any_base_are_exact_integers():
    # 0x10, 0o20 and 0b10000 are Python's spellings of 16: exact in the reference too.
    for text in ("0x10*x", "0o20*x", "0b10000*x"):
        assert parse_expression(text).sympy() == 16 * x_symbol()


def test_column_counts_leading_whitespace_of_the_quoted_text():
    raises_exactly("  y", rejection("  y", "unknown name 'y'", column=3))


def test_constant_that_overflows_is_rejected_at_parse_time():
    with pytest.raises(ExpressionError):
        parse_expression("9**9**9*x")


# --- security: nothing in the text is ever executed ----------------------------------------

PAYLOADS = [
    "__import__('os').system('echo hi')",
    "__import__('pathlib').Path('{marker}').touch()",
    "open('{marker}', 'w')",
    "exec(\"open('{marker}', 'w')\")",
    "eval(\"open('{marker}', 'w')\")",
    "().__class__.__base__.__subclasses__()",
    "x.__globals__['os'].system('echo hi')",
    "sin.__globals__",
    "getattr(x, '__class__')",
]


@pytest.mark.parametrize("template", PAYLOADS)
def test_code_in_an_expression_is_rejected_and_never_runs(template, tmp_path, monkeypatch,
                                                          capfd):
    marker = tmp_path / "pwned"
    text = template.format(marker=marker)
    spawned = []
    monkeypatch.setattr("os.system", lambda *a: spawned.append(a) or 0)
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert str(info.value).startswith(f"fn.expr {text!r}: ")
    assert not marker.exists()
    assert spawned == []
    assert "hi" not in capfd.readouterr().out


def test_parsing_never_calls_eval_exec_or_sympify(monkeypatch):
    text = "0.1*x**2*sin(x) + 2**x - pi/e"
    seen = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def spy(real):
        def wrapped(source, *args, **kwargs):
            if isinstance(source, str) and "sin(x)" in source:
                seen.append(source)
            return real(source, *args, **kwargs)
        return wrapped

    def forbidden(*args, **kwargs):
        seen.append(args)
        raise AssertionError("sympify/parse_expr called on user text")

    monkeypatch.setattr(builtins, "eval", spy(real_eval))
    monkeypatch.setattr(builtins, "exec", spy(real_exec))
    monkeypatch.setattr(sp, "sympify", forbidden)
    monkeypatch.setattr(sp, "parse_expr", forbidden)
    node = parse_expression(text)
    assert node.sympy() == sp.Rational(1, 10) * x**2 * sp.sin(x) + 2**x - sp.pi / sp.E
    assert seen == []
