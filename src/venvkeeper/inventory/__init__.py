"""The embedded SQLite inventory of scans, and monitoring built on it.

:mod:`.snapshot` turns a scan's report into what the inventory keeps (pure: monitoring and
exports use it without a database); :mod:`.store` opens and validates the database
(schema, migrations); :mod:`.record` writes a scan into it (with the vanished rule);
:mod:`.queries` reads it back (scans, the inventory, changes since a time, one venv's
history); :mod:`.monitor` turns it into a monitoring verdict with thresholds. May use:
scan.discovery (for root coverage), checks, host, model.
"""
