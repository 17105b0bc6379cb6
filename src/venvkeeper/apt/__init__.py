"""apt integration: the hooks that predict before an upgrade and report after it.

:mod:`.hook` parses what apt hands a ``Pre-Install-Pkgs`` hook (which Python changes an
apt run makes) and writes the hook configuration; :mod:`.run` does the hooks' work (read
apt's input, predict, report, under a timeout, never failing apt). May use: predict,
restarts, inventory, scan, checks, formats, host, model.
"""
