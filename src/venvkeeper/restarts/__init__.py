"""Which running processes still use a replaced interpreter or a changed venv, from
``/proc`` alone, and their systemd units.

:mod:`.procfs` parses ``/proc`` (stat, cgroup, maps); :mod:`.venvs` maps a process to its
venv and tells what changed in it; :mod:`.scan` judges every process. May use: scan (to
judge a process's venv, imported only when there is one), checks.policy, host, model.
"""
