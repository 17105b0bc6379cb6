"""A tiny, dependency-free PEP 517/660 build backend for the test suite's own packages.

Tests install real wheels (and real editable installs) with pip and uv without any
network: this backend builds them from a ``vkproject.json`` beside it, compiling C
extensions with the *building* interpreter's headers so their ABI tag is real.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import zipfile


def _cfg():
    with open("vkproject.json") as f:
        return json.load(f)


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel
get_requires_for_build_sdist = get_requires_for_build_wheel


def _tag(cfg):
    if not cfg.get("ext"):
        return "py3-none-any"
    v = "cp%d%d" % sys.version_info[:2]
    abi = v + getattr(sys, "abiflags", "")
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        abi = v + "t"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return "%s-%s-%s" % (v, abi, plat)


def _compile(src, out):
    inc = sysconfig.get_paths()["include"]
    subprocess.check_call(
        ["gcc", "-shared", "-fPIC", "-O0", "-I" + inc, src, "-o", out], timeout=120
    )


def _record_line(arc, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arc, digest, len(data))


def _build(wheel_directory, editable):
    cfg = _cfg()
    name, version = cfg["name"], cfg["version"]
    dist = name.replace("-", "_")
    tag = _tag(cfg)
    files = {}
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if editable:
        for mod, src in sorted(cfg.get("ext", {}).items()):
            _compile(src, mod.replace(".", "/") + ext_suffix)
        files["__editable__.%s.pth" % dist] = (os.path.abspath(".") + "\n").encode()
    else:
        for pkg in cfg.get("packages", []):
            for dirpath, dirnames, filenames in os.walk(pkg):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for fn in sorted(filenames):
                    if fn.endswith((".py", ".txt", ".dat")):
                        p = os.path.join(dirpath, fn)
                        with open(p, "rb") as f:
                            files[p.replace(os.sep, "/")] = f.read()
        # Compiled beside the wheel (the frontend's directory, which it removes), in a
        # directory of our own that is gone before the wheel is named: nothing is left.
        with tempfile.TemporaryDirectory(prefix=".vkbackend-", dir=wheel_directory) as tmp:
            for mod, src in sorted(cfg.get("ext", {}).items()):
                out = os.path.join(tmp, mod.rsplit(".", 1)[-1] + ext_suffix)
                _compile(src, out)
                with open(out, "rb") as f:
                    files[mod.replace(".", "/") + ext_suffix] = f.read()
    di = "%s-%s.dist-info" % (dist, version)
    meta = "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)
    if cfg.get("requires_python"):
        meta += "Requires-Python: %s\n" % cfg["requires_python"]
    for req in cfg.get("requires", []):
        meta += "Requires-Dist: %s\n" % req
    files[di + "/METADATA"] = meta.encode()
    purelib = "false" if cfg.get("ext") else "true"
    files[di + "/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: vkbackend\nRoot-Is-Purelib: %s\nTag: %s\n" % (purelib, tag)
    ).encode()
    if cfg.get("scripts"):
        eps = "[console_scripts]\n" + "".join(
            "%s = %s\n" % kv for kv in sorted(cfg["scripts"].items())
        )
        files[di + "/entry_points.txt"] = eps.encode()
    if cfg.get("packages"):
        files[di + "/top_level.txt"] = ("\n".join(cfg["packages"]) + "\n").encode()
    record = [_record_line(arc, data) for arc, data in files.items()]
    record.append(di + "/RECORD,,")
    files[di + "/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = "%s-%s-%s.whl" % (dist, version, tag)
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w") as z:
        for arc, data in files.items():
            z.writestr(arc, data)
    return wheel_name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _build(wheel_directory, editable=True)
