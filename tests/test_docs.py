"""The README's method and function tables are the registries' own (python -m harness.docs)."""
from pathlib import Path

from harness.docs import functions_table, methods_table, nn_list, not_studied_list, torch_ops_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_lists_exactly_the_registered_methods():
    assert methods_table() in README


def test_readme_lists_exactly_the_registered_functions():
    assert functions_table() in README


def test_readme_lists_the_nn_activations_found_by_reflection():
    assert nn_list() in README


def test_readme_lists_exactly_the_registered_torch_ops():
    assert torch_ops_table() in README


def test_readme_lists_the_torch_ops_left_out_with_their_reasons():
    assert not_studied_list() in README


def test_readme_gives_the_two_setup_commands_ci_follows():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install torch==2.13.0 && pip install -e \".[test]\" && python run.py" in README
    assert "pip install torch==2.13.0 && pip install -e \".[test]\" && pytest -n auto" in README
    assert "pip install --quiet torch==2.13.0" in ci and "pip install --quiet -e \".[test]\"" in ci
    assert "python -m pytest -q -n auto" in ci
