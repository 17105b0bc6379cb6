"""conda prefixes get their Python version from ``conda-meta/python-X.Y.Z-BUILD.json``,
for every prefix the scan lists and in ``show``; never from the names in ``bin/`` (a 3.10
prefix has a ``python3.1`` link).

The layouts are those of the conda fixtures of VS Code's environment locator
(microsoft/python-environment-tools, crates/pet-conda/tests/unix and the conda installs
of crates/pet-pyenv/tests/unix), rebuilt here by name: empty ``bin/python*`` files, odd
directory names that lie about the version, environments without Python, mamba and
micromamba prefixes; plus a free-threaded build, a release candidate, and a prefix whose
``bin/python`` really links to ``python3.10`` beside conda's ``python3.1``.
"""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, validate_json

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 56

#: prefix (relative) -> (files in conda-meta, names in bin, the version it must get)
PREFIXES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    "anaconda3-2023.03": (
        ("python-3.10.9-hc0d8a6c_1.json", "pip-23.0.1-py310h06a4308_0.json", "history"),
        ("python", "python3", "python3.1", "python3.10"),
        "3.10.9",
    ),
    "anaconda3-2023.03/envs/env_python_3": (
        ("python-3.12.2-hdf0ec26_0_cpython.json", "python_abi-3.12-4_cp312.json", "history"),
        ("python", "python3", "python3.1", "python3.12"),
        "3.12.2",
    ),
    "anaconda3-2023.03/envs/myenv": (
        ("python-3.10.14-hb885b13_1.json", "history"),
        ("python", "python3", "python3.1", "python3.10"),
        "3.10.14",
    ),
    "anaconda3-2023.03/envs/without_python": (("history",), (), None),
    "anaconda3-2023.03-without-history": (
        ("python-3.10.9-hc0d8a6c_1.json",),
        ("python", "python3", "python3.1", "python3.10"),
        "3.10.9",
    ),
    "conda_env_with_python_upgrade": (("history", "python-3.9.21-h789abc_0.json"), (), "3.9.21"),
    "conda_hist/some_other_location/conda_install": (
        ("python-3.10.9-hc0d8a6c_1.json", "python-dateutil-2.8.2-pyhd8ed1ab_0.json"),
        ("python", "python3", "python3.1", "python3.10"),
        "3.10.9",
    ),
    "micromamba-only": (("python-3.11.0-h1234567_0.json",), ("python", "python3"), "3.11.0"),
    "miniforge3-mamba": (("python-3.10.14-h1234567_0.json",), ("python", "python3"), "3.10.14"),
    "miniforge3-mamba/envs/myenv": (("history",), (), None),
    ".pyenv/versions/miniconda3-3.10-22.11.1-1": (
        ("python-3.11.5-hb885b13_0.json",),
        ("python",),
        "3.11.5",
    ),
    ".pyenv/versions/anaconda-4.0.0/envs/one": (
        ("python-3.11.1-hdf0ec26_0_cpython.json",),
        ("python",),
        "3.11.1",
    ),
    "freethreaded": (
        ("python-3.13.0-h9ebbce0_100_cp313t.json", "python-freethreading-3.13.0-h_0.json"),
        ("python3.13t",),
        "3.13.0t",
    ),
    "candidate": (("python-3.14.0rc2-h1234567_0_cp314.json",), ("python3.14",), "3.14.0"),
}


def _build(root: Path) -> None:
    for rel, (meta, names, _) in PREFIXES.items():
        p = root / rel
        (p / "conda-meta").mkdir(parents=True)
        for m in meta:
            (p / "conda-meta" / m).write_text("{}\n" if m.endswith(".json") else "")
        if names:
            (p / "bin").mkdir()
        for n in names:
            (p / "bin" / n).write_bytes(b"")  # the fixtures' bin/ files are empty


def test_every_listed_conda_prefix_has_its_version(tmp_path: Path) -> None:
    _build(tmp_path)
    doc = validate_json("scan", run_cli("scan", "--json", str(tmp_path)).out)
    got = {c["path"]: c["python"] for c in doc["conda_envs"]}
    want = {str(tmp_path / rel): v for rel, (_, _, v) in PREFIXES.items()}
    assert got == want


def test_show_prints_the_recorded_version_not_a_link_name(tmp_path: Path) -> None:
    _build(tmp_path)
    for rel, (_, _, version) in PREFIXES.items():
        res = run_cli("show", str(tmp_path / rel))
        assert f"  recorded: {version or 'not recorded'}\n" in res.out, (rel, res.out)
    # A working prefix: bin/python links to python3.10, beside conda's python3.1 link.
    p = tmp_path / "real"
    (p / "conda-meta").mkdir(parents=True)
    (p / "conda-meta" / "python-3.10.18-h1a3bd86_0.json").write_text("{}")
    (p / "bin").mkdir()
    (p / "bin" / "python3.10").write_bytes(ELF)
    (p / "bin" / "python3.10").chmod(0o755)
    for n in ("python", "python3", "python3.1"):
        (p / "bin" / n).symlink_to("python3.10")
    (p / "lib" / "python3.10").mkdir(parents=True)
    (p / "lib" / "python3.10" / "os.py").write_text("")
    doc = validate_json("show", run_cli("show", "--json", str(p)).out)
    py = doc["venv"]["python"]
    assert (py["recorded"], py["now"], py["patch"]) == ("3.10.18", "3.10", "3.10.18")
    text = run_cli("show", str(p)).out
    assert "  now: 3.10\n" in text and "3.1\n" not in text.replace("3.10.18\n", "")
