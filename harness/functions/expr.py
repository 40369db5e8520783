"""Safe parser for one-variable expressions such as "x**2*sin(x)".

The text is parsed with Python's `ast` and every node is checked against a whitelist:
numbers, the variable x, the constants pi and e, + - * / ** and unary minus, parentheses,
and one-argument calls of the registered primitives. Nothing is ever passed to eval, exec
or sympify, so an expression cannot run code, read attributes or import modules. Nothing
in it can take long either: the text is at most MAX_LENGTH printable ASCII characters,
and every exact number the parser folds, or sympy would compute from its powers, is
refused beyond MAX_EXACT_DIGITS before it is computed (tests/test_expr_fuzz.py).
"""
from __future__ import annotations

import ast
import math
import warnings

from harness.functions.nodes import (_OPS, PRIMITIVES, Apply, BinOp, Const, Neg, Node, X,
                                     x_symbol)
from harness.lazy import sympy as sp

# name: (float value, the name of its exact sympy constant)
CONSTANTS = {"pi": (math.pi, "pi"), "e": (math.e, "E")}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
MAX_LENGTH = 500
# Constants are folded exactly (sympy rationals) for the reference. An exact constant
# with more digits than this is refused before it is computed: 1.0000001**9999 has 70,000
# digits (and more than the 4,300 Python will print), (1.0000001**9999)**300 has 21
# million and would take hours to compute.
MAX_EXACT_DIGITS = 1000
LOG10_2 = math.log10(2)


class ExpressionError(ValueError):
    """The expression is not in the accepted language; the message says where and why."""


def allowed_words() -> str:
    return f"x, {', '.join(CONSTANTS)} and functions {', '.join(PRIMITIVES.names())}"


def parse_expression(text: str) -> Node:
    """Parse `text` into an expression tree, or raise ExpressionError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("fn.expr is empty; write an expression in x, e.g. fn.expr='x**2*sin(x)'")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"fn.expr is {len(text)} characters long; the limit is {MAX_LENGTH}")
    _check_characters(text)
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" for 1if: refused below
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
        node = _convert(tree.body, text)
        _bounded_sympy(node, text)
        return node
    except SyntaxError as err:
        where = f" at column {err.offset}" if err.offset else ""
        raise ExpressionError(f"fn.expr {text!r} is not a valid expression: {err.msg}"
                              f"{where}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"fn.expr {text!r} is nested too deeply to parse") from None


def _check_characters(text: str) -> None:
    """Only printable ASCII and blanks: the language has no other characters, and a null
    byte or a lone surrogate would fail inside Python's parser without saying where."""
    for column, char in enumerate(text, start=1):
        if not (" " <= char <= "~" or char in "\t\n\r"):
            raise ExpressionError(f"fn.expr {text!r}: the character {char!r} (U+{ord(char):04X}) "
                                  f"at column {column} is not allowed; allowed: numbers, "
                                  f"+ - * / ** ( ), {allowed_words()}")


def _fail(node: ast.AST, text: str, what: str) -> ExpressionError:
    # Columns count in the text as the user wrote it (leading blanks included).
    column = getattr(node, "col_offset", 0) + 1 + len(text) - len(text.lstrip())
    return ExpressionError(f"fn.expr {text!r}: {what} at column {column}; allowed: "
                           f"numbers, + - * / ** ( ), {allowed_words()}")


