"""Everything asked of the host outside the venvs; no judgement here.

:mod:`.fsutil` bounded, non-blocking reads that never follow what they must not;
:mod:`.hostfs` the host's filesystem as a parameter (the real one, or an overlay for
predictions); :mod:`.mounts` the mount table; :mod:`.pkgdb` and :mod:`.aptdb` the OS
package databases (read-only queries, static reads of dpkg and apt state);
:mod:`.interpreters` the interpreters installed; :mod:`.bases` base interpreters as venvs
see them; :mod:`.command` running a program (bounded output, timeout, clean environment);
:mod:`.state` the state directory (the inventory's default place, saved tracebacks).
May use: model, errors, textutil.
"""
