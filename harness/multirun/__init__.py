"""Sweep mechanics (python run.py -m): launchers, the manifest and resume, the heartbeat,
and the Hydra callback that writes the sweep report when a multirun ends. Not named
`sweep`: that is the Python API's function."""