def _convert(node: ast.AST, text: str) -> Node:
    if isinstance(node, ast.Constant):
        return _number(node, text)
    if isinstance(node, ast.Name):
        return _name(node, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _convert(node.left, text), _convert(node.right, text)
        op = _BINOPS[type(node.op)]
        if isinstance(left, Const) and isinstance(right, Const):
            return _fold(op, left, right, node, text)
        return BinOp(op, left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _convert(node.operand, text)
        if isinstance(node.op, ast.UAdd):
            return inner
        # Fold "-3" into a constant so "x**-1" is seen as an integer power (pole at 0).
        return Const(-inner.value, -inner.exact) if isinstance(inner, Const) else Neg(inner)
    if isinstance(node, ast.Call):
        return _call(node, text)
    if isinstance(node, ast.Attribute):
        raise _fail(node, text, f"attribute access '.{node.attr}' is not allowed")
    kind = type(getattr(node, "op", node)).__name__
    raise _fail(node, text, f"'{kind}' is not allowed")


def _number(node: ast.Constant, text: str) -> Const:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(node, text, f"the literal {value!r} is not a number")
    try:
        as_float = float(value)
    except OverflowError:  # an integer literal of 309 digits or more
        raise _fail(node, text, "the integer literal is larger than float64's maximum "
                                "(about 1.8e308)") from None
    if not math.isfinite(as_float):
        raise _fail(node, text, f"the literal {value!r} is not a finite number")
    if isinstance(value, int):  # also 0x10, 0o7, 0b1
        return Const(float(value), sp.Integer(value))
    # The source digits give the exact value for the reference ("0.1" means 1/10), while
    # torch computes with the nearest float, as any user code would.
    literal = ast.get_source_segment(text.strip(), node) or repr(value)
    exact = sp.Rational(literal.replace("_", ""))
    if _digits(exact) > MAX_EXACT_DIGITS:  # 1e-30000: 0.0 as a float, 30,000 digits exactly
        raise _fail(node, text, f"the literal {literal} {_too_exact(_digits(exact))}")
    return Const(value, exact)


def _digits(exact: sp.Expr) -> float:
    """Decimal digits of the integers an exact constant carries (its numbers' sizes)."""
    return sum((abs(r.p).bit_length() + r.q.bit_length()) * LOG10_2
               for r in exact.atoms(sp.Rational))


def _power_digits(base: sp.Expr, exponent: sp.Expr) -> float:
    """Digits sympy would work with to evaluate base**exponent exactly, estimated before:
    base**(p/q) costs base**p (then a q-th root), so 18**(2/1.0000001) costs 18**20000000."""
    if base in (0, 1, -1) or not exponent.is_Rational:
        return 0.0  # no growth, or sympy keeps the power symbolic (pi**x, 2**pi)
    return abs(exponent.p) * _digits(base)


def _fold(op: str, left: Const, right: Const, node: ast.AST, text: str) -> Const:
    """A constant sub-expression becomes one constant, or a clear error if it overflows,
    is not real ('9**9**9', '(-8)**(1/3)') or is too large to keep exact, before anything
    tries to evaluate it."""
    if op == "**" and _power_digits(left.exact, right.exact) > MAX_EXACT_DIGITS:
        raise _fail(node, text, "the constant sub-expression "
                    + _too_exact(_power_digits(left.exact, right.exact)))
    try:
        value = _OPS[op](left.value, right.value)
    except (OverflowError, ZeroDivisionError) as err:
        raise _fail(node, text, f"the constant sub-expression fails ({err})") from None
    if isinstance(value, complex) or not math.isfinite(value):
        raise _fail(node, text, f"the constant sub-expression is {value!r}, not a finite real")
    exact = _OPS[op](left.exact, right.exact)
    if _digits(exact) > MAX_EXACT_DIGITS:
        raise _fail(node, text, f"the constant sub-expression {_too_exact(_digits(exact))}")
    return Const(float(value), exact)


def _bounded_sympy(node: Node, text: str) -> sp.Expr:
    """node.sympy(), built bottom-up the same way, refusing a power whose numeric factor
    sympy would raise to a number beyond MAX_EXACT_DIGITS. Sympy simplifies x - x + 2 to 2
    and expands (2*x)**n into 2**n * x**n, so (x - x + 2)**(10**300) or (2*x)**(9**9) would
    never finish, although no constant folded by the parser is large."""
    if isinstance(node, BinOp):
        left, right = _bounded_sympy(node.left, text), _bounded_sympy(node.right, text)
        factor = left.as_independent(x_symbol(), as_Add=False)[0]
        if node.op == "**" and _power_digits(factor, right) > MAX_EXACT_DIGITS:
            raise ExpressionError(f"fn.expr {text!r}: a power of a sub-expression with the "
                                  f"numeric factor {_short(factor)} "
                                  f"{_too_exact(_power_digits(factor, right))}")
        return _OPS[node.op](left, right)
    if isinstance(node, Neg):
        return -_bounded_sympy(node.arg, text)
    if isinstance(node, Apply):
        return node.prim.sympy_fn(_bounded_sympy(node.arg, text))
    return node.sympy()  # X, Const


def _short(value: sp.Expr) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:18]}...{text[-18:]}"


def _too_exact(digits: float) -> str:
    return (f"would need about {digits:.3g} digits to keep exactly (the limit is "
            f"{MAX_EXACT_DIGITS}); write its value as a decimal")


def _name(node: ast.Name, text: str) -> Node:
    if node.id == "x":
        return X()
    if node.id in CONSTANTS:
        value, exact = CONSTANTS[node.id]
        return Const(value, getattr(sp, exact))
    raise _fail(node, text, f"unknown name '{node.id}'")


def _call(node: ast.Call, text: str) -> Node:
    if not isinstance(node.func, ast.Name):
        raise _fail(node, text, "only calls of plain function names are allowed")
    name = node.func.id
    if name not in PRIMITIVES:
        raise _fail(node, text, f"unknown function '{name}'")
    if node.keywords or len(node.args) != 1:
        raise _fail(node, text, f"{name}() takes exactly one argument")
    return Apply(PRIMITIVES.get(name), _convert(node.args[0], text))
