"""harness.dtypes: every fact about a dtype, in one table."""
from __future__ import annotations

import pytest
import torch

from harness.dtypes import DTYPES, TABLE, facts, name_of


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_a_run_can_use_has_its_facts_by_name_and_by_torch_dtype(name):
    row = facts(name)
    assert facts(DTYPES[name]) is row and row.name == name
    assert row.rtol > 0 and row.atol > 0
    assert 2.0 ** -row.nmant == torch.finfo(DTYPES[name]).eps == row.eps


def test_tolerances_are_torch_testing_assert_closes_defaults():
    assert {row.name: (row.rtol, row.atol) for row in TABLE} == {
        "float64": (1e-7, 1e-7), "float32": (1.3e-6, 1e-5), "float16": (1e-3, 1e-5),
        "bfloat16": (1.6e-2, 1e-5)}


def test_complex_partners_exist_for_the_full_precision_dtypes_only():
    assert {row.name: row.complex for row in TABLE} == {
        "float64": torch.complex128, "float32": torch.complex64, "float16": None,
        "bfloat16": None}
    assert [row.name for row in TABLE if row.half] == ["float16", "bfloat16"]


def test_dtype_names_round_trip():
    assert [name_of(dtype) for dtype in DTYPES.values()] == list(DTYPES)
    with pytest.raises(KeyError):
        facts("float8")
