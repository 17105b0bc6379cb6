"""The host profile file (``venvkeeper host-profile``), kind ``host-profile``: the data
``predict --host-profile`` reads back (:func:`venvkeeper.host.interpreters.load_profile`)."""

from __future__ import annotations

import json
from typing import Any

from venvkeeper.formats.envelope import Kind, envelope
from venvkeeper.model.host import HostProfile


def profile_to_dict(p: HostProfile) -> dict[str, Any]:
    return envelope(
        Kind.HOST_PROFILE,
        {
            "hostname": p.hostname,
            "created_at": p.created_at,
            "os_release": p.os_release,
            "searched": {"bin_dirs": list(p.bin_dirs), "trees": list(p.trees)},
            "dir_links": dict(p.dir_links),
            "interpreters": [
                {
                    "executable": i.executable,
                    "version": i.version,
                    "patch_version": i.patch_version,
                    "prefix": i.prefix,
                    "stdlib_present": i.stdlib_present,
                    "origin": i.origin.value,
                    "is_script": i.is_script,
                    "package": i.package,
                    "version_source": i.version_source,
                    "obsolete": i.obsolete,
                    "names": [{"path": n.path, "hops": list(n.hops)} for n in i.names],
                }
                for i in p.interpreters
            ],
        },
    )


def render_profile(p: HostProfile) -> str:
    """The profile file. Not through :func:`venvkeeper.formats.envelope.dumps`: it is data
    that ``--host-profile`` reads back, so its strings stay exact; ``ensure_ascii`` writes
    every character outside ASCII (controls, lone surrogates) as a JSON escape, which keeps
    the file valid UTF-8 and safe to print."""
    return json.dumps(profile_to_dict(p), indent=2, ensure_ascii=True) + "\n"
