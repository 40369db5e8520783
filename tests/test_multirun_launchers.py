"""harness.multirun.launchers and the sweep presets: who runs a sweep's jobs, how many at
once, how many threads each, and the presets' files."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness.multirun.launchers import LauncherInfo, job_threads, launcher_info
from support import ROOT


def _hydra(launcher: dict, choice: str) -> object:
    return OmegaConf.create({"runtime": {"choices": {"hydra/launcher": choice}},
                             "launcher": launcher})


@pytest.mark.parametrize("launcher, choice, total, expected", [
    ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, "basic", 9,
     LauncherInfo("basic", 1, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -1}, "joblib", 9, LauncherInfo("joblib", 4, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -1}, "joblib", 3, LauncherInfo("joblib", 3, True)),
    ({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
      "n_jobs": -2}, "joblib", 9, LauncherInfo("joblib", 3, True)),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"},
     "submitit_local", 5, LauncherInfo("submitit_local", 5, True)),
    ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
      "array_parallelism": 64}, "slurm", 500, LauncherInfo("slurm", 64, False)),
])
def test_launcher_info_counts_concurrent_jobs(launcher, choice, total, expected):
    assert launcher_info(_hydra(launcher, choice), total, cpus=4) == expected


def test_local_parallel_jobs_share_the_cpus_as_threads():
    assert job_threads(LauncherInfo("joblib", 2, True), cpus=8) == 4
    assert job_threads(LauncherInfo("joblib", 16, True), cpus=8) == 1
    assert job_threads(LauncherInfo("basic", 1, True), cpus=8) is None
    assert job_threads(LauncherInfo("slurm", 64, False), cpus=8) is None


def test_launcher_columns_say_whether_timings_were_taken_in_parallel():
    assert LauncherInfo("joblib", 4, True).columns() == {
        "launcher": "joblib", "n_workers": 4, "parallel": True}
    assert LauncherInfo("basic", 1, True).columns() == {
        "launcher": "basic", "n_workers": 1, "parallel": False}


def test_slurm_preset_has_overridable_partition_time_and_gpus(compose_config):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                 "hydra.launcher.timeout_min=30",
                                 "hydra.launcher.gpus_per_node=1"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 30, 1)
    assert launcher.submitit_folder.endswith("/.submitit/%j")
    info = launcher_info(cfg.hydra, total=10, cpus=2)
    assert info == LauncherInfo("slurm", 10, False)
    # What Hydra will build from it (no cluster needed until jobs are submitted).
    built = instantiate(launcher)
    assert (built.params["partition"], built.params["timeout_min"], built.params["gpus_per_node"],
            built.params["cpus_per_task"]) == ("gpu", 30, 1, 4)


def test_presets_are_global_packages_with_sweeper_params():
    for name in ("stepsize", "methods", "scaling"):
        text = (ROOT / "conf" / "sweep" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n")
        assert OmegaConf.create(text).hydra.sweeper.params
    stepsize = OmegaConf.load(ROOT / "conf" / "sweep" / "stepsize.yaml").hydra.sweeper.params
    assert [float(h) for h in stepsize["method.h"].split(",")] == [10.0 ** -k for k in range(1, 16)]
    assert stepsize["method.scheme"].split(",") == ["central", "forward", "backward"]
