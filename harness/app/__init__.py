"""What run.py does around Hydra: the command line before Hydra composes it
(commandline), and one run or one sweep job (jobs)."""
