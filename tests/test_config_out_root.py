"""Where results land: results/ in the working directory, or DYDX_OUT_ROOT set once, or
out_root=... per command; the reference cache lives beside them."""
from __future__ import annotations

from harness.config.store import compose_config
from harness.config.validate import validate


def test_results_land_in_the_working_directorys_results_by_default(monkeypatch):
    monkeypatch.delenv("DYDX_OUT_ROOT", raising=False)
    cfg = compose_config(["device=cpu"])
    assert cfg.out_root == "results"
    assert validate(cfg).reference.cache_dir == "results/.cache/reference"


def test_dydx_out_root_sets_the_root_once_for_every_command(monkeypatch, tmp_path):
    monkeypatch.setenv("DYDX_OUT_ROOT", str(tmp_path / "project"))
    cfg = compose_config(["device=cpu"])
    assert cfg.out_root == str(tmp_path / "project")
    assert validate(cfg).reference.cache_dir == f"{tmp_path / 'project'}/.cache/reference"
    # The command line still wins over the environment.
    assert compose_config(["out_root=elsewhere"]).out_root == "elsewhere"
