"""harness.app.entry: the shortcut past Hydra's extra composition holds only where its
premise does (no dydx config sets hydra.mode)."""
from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra

from harness.app.entry import mode_from_the_flags
from harness.config.store import register_configs
from support import ROOT

PRESETS = sorted(p.stem for p in (ROOT / "conf" / "sweep").glob("*.yaml"))


@pytest.fixture(scope="module")
def hydra_app():
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        yield GlobalHydra.instance().hydra


@pytest.mark.parametrize("overrides", [[], ["fn=sin,cos"], *([f"+sweep={p}"] for p in PRESETS)])
def test_no_dydx_config_sets_hydra_mode(hydra_app, overrides):
    # The premise of mode_from_the_flags, read by Hydra's own (composing) get_mode.
    assert hydra_app.get_mode("config", overrides) is None


def test_hydra_still_reads_a_mode_the_command_line_sets(hydra_app):
    with mode_from_the_flags(["hydra.mode=MULTIRUN", "fn=sin"]):
        assert str(hydra_app.get_mode("config", ["hydra.mode=MULTIRUN"])) == "RunMode.MULTIRUN"


def test_otherwise_the_mode_is_read_without_composing_and_hydra_is_restored(monkeypatch):
    composed = []
    monkeypatch.setattr(Hydra, "compose_config", lambda self, *a, **k: composed.append(a))
    original = Hydra.get_mode
    with mode_from_the_flags(["fn=sin", "-m"]):
        assert Hydra.get_mode(object.__new__(Hydra), "config", ["fn=sin"]) is None
    assert composed == [] and Hydra.get_mode is original
