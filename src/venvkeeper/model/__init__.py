"""The central model: frozen dataclasses and enums, no I/O, shared by every stage.

One module per stage's output, so a command imports only the types it shows:
:mod:`.findings` (severities, findings), :mod:`.venv` (what inspection reads of one venv),
:mod:`.report` (a scan's results), :mod:`.host` (interpreters, host profiles),
:mod:`.plan` (predictions, repair plans), :mod:`.repair` (repair outcomes, backups,
prefetches), :mod:`.restarts` (processes to restart), :mod:`.inventory` (recorded scans).
Uses nothing else of venvkeeper.
"""
