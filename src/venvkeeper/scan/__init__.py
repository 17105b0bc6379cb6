"""Find venvs and read each one without running anything from it.

The pipeline: :mod:`.discovery` walks the roots (parallel, pruning at venv roots) ->
:mod:`.inspect` reads each venv statically (with :mod:`.cfg` for ``pyvenv.cfg``,
:mod:`.dists` for its installed distributions, :mod:`.creators` for the tool that made
it) -> :mod:`venvkeeper.checks` judge the facts -> :mod:`.pipeline` puts it together into a
:class:`~venvkeeper.model.report.Report`. :mod:`.deep` is the opt-in ``--deep`` probe, the
only code that runs a venv's interpreter. May use: checks, host, model, errors, textutil.
"""
