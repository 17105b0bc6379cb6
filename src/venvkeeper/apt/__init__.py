"""apt integration: the hooks that predict before an upgrade and report after it.

:mod:`.hook` parses what apt hands a ``Pre-Install-Pkgs`` hook and writes the hook
configuration. May use: predict, scan, formats, host, model.
"""
