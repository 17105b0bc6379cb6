"""What a planned change does to each venv, and what to do about it.

:mod:`.changes` describes the change as another host (a new minor, a removed interpreter,
another host's profile) and judges every venv against it; :mod:`.plan` makes one venv's
repair plan (relink, fix paths, rebuild, with which interpreter and which packages);
:mod:`.seeds` tells which seed packages a venv's own code needs. May use: scan, checks,
host, model.
"""
