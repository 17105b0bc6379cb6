"""The venv layouts of CPython 3.14 and 3.15, built by hand as their ``venv`` lays them out
(read from Debian forky's libpython3.14-stdlib and libpython3.15-stdlib, Lib/venv/__init__.py):

- 3.14 adds ``bin/𝜋thon``, a relative link to its interpreter, beside ``python``,
  ``python3`` and ``python3.14`` (when the filesystem encoding is UTF-8);
- 3.15 no longer makes ``lib64 -> lib``: it makes the purelib and the platlib directories,
  which are ``lib/python3.15/site-packages`` and ``lib64/python3.15/site-packages`` where
  the build's ``platlibdir`` is ``lib64`` (Fedora, RHEL, SUSE): compiled packages live there.

No 3.14 or 3.15 runs here: the bases are files with an ELF head and the stdlib landmarks
(the helper ``chain`` tests real forky roots). Each layout is scanned, predicted, planned,
edited by a relink and a rebuild's carry-over, and judged by the matrix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from venvkeeper.checks.registry import run_checks
from venvkeeper.host.interpreters import Places, find_interpreters
from venvkeeper.model.plan import Target
from venvkeeper.predict.plan import make_plan
from venvkeeper.repair import edit
from venvkeeper.scan.inspect import PI_THON, inspect_venv

from conftest import run_cli, validate_json

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 56


def base(prefix: Path, minor: str, patch: str, lib: str = "lib") -> Path:
    """A Python prefix as a distro installs it; *lib* is its ``platlibdir``."""
    exe = prefix / "bin" / f"python{minor}"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_bytes(ELF)
    exe.chmod(0o755)
    std = prefix / lib / f"python{minor}"
    std.mkdir(parents=True)
    (std / "os.py").write_text("")
    inc = prefix / "include" / f"python{minor}"
    inc.mkdir(parents=True)
    (inc / "patchlevel.h").write_text(f'#define PY_VERSION "{patch}"\n')
    return exe


def set_python3(prefix: Path, minor: str) -> None:
    link = prefix / "bin" / "python3"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(f"python{minor}")


def dist(site: Path, name: str, version: str, ext: str = "") -> None:
    """A distribution as a wheel installs it (*ext*: a compiled module's tag)."""
    di = site / f"{name}-{version}.dist-info"
    di.mkdir(parents=True)
    (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (di / "INSTALLER").write_text("pip\n")
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("")
    record = [f"{name}/__init__.py,,", f"{di.name}/METADATA,,"]
    purelib = "true"
    if ext:
        so = f"{name}/_speed.{ext}.so"
        (site / so).write_bytes(ELF)
        record.append(f"{so},,")
        purelib = "false"
    (di / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: {purelib}\n")
    (di / "RECORD").write_text("\n".join(record) + "\n")


def venv(dest: Path, python: Path, minor: str, patch: str) -> Path:
    """``python{minor} -m venv DEST`` as 3.14/3.15 lay it out (see the module docstring)."""
    (dest / "bin").mkdir(parents=True)
    (dest / "include").mkdir()
    (dest / "bin" / f"python{minor}").symlink_to(python)
    for name in ("python", "python3"):
        (dest / "bin" / name).symlink_to(f"python{minor}")
    if minor == "3.14":
        (dest / "bin" / PI_THON).symlink_to(f"python{minor}")
        (dest / "lib" / f"python{minor}" / "site-packages").mkdir(parents=True)
        (dest / "lib64").symlink_to("lib")
    (dest / "pyvenv.cfg").write_text(
        f"home = {python.parent}\ninclude-system-site-packages = false\nversion = {patch}\n"
        f"executable = {python}\ncommand = {python} -m venv {dest}\n"
    )
    return dest


def venv_315_lib64(dest: Path, python: Path) -> Path:
    """A 3.15 venv of a build whose platlibdir is lib64: purelib and platlib apart."""
    v = venv(dest, python, "3.15", "3.15.0")
    pure = v / "lib" / "python3.15" / "site-packages"
    plat = v / "lib64" / "python3.15" / "site-packages"
    pure.mkdir(parents=True)
    plat.mkdir(parents=True)
    dist(pure, "alpha", "1.0")
    dist(plat, "speed", "2.0", ext="cpython-315-x86_64-linux-gnu")
    (plat / "site-extra.pth").write_text(f"{dest.parent}/extra\n")
    (dest.parent / "extra").mkdir()
    return v


def _world(tmp_path: Path) -> dict[str, Any]:
    usr = tmp_path / "usr"
    py314 = base(usr, "3.14", "3.14.2")
    py315 = base(usr, "3.15", "3.15.0", lib="lib64")
    set_python3(usr, "3.15")
    v314 = venv(tmp_path / "envs" / "v314", py314, "3.14", "3.14.2")
    dist(v314 / "lib" / "python3.14" / "site-packages", "alpha", "1.0")
    v315 = venv_315_lib64(tmp_path / "envs" / "v315", py315)
    return {"usr": usr, "py314": py314, "py315": py315, "v314": v314, "v315": v315}


def _interps(usr: Path) -> Any:
    return find_interpreters(Places((str(usr / "bin"),), ()), packages_root=None)


def test_pi_thon_is_an_interpreter_name_judged_like_the_others(tmp_path: Path) -> None:
    w = _world(tmp_path)
    facts = inspect_venv(str(w["v314"]))
    chains = {c.name: c for c in facts.chains}
    assert set(chains) == {"python", "python3", "python3.14", PI_THON}
    assert chains[PI_THON].resolved == str(w["py314"])
    assert facts.base is not None and facts.base.patch_version == "3.14.2"
    assert not [f for f in run_checks(facts) if f.severity.value != "info"]
    show = validate_json("show", run_cli("show", "--json", str(w["v314"])).out)
    assert PI_THON in {c["name"] for c in show["venv"]["interpreter_links"]}
    # Its base removed: every name dangles, 𝜋thon too, and the venv breaks loudly.
    pred = validate_json(
        "predict",
        run_cli("predict", "--json", f"--remove={w['py314']}", str(w["v314"])).out,
    )
    (p,) = pred["venvs"]
    assert p["effect"] == "breaks-loudly", p


def test_a_relink_keeps_pi_thon_and_a_rebuild_leaves_it_to_the_new_minor(tmp_path: Path) -> None:
    w = _world(tmp_path)
    v = w["v314"]
    # A relink (same minor, another prefix): 𝜋thon follows python, as venv made it.
    other = base(tmp_path / "opt", "3.14", "3.14.3")
    (v / "bin" / PI_THON).unlink()
    (v / "bin" / PI_THON).write_bytes(ELF)  # a --copies venv's copy of the old binary
    edit.relink(str(v), Target(str(other), str(other), "3.14", "3.14.3"))
    assert os.readlink(v / "bin" / PI_THON) == "python"
    assert os.path.realpath(v / "bin" / PI_THON) == str(other)
    # A rebuild carries over what no package and no creator made: never 𝜋thon, which a
    # 3.14 creator makes itself and another minor's would leave dangling.
    assert edit.extras(str(v), edit.owned_files(str(v))) == []
    (v / "bin" / "my-tool").write_text("#!/bin/sh\n")
    assert edit.extras(str(v), edit.owned_files(str(v))) == ["bin/my-tool"]


def test_lib64_site_packages_are_found_and_judged(tmp_path: Path) -> None:
    w = _world(tmp_path)
    v = w["v315"]
    facts = inspect_venv(str(v))
    assert not (v / "lib64").is_symlink()
    sites = {os.path.relpath(s.path, v): s for s in facts.site_dirs}
    assert set(sites) == {"lib/python3.15/site-packages", "lib64/python3.15/site-packages"}
    assert {d.name for d in facts.distributions} == {"alpha", "speed"}
    (speed,) = sites["lib64/python3.15/site-packages"].distributions
    assert speed.extensions[0].python_version == "3.15"
    assert sites["lib64/python3.15/site-packages"].pth_paths[0][2] is True
    assert not [f for f in run_checks(facts) if f.severity.value != "info"]
    # python3 becomes 3.14: both packages are stranded, the lib64 one named where it is.
    set_python3(w["usr"], "3.14")
    (v / "bin" / "python3.15").unlink()
    (v / "bin" / "python3.15").symlink_to(w["usr"] / "bin" / "python3")
    then = inspect_venv(str(v))
    (mismatch,) = [f for f in run_checks(then) if f.code == "version-mismatch"]
    assert "lib64/python3.15" in mismatch.message and "2 packages" in mismatch.message
    plan = make_plan(then, run_checks(then), _interps(w["usr"]))
    assert {r.spec for r in plan.packages} == {"alpha==1.0", "speed==2.0"}
    assert {b.code for b in plan.blockers} == {"needs-new-wheel"}  # speed's cp315 .so
    # A relink or moved venv's path rewrite reaches the lib64 directory's .pth file.
    changed = edit.rewrite_paths(str(v), str(v.parent), str(tmp_path / "moved"))
    assert "lib64/python3.15/site-packages/site-extra.pth" in changed
    # its RECORD owns its files: nothing of lib64 is carried over as an extra
    assert edit.extras(str(v), edit.owned_files(str(v))) == []


def test_the_matrix_judges_both_layouts_on_hosts_of_each_minor(tmp_path: Path) -> None:
    w = _world(tmp_path)
    usr = w["usr"]
    profiles = {}
    for host, minor, gone in (("h315", "3.15", "3.14"), ("h314", "3.14", "3.15")):
        set_python3(usr, minor)
        aside = usr / "bin" / f"python{gone}"
        os.rename(aside, str(aside) + ".gone")
        out = tmp_path / f"{host}.json"
        res = run_cli(
            "host-profile", "--search", str(usr / "bin"), "--no-run", "--no-packages",
            "-o", str(out),
        )  # fmt: skip
        assert res.code == 0, res.err
        os.rename(str(aside) + ".gone", aside)
        profiles[host] = out
    res = run_cli(
        "matrix", "--json", *(f"--host-profile={p}" for p in profiles.values()),
        str(tmp_path / "envs"),
    )  # fmt: skip
    doc = validate_json("matrix", res.out)
    ids = {g["python3"]: g["id"] for g in doc["hosts"]}
    cells = {os.path.basename(v["path"]): v["cells"] for v in doc["venvs"]}
    assert cells["v315"][ids["3.15"]]["state"] == "works"
    assert cells["v315"][ids["3.14"]]["effect"] == "breaks-loudly"  # python3.15 is gone
    assert cells["v314"][ids["3.14"]]["state"] == "works"
    assert cells["v314"][ids["3.15"]]["effect"] == "breaks-loudly"
