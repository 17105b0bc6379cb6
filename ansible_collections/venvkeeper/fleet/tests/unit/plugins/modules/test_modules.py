# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)
"""Each module's logic against a fake venvkeeper: the command lines it runs, how it reads
the JSON, and every failure path (venvkeeper missing, bad options, exit 3, garbage)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.venvkeeper.fleet.plugins.module_utils import venvkeeper as vkutil
from ansible_collections.venvkeeper.fleet.plugins.modules import (
    venv_facts,
    venv_predict,
    venv_repair,
    venv_restarts,
    venv_wheelhouse,
)

SCAN = {
    "schema_version": 2,
    "tool": {"name": "venvkeeper", "version": "0.1.0"},
    "roots": ["/srv"],
    "summary": {"venvs": 2, "ok": 1, "warning": 0, "unknown": 0, "critical": 1, "worst": "critical"},
    "venvs": [{"path": "/srv/a", "status": "critical"}, {"path": "/srv/b", "status": "ok"}],
}
PROFILE = {"kind": "host-profile", "schema_version": 2, "interpreters": []}
PREDICTION = {
    "schema_version": 2,
    "kind": "predict",
    "change": {"python_becomes": [{"link": "/usr/bin/python3", "version": "3.13"}]},
    "summary": {"venvs": 2, "worst": "critical", "breaks-silently": 1, "survives": 1},
    "venvs": [
        {"path": "/srv/a", "effect": "breaks-silently", "breaks": True, "status_now": "ok",
         "status_then": "critical", "python_now": "3.11.2", "python_then": "3.13",
         "plan": {"strategy": "rebuild", "reason": "version-mismatch: ...",
                  "packages": [{"name": "Requests", "version": "2.31.0", "kind": "index"},
                               {"name": "six", "version": "1.16.0", "kind": "index"},
                               {"name": "mine", "version": "1.0", "kind": "local"}]},
         "used_by": [{"pid": 10, "unit": "web.service"}]},
        {"path": "/srv/b", "effect": "survives", "breaks": False, "plan": {"strategy": "none"}},
    ],
}


CONSUMERS = {
    "schema_version": 2,
    "kind": "consumers",
    "consumers": [
        {"kind": "systemd", "name": "web.service", "venv": "/srv/a", "status": "critical",
         "restart": {"manager": "system", "unit": "web.service", "verb": "try-restart"}},
        {"kind": "mod-wsgi", "name": "WSGIDaemonProcess blog", "venv": "/srv/b", "status": "ok",
         "restart": {"manager": "system", "unit": "apache2.service", "verb": "reload"}},
        {"kind": "cron", "name": "/etc/cron.d/x:1", "venv": "/srv/b", "status": "ok",
         "restart": {"manager": "none", "unit": None, "verb": "none"}},
        {"kind": "systemd", "name": "other.service", "venv": "/opt/elsewhere", "status": "ok",
         "restart": {"manager": "system", "unit": "other.service", "verb": "try-restart"}},
    ],
}


def result(path, outcome, strategy="rebuild", message="rebuild on /usr/bin/python3 (3.13)"):
    return {"path": path, "outcome": outcome, "strategy": strategy, "message": message}


def restarts(*procs, **units):
    doc = {"schema_version": 2, "kind": "restarts", "processes": list(procs),
           "units": {"restart": [], "restart_user": [], "repair_first": []}, "foreign": []}
    doc["units"].update(units)
    return doc


def proc(pid, unit, venv, needs=True, fails=False, user_unit=False):
    return {"pid": pid, "unit": unit, "venv": venv, "needs_restart": needs,
            "restart_fails": fails, "user_unit": user_unit, "user": "root"}


# --- finding venvkeeper --------------------------------------------------------------------


def test_venvkeeper_missing_names_every_place_tried(run, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setattr(vkutil, "FALLBACK", str(tmp_path / "usr-bin-venvkeeper"))
    monkeypatch.setattr(venv_facts.AnsibleModule, "get_bin_path", lambda self, name: None)
    res = run(venv_facts, {})
    assert res["failed"]
    assert "venvkeeper not found on the target" in res["msg"]
    assert str(tmp_path / "nothing") in res["msg"] and str(tmp_path / "usr-bin-venvkeeper") in res["msg"]


def test_a_named_executable_that_does_not_exist(run, tmp_path):
    res = run(venv_restarts, {"executable": str(tmp_path / "no-such")})
    assert res["failed"] and res["msg"].endswith("no-such does not exist")


def test_a_named_executable_that_cannot_run(run, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    res = run(venv_restarts, {"executable": str(plain)})
    assert res["failed"] and "is not an executable file" in res["msg"]


def test_found_on_path(run, fake, monkeypatch):
    monkeypatch.setenv("PATH", fake.root)
    fake.answer("restarts", restarts())
    res = run(venv_restarts, {})
    assert not res.get("failed"), res
    assert fake.calls() == [["restarts", "--json"]]


# --- exit codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("module", [venv_facts, venv_predict, venv_restarts])
def test_exit_3_fails_with_venvkeeper_s_message(run, fake, module):
    for cmd in ("scan", "predict", "restarts"):
        fake.answer(cmd, "", rc=3, err="venvkeeper: error: /nope: does not exist\n")
    res = run(module, {"executable": fake.path})
    assert res["failed"] and res["rc"] == 3
    assert "exit 3, usage or internal error" in res["msg"]
    assert res["msg"].endswith("venvkeeper: error: /nope: does not exist")


def test_exit_3_of_repair_and_wheelhouse(run, fake, tmp_path):
    fake.answer("repair", "", rc=3, err="venvkeeper: error: /x: does not exist\n")
    res = run(venv_repair, {"executable": fake.path, "paths": ["/x"]})
    assert res["failed"] and res["msg"].endswith("/x: does not exist")
    fake.answer("wheelhouse", "", rc=3, err="venvkeeper: error: pip is missing\n")
    res = run(venv_wheelhouse, {"executable": fake.path, "dest": str(tmp_path / "w")})
    assert res["failed"] and res["msg"].endswith("pip is missing")


@pytest.mark.parametrize("rc", [1, 2])
def test_warning_and_critical_are_verdicts(run, fake, rc):
    fake.answer("scan", SCAN, rc=rc)
    fake.answer("host-profile", PROFILE)
    fake.answer("consumers", CONSUMERS, rc=2)
    res = run(venv_facts, {"executable": fake.path})
    assert not res.get("failed") and res["exit_code"] == rc and res["changed"] is False
    assert res["verdict"] == {1: "warning", 2: "critical"}[rc] and "rc" not in res


def test_interrupted_and_odd_codes_fail(run, fake):
    fake.answer("restarts", "", rc=130, err="venvkeeper: interrupted\n")
    res = run(venv_restarts, {"executable": fake.path})
    assert res["failed"] and "interrupted" in res["msg"]
    fake.answer("restarts", "", rc=7)
    res = run(venv_restarts, {"executable": fake.path})
    assert res["failed"] and "unexpected exit status" in res["msg"]


def test_output_that_is_not_json(run, fake):
    fake.answer("restarts", "Traceback (most recent call last):\n", rc=0, err="boom\n")
    res = run(venv_restarts, {"executable": fake.path})
    assert res["failed"] and "printed no JSON document" in res["msg"] and "boom" in res["msg"]


def test_a_newer_schema_is_refused(run, fake):
    doc = restarts()
    doc["schema_version"] = 3
    fake.answer("restarts", doc)
    res = run(venv_restarts, {"executable": fake.path})
    assert res["failed"] and "schema_version 3" in res["msg"]


def test_a_document_of_another_kind_is_refused(run, fake):
    fake.answer("restarts", PREDICTION)
    res = run(venv_restarts, {"executable": fake.path})
    assert res["failed"] and "'predict' document, not 'restarts'" in res["msg"]


# --- venv_facts ----------------------------------------------------------------------------


def test_facts(run, fake):
    fake.answer("scan", SCAN, rc=2)
    fake.answer("host-profile", PROFILE)
    fake.answer("consumers", CONSUMERS, rc=2)
    res = run(venv_facts, {"executable": fake.path, "roots": ["/srv", "-odd"], "exclude": ["node_modules"]})
    facts = res["ansible_facts"]["venvkeeper"]
    assert facts["venvs"] == SCAN["venvs"] and facts["summary"] == SCAN["summary"]
    assert facts["host_profile"] == PROFILE and facts["broken"] == ["/srv/a"]
    assert facts["version"] == "0.1.0"
    assert facts["consumers"] == CONSUMERS["consumers"]
    # the units of the venvs under the roots, once each (not other.service's /opt venv)
    assert facts["restart_units"] == ["web.service", "apache2.service"]
    assert fake.calls() == [
        ["scan", "--json", "--no-record", "--exclude", "node_modules", "--", "/srv", "-odd"],
        ["host-profile"],
        ["consumers", "--json", "--no-scan"],
    ]


def test_facts_in_check_mode_and_without_profile(run, fake):
    fake.answer("scan", SCAN)
    res = run(venv_facts, {"executable": fake.path, "host_profile": False, "include_network": True,
                           "consumers": False}, check_mode=True)
    assert res["ansible_facts"]["venvkeeper"]["host_profile"] is None and not res["changed"]
    assert res["ansible_facts"]["venvkeeper"]["consumers"] == []
    assert fake.calls() == [["scan", "--json", "--no-record", "--include-network"]]


def test_bad_options_fail(run, fake):
    res = run(venv_facts, {"executable": fake.path, "roots": "/srv", "bogus": 1})
    assert res["failed"] and "bogus" in res["msg"]
    res = run(venv_repair, {"executable": fake.path, "paths": ["/a"], "backend": "conda"})
    assert res["failed"] and "backend" in res["msg"]
    assert fake.calls() == []


# --- venv_predict --------------------------------------------------------------------------


def test_predict(run, fake):
    fake.answer("predict", PREDICTION, rc=2)
    res = run(venv_predict, {"executable": fake.path, "roots": ["/srv"], "python_becomes": ["3.13"],
                             "remove_package": ["python3.11-minimal"], "processes": False})
    assert not res.get("failed") and res["exit_code"] == 2 and res["changed"] is False
    assert res["breaking"] == ["/srv/a"]
    assert res["venvs"][0]["effect"] == "breaks-silently" and res["venvs"][0]["strategy"] == "rebuild"
    assert res["venvs"][0]["used_by"] == [{"pid": 10, "unit": "web.service"}]
    assert fake.calls() == [["predict", "--json", "--python-becomes", "3.13", "--remove-package",
                             "python3.11-minimal", "--no-processes", "--", "/srv"]]


def test_fail_on_break(run, fake):
    fake.answer("predict", PREDICTION, rc=2)
    res = run(venv_predict, {"executable": fake.path, "fail_on_break": True})
    assert res["failed"] and res["breaking"] == ["/srv/a"]
    assert res["msg"] == "the change would break 1 venv(s): /srv/a (breaks-silently)"


def test_predict_consumers(run, fake):
    """A venv that survives while its web server will embed another Python: the consumer
    breaks, and the pre-flight fails on it."""
    web = {"kind": "mod-wsgi", "name": "WSGIDaemonProcess blog", "breaks": True,
           "fails_how": "http-500", "why": "libapache2-mod-wsgi-py3 rebuilt for Python 3.13"}
    cron = {"kind": "cron", "name": "/etc/cron.d/x:1", "breaks": False, "fails_how": None}
    venvs = [dict(PREDICTION["venvs"][1], consumers=[web, cron])]
    fake.answer("predict", dict(PREDICTION, venvs=venvs))
    res = run(venv_predict, {"executable": fake.path})
    assert res["breaking"] == [] and res["venvs"][0]["consumers"] == [web, cron]
    assert res["breaking_consumers"] == [
        {"kind": "mod-wsgi", "name": "WSGIDaemonProcess blog", "venv": "/srv/b",
         "fails_how": "http-500", "why": "libapache2-mod-wsgi-py3 rebuilt for Python 3.13"}]
    res = run(venv_predict, {"executable": fake.path, "fail_on_break": True, "consumers": True})
    assert res["failed"] and res["msg"] == (
        "the change would break 0 venv(s): ; and 1 consumer(s): WSGIDaemonProcess blog (http-500)")
    run(venv_predict, {"executable": fake.path, "consumers": False})
    assert fake.calls()[-1] == ["predict", "--json", "--no-consumers"]


def test_fail_on_break_passes_when_nothing_breaks(run, fake):
    doc = dict(PREDICTION, venvs=[PREDICTION["venvs"][1]])
    fake.answer("predict", doc)
    res = run(venv_predict, {"executable": fake.path, "fail_on_break": True})
    assert not res.get("failed") and res["breaking"] == []


def test_a_host_profile_given_as_a_dict_goes_in_a_private_file(run, fake, tmp_path):
    fake.answer("predict", PREDICTION, rc=2)
    run(venv_predict, {"executable": fake.path, "host_profile": PROFILE})
    argv = fake.calls()[0]
    path = argv[argv.index("--host-profile") + 1]
    assert path.startswith(str(tmp_path))
    with open(path) as f:
        assert json.load(f) == PROFILE
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_a_host_profile_of_the_wrong_type(run, fake):
    res = run(venv_predict, {"executable": fake.path, "host_profile": [1, 2]})
    assert res["failed"] and "host_profile must be a path" in res["msg"]
    assert fake.calls() == []


# --- venv_repair ---------------------------------------------------------------------------


def test_repair_check_mode_is_the_dry_run(run, fake):
    results = [result("/srv/a", "planned"), result("/srv/b", "nothing-to-do", "none")]
    fake.answer("repair", {"schema_version": 2, "results": results})
    fake.answer("restarts", restarts(proc(10, "web.service", "/srv/a", needs=False, fails=True),
                                     proc(11, "other.service", "/srv/b"),
                                     repair_first=["web.service"], restart=["other.service"]))
    res = run(venv_repair, {"executable": fake.path, "all": True, "roots": ["/srv"], "offline": True,
                            "find_links": ["/w"]}, check_mode=True, diff=True)
    assert res["changed"] and res["repaired"] == ["/srv/a"] and res["restarts"] is None
    assert res["restart_units"] == ["web.service"]  # would be fine once repaired
    assert res["diff"] == [{"before_header": "/srv/a", "after_header": "/srv/a",
                            "before": "/srv/a: needs rebuild\n",
                            "after": "/srv/a: rebuild on /usr/bin/python3 (3.13)\n"}]
    assert fake.calls()[0] == ["repair", "--json", "--quiet", "--find-links", "/w", "--offline", "--all",
                               "--dry-run", "--", "/srv"]


def test_repair_never_lists_a_unit_whose_venv_is_still_broken(run, fake):
    results = [result("/srv/a", "repaired"), result("/srv/c", "failed")]
    fake.answer("repair", {"schema_version": 2, "results": results}, rc=2)
    fake.answer("restarts", restarts(
        proc(10, "web.service", "/srv/a"),
        proc(11, "jobs.service", "/srv/c"),  # its repair failed: not judged broken by restarts
        proc(12, "broken.service", "/srv/d", fails=True),
        proc(13, "mine.service", "/srv/a", user_unit=True),
        restart=["web.service", "jobs.service"], restart_user=[["root", "mine.service"]],
        repair_first=["broken.service"]), rc=2)
    res = run(venv_repair, {"executable": fake.path, "paths": ["/srv/a", "/srv/c"], "keep_backups": 1})
    assert not res.get("failed") and res["exit_code"] == 2 and res["changed"]
    assert res["restart_units"] == ["web.service"]
    assert res["restart_user_units"] == [["root", "mine.service"]]
    assert sorted(res["units_held_back"]) == ["broken.service", "jobs.service"]
    assert res["failed_paths"] == ["/srv/c"]
    assert fake.calls()[0] == ["repair", "--json", "--quiet", "--keep-backups", "1", "--", "/srv/a", "/srv/c"]
    assert fake.calls()[1] == ["restarts", "--json"]


def test_repair_with_nothing_to_do_still_names_the_units_to_restart(run, fake):
    """The upgrade replaced the interpreter under a service whose venv needed nothing."""
    fake.answer("repair", {"schema_version": 2, "results": [result("/srv/b", "nothing-to-do", "none")]})
    fake.answer("restarts", restarts(proc(10, "web.service", "/srv/b"), restart=["web.service"]), rc=1)
    res = run(venv_repair, {"executable": fake.path, "paths": ["/srv/b"]})
    assert res["changed"] is False and res["restart_units"] == ["web.service"]
    assert [c[0] for c in fake.calls()] == ["repair", "restarts"]
    res = run(venv_repair, {"executable": fake.path, "paths": ["/srv/b"]}, check_mode=True)
    assert res["restart_units"] == [] and [c[0] for c in fake.calls()][2:] == ["repair"]


def action(outcome, unit=None, edit=None, user=None, kind="restart"):
    return {"kind": kind if edit is None else "edit", "outcome": outcome, "venv": "/srv/a",
            "consumers": ["x"], "unit": unit, "user": user, "command": None, "edit": edit,
            "detail": ""}


def test_repair_restart_units_come_from_the_consumers(run, fake):
    """The repaired venv's consumers name the units: the web server that embeds it, a unit
    with a user-writable drop-in held back, a user's unit named, an edit done."""
    edit = {"path": "/etc/systemd/system/r.service", "line": 3, "old": "a", "new": "b"}
    actions = [action("done", edit=edit), action("printed", "apache2.service"),
               action("printed", "web.service"), action("refused", "evil.service"),
               action("named", "mine.service", user="alice"), action("not-running", "off.service")]
    fake.answer("repair", {"schema_version": 2, "results": [result("/srv/a", "repaired")],
                           "consumers": actions})
    fake.answer("restarts", restarts(proc(10, "web.service", "/srv/a"), proc(11, "evil.service", "/srv/a"),
                                     restart=["web.service", "evil.service"]))
    res = run(venv_repair, {"executable": fake.path, "paths": ["/srv/a"], "fix_consumers": True})
    assert res["restart_units"] == ["web.service", "apache2.service"]
    assert res["units_held_back"] == ["evil.service"]
    assert res["restart_user_units"] == [["alice", "mine.service"]]
    assert res["restarted_units"] == [] and res["consumers"] == actions and res["changed"]
    assert fake.calls()[0] == ["repair", "--json", "--quiet", "--fix-consumers", "--", "/srv/a"]


