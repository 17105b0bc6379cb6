"""The checks: each one small unit judging a venv's facts, registered in one place.

:mod:`.registry` lists the checks (:data:`~.registry.CHECKS`) and every finding code;
each other module is one check with its ``CHECK`` and the codes it reports
(:mod:`._base` has the shared pieces; other stages import them from here).
:mod:`.deep` turns the ``--deep`` probe's result into findings; :mod:`.policy` applies
the site's policy (ignore, allowed bases, severity overrides) to judged venvs. Checks
are pure functions of :class:`~venvkeeper.model.venv.VenvFacts`: they read nothing and
run nothing (an import contract checks it). May use: model, textutil.
"""

from venvkeeper.checks._base import BOOTSTRAP, Check, CodeDoc, ConsumerCheck

__all__ = ["BOOTSTRAP", "Check", "CodeDoc", "ConsumerCheck"]
