"""dydx entry point: `python run.py [overrides]`, `python run.py -m [sweep overrides]`.

Thin on purpose: register the config groups and hand the command line to the app edge
(harness.app.entry: checks, one-line errors, exit statuses), which runs the composed
config through harness.app.jobs.run_job. Everything else lives in harness/, imported only
when a job runs.
"""
import sys

import hydra
from omegaconf import DictConfig

from harness.app import entry
from harness.config.store import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    # Imported here: a command that precheck or Hydra turns away, and --help, never pay
    # for pandas, matplotlib and the study (seconds on a small machine).
    from harness.app.jobs import run_job

    run_job(cfg)


if __name__ == "__main__":
    raise SystemExit(entry.main(main, sys.argv[1:]))