def test_repair_restart_lets_venvkeeper_restart(run, fake):
    actions = [action("done", "apache2.service"), action("held", "uwsgi.service")]
    fake.answer("repair", {"schema_version": 2, "results": [result("/srv/a", "repaired")],
                           "consumers": actions}, rc=1)
    fake.answer("restarts", restarts())
    res = run(venv_repair, {"executable": fake.path, "paths": ["/srv/a"], "restart": True})
    assert res["restarted_units"] == ["apache2.service"] and res["restart_units"] == []
    assert res["units_held_back"] == ["uwsgi.service"]
    assert fake.calls()[0] == ["repair", "--json", "--quiet", "--restart", "--", "/srv/a"]


@pytest.mark.parametrize("args, message", [
    ({}, "name the venvs to repair (paths), or use all=true"),
    ({"paths": ["/a"], "all": True}, "mutually exclusive"),
    ({"paths": []}, "paths is empty"),
    ({"paths": ["/a"], "roots": ["/srv"]}, "mutually exclusive"),
    ({"roots": ["/srv"], "all": False}, "name the venvs to repair"),
    ({"all": True, "keep_backups": -1}, "keep_backups must be 0 or more"),
])
def test_repair_bad_options(run, fake, args, message):
    res = run(venv_repair, dict(args, executable=fake.path))
    assert res["failed"] and message in res["msg"], res["msg"]
    assert fake.calls() == []


