"""harness.config.store: run and sweep folders name a second derivative."""
from __future__ import annotations

from hydra import compose, initialize_config_dir

from harness.config.store import order_suffix, register_configs
from support import ROOT


def folders(*overrides: str) -> tuple[str, str]:
    """(run dir, sweep job subdir) Hydra would use for these overrides (job number 3)."""
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    cfg.hydra.job.num = 3
    return cfg.hydra.run.dir, cfg.hydra.sweep.subdir


def test_order_suffix_is_empty_for_the_first_derivative():
    assert (order_suffix(1), order_suffix(2)) == ("", "_order2")


def test_a_second_derivative_run_and_sweep_job_say_so_in_their_folder_names():
    run, job = folders("fn=sin", "method=stencil", "order=2")
    assert run.endswith("_sin_stencil_float64_order2") and job == "3_sin_stencil_float64_order2"
    run, job = folders("fn=sin", "method=stencil")
    assert run.endswith("_sin_stencil_float64") and job == "3_sin_stencil_float64"