# --- venv_wheelhouse -----------------------------------------------------------------------


def test_wheelhouse_check_mode_lists_what_a_fetch_would_look_for(run, fake, tmp_path):
    dest = tmp_path / "wheels"
    dest.mkdir()
    (dest / "requests-2.31.0-py3-none-any.whl").write_text("")
    fake.answer("plan", dict(PREDICTION, kind="plan"), rc=2)
    res = run(venv_wheelhouse, {"executable": fake.path, "dest": str(dest), "python_becomes": ["3.13"]},
              check_mode=True)
    assert res["would_fetch"] == ["six==1.16.0"] and res["changed"]
    assert fake.calls() == [["plan", "--json", "--python-becomes", "3.13"]]


def test_wheelhouse(run, fake, tmp_path):
    dest = tmp_path / "new" / "wheels"
    fake.answer("wheelhouse", {"schema_version": 2, "kind": "wheelhouse", "directory": str(dest),
                               "fetches": [{"venv": "/srv/a", "spec": "six==1.16.0", "outcome": "missing"}]},
                rc=2)
    res = run(venv_wheelhouse, {"executable": fake.path, "dest": str(dest), "offline": True, "roots": ["/srv"]})
    assert dest.is_dir() and res["changed"] and res["missing"] == ["six==1.16.0"] and res["exit_code"] == 2
    assert fake.calls() == [["wheelhouse", "--json", "--dest", str(dest), "--offline", "--", "/srv"]]


def test_wheelhouse_dest_that_is_a_file(run, fake, tmp_path):
    (tmp_path / "f").write_text("")
    res = run(venv_wheelhouse, {"executable": fake.path, "dest": str(tmp_path / "f")})
    assert res["failed"] and "is not a directory" in res["msg"]
    res = run(venv_wheelhouse, {"executable": fake.path, "dest": str(tmp_path / "no"), "create": False})
    assert res["failed"] and "does not exist (create=false)" in res["msg"]


# --- venv_restarts -------------------------------------------------------------------------


def test_restarts(run, fake):
    doc = restarts(proc(10, "web.service", "/srv/a"), restart=["web.service"])
    fake.answer("restarts", doc, rc=1)
    res = run(venv_restarts, {"executable": fake.path, "judge": False}, check_mode=True)
    assert res["exit_code"] == 1 and res["needs_restart"] and res["units"]["restart"] == ["web.service"]
    assert res["processes"] == doc["processes"] and res["changed"] is False
    assert fake.calls() == [["restarts", "--json", "--no-judge"]]


def test_a_schema_1_prediction_is_still_read(run, fake):
    """venvkeeper before schema_version 2 named the prediction's kind "prediction"."""
    fake.answer("predict", dict(PREDICTION, kind="prediction", schema_version=1), rc=2)
    res = run(venv_predict, {"executable": fake.path, "roots": ["/srv"]})
    assert not res.get("failed") and res["breaking"], res
