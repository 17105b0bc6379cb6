#!/usr/bin/env bash
# venvkeeper developer entry point: sets up .dev/venv (idempotent) and runs a job in it.
#   ./dev.sh scan [ARGS...]   scan this host (all local filesystems) and print the table
#   ./dev.sh test             lint, then the whole test suite on every core (pytest-xdist),
#                             failing on a skip that docs/development.md does not expect on
#                             CI's machine: what .ci/run calls
#   ./dev.sh test --fast [ARGS...]  the fast tier only (tests not marked slow), on every
#                             core, no lint: under a minute
#   ./dev.sh test ARGS...     only pytest ARGS (serial unless ARGS say -n N)
#   ./dev.sh lint             ruff, mypy, the import contracts (lint-imports), no bare
#                             open() in src/ (tools/check_open.py) and the documentation
#                             site (mkdocs build --strict, into a temporary directory)
#   ./dev.sh docs [DIR]       the documentation site (mkdocs.yml, docs/) into DIR (default
#                             site/); python tools/update_docs.py regenerates its blocks
#   ./dev.sh bench [ARGS...]  the scan benchmark of bench/ (bench/run.py)
#   ./dev.sh bench procs [ARGS...]  restarts against needrestart (bench/procs.py)
#   ./dev.sh bench repair [ARGS...] a rebuild against uv by hand (bench/repair.py)
#   ./dev.sh bench startup [ARGS...] the short commands' start-up, restarts against
#                             needrestart on this host as it is (bench/startup.py)
#   ./dev.sh bench matrix [ARGS...] a shared tree against 100 host profiles (bench/matrix.py)
#   ./dev.sh bench incremental [ARGS...] an incremental scan against a cold one, 10,000
#                             venvs (bench/incremental.py)
#   ./dev.sh bench apt_hook [ARGS...] the apt hooks against needrestart's in a Debian root
#                             with 10,000 venvs (bench/apt_hook.py; root)
#   ./dev.sh bench consumers [ARGS...] reading consumers on a host with 500 units, 200 cron
#                             lines and 2,000 PATH files (bench/consumers.py)
#   ./dev.sh pyz [ARGS...]    dist/venvkeeper.pyz: a zipapp with its dependencies inside, for
#                             any CPython 3.9+ (tools/build_pyz.py; wheels cached in
#                             ~/.cache/venvkeeper-build)
#   ./dev.sh dist             the wheel and the sdist, into dist/ (python -m build)
#   ./dev.sh deb [OUTDIR]     the Debian package, built by this Debian's own tools and
#                             Python: OUTDIR/venvkeeper_VERSION_all.deb (default dist/)
#   ./dev.sh ansible          only set up .dev/ansible (ansible-core, for the collection)
#   ./dev.sh setup            only set up
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
venv=$root/.dev/venv

pick_python() {
    # Any CPython 3.9+ will do; prefer the one on PATH, then Debian's.
    for c in "${VENVKEEPER_DEV_PYTHON:-}" python3 /usr/bin/python3; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    echo "dev.sh: no CPython 3.9+ with venv and ensurepip found (on Debian: apt-get install python3-venv)" >&2
    return 1
}

setup() {
    local stamp=$venv/.venvkeeper-stamp want
    want=$(cat pyproject.toml | sha256sum | cut -c1-16)
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
        "$venv/bin/python" -c 'import venvkeeper' 2>/dev/null &&
        "$venv/bin/venvkeeper" --version >/dev/null 2>&1; then
        return 0
    fi
    local py; py=$(pick_python)
    echo "dev.sh: setting up $venv with $py" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
    legacy_tools
    echo "$want" >"$stamp"
}

system_tools() {
    # Installed with apt when we are root on Debian/Ubuntu, else their tests are skipped:
    # uWSGI with its Python 3 plugin, for the restarts tests of a real uwsgi master and
    # workers; debootstrap (and zstd for its cached roots), for the real release upgrade
    # of tests/test_real_upgrade.py; systemd-nspawn (systemd-container), to boot a root
    # (tests/nspawn.py: the golden data of a real systemd); the Debian package's build tools and lintian, for
    # tests/test_deb.py; tmux, for the tables seen in a real terminal (tests/test_terminal.py).
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
    if ! command -v uwsgi-core >/dev/null 2>&1; then
        apt_install uwsgi-core uwsgi-plugin-python3 ||
            echo "dev.sh: could not install uwsgi: the uwsgi test will be skipped" >&2
    fi
    if ! command -v debootstrap >/dev/null 2>&1 && ! [ -x /usr/sbin/debootstrap ]; then
        apt_install debootstrap zstd ||
            echo "dev.sh: could not install debootstrap: the real upgrade test will be skipped" >&2
    fi
    if ! command -v systemd-nspawn >/dev/null 2>&1; then
        apt_install systemd-container ||
            echo "dev.sh: could not install systemd-container: the booted-root tests will be skipped" >&2
    fi
    if ! command -v tmux >/dev/null 2>&1; then
        apt_install tmux ||
            echo "dev.sh: could not install tmux: the real terminal tests will be skipped" >&2
    fi
    deb_tools ||
        echo "dev.sh: could not install the Debian build tools: the package tests will be skipped" >&2
}

#: What debian/control's Build-Depends names, dpkg-dev and lintian (bookworm's own).
DEB_TOOLS=(debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools
    python3-packaging python3-prometheus-client dpkg-dev lintian)

deb_tools() {
    local missing=() p
    for p in "${DEB_TOOLS[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    apt_install --no-install-recommends "${missing[@]}"
}

deb() {
    # In a temporary copy of the tree (dpkg-buildpackage writes to its parent directory and
    # leaves build files in the tree), with Debian's python3 (PATH without pyenv's or a
    # venv's), never the registry's setuptools.
    local out=${1:-$root/dist} version tmp
    command -v dpkg-query >/dev/null 2>&1 || { echo "dev.sh: not a Debian system" >&2; return 1; }
    deb_tools || { echo "dev.sh: missing build tools: apt-get install ${DEB_TOOLS[*]}" >&2; return 1; }
    version=$(PYTHONPATH=$root/src /usr/bin/python3 -c 'import venvkeeper; print(venvkeeper.__version__)')
    if [ "$(dpkg-parsechangelog -l debian/changelog -S Version)" != "$version" ]; then
        echo "dev.sh: debian/changelog's version is not $version (venvkeeper.__version__): add an entry" >&2
        return 1
    fi
    tmp=$(mktemp -d)
    trap "rm -rf '$tmp'" EXIT
    mkdir "$tmp/venvkeeper-$version"
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files -z -co --exclude-standard | grep -zv '^\.dev$' |
            tar --null -T - -cf - | tar -xf - -C "$tmp/venvkeeper-$version"
    else
        tar --exclude=./.dev --exclude=./dist --exclude=./.git -cf - . | tar -xf - -C "$tmp/venvkeeper-$version"
    fi
    (cd "$tmp/venvkeeper-$version" &&
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp" LC_ALL=C.UTF-8 \
            dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) || {
        tail -n 40 "$tmp/build.log" >&2
        echo "dev.sh: dpkg-buildpackage failed" >&2
        return 1
    }
    mkdir -p "$out"
    cp "$tmp/venvkeeper_${version}_all.deb" "$out/"
    echo "$out/venvkeeper_${version}_all.deb"
}

apt_install() {
    # A fresh machine may have no package lists yet: update once, then try again.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
    apt-get update -q >/dev/null 2>&1 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

test_wheels() {
    # Wheels of real servers for the restarts tests (gunicorn, and setproctitle that
    # rewrites its process titles), fetched once from the registry for CPython 3.11.
    # Also a current setuptools: the repair tests' wheelhouse, for venvs seeded with a
    # setuptools that no longer imports on the newer Python they are rebuilt on; and the
    # registry's setuptools 44.1.1 (with pkg_resources, unlike Debian 11's wheel of it):
    # the release chain's stand-in index (tests/test_release_chain.py).
    local dir=$root/.dev/wheels
    [ -e "$dir/.done-3" ] && return 0
    mkdir -p "$dir"
    if "$venv/bin/python" -m pip download -q --disable-pip-version-check -d "$dir" \
        --python-version 3.11 --only-binary=:all: gunicorn setproctitle 'setuptools>=80' \
        >/dev/null 2>&1; then
        for v in 75.8.0 44.1.1; do # one version a call: pip takes one per name
            "$venv/bin/python" -m pip download -q --disable-pip-version-check -d "$dir" \
                --only-binary=:all: --no-deps "setuptools==$v" >/dev/null 2>&1 || return 0
        done
        touch "$dir/.done-3"
    else
        echo "dev.sh: could not download test wheels: the gunicorn test and some repair tests will be skipped" >&2
    fi
}

#: ansible-core for tests/test_ansible.py (2.18: controller CPython 3.11-3.13), and what
#: ansible-test's sanity and unit tests run with --local (pinned as its requirements files).
ANSIBLE_CORE='ansible-core>=2.18,<2.19'
ANSIBLE_TEST_DEPS=(antsibull-docs-parser==1.0.0 pylint==3.3.1 astroid==3.3.5 pycodestyle==2.12.1
    voluptuous==0.15.2 yamllint==1.35.1 pytest pytest-mock pytest-xdist mock)

ansible_tools() {
    # ansible-core in its own venv (.dev/ansible: not the dev venv, whose packages it would
    # pin), for the collection under ansible_collections/. ansible-test makes a venv per
    # sanity test and bootstraps pip in it with a script from a host outside the package
    # registries: tools/ansible_get_pip.py stands in for it, from ensurepip and the registry.
    local dir=$root/.dev/ansible want py c pipv cache=~/.ansible/test/cache
    want="$ANSIBLE_CORE ${ANSIBLE_TEST_DEPS[*]}"
    # a venv made under another path (a moved checkout) has scripts naming a gone python
    if ! "$dir/bin/ansible-test" --version >/dev/null 2>&1 ||
        [ "$(cat "$dir/.venvkeeper-stamp" 2>/dev/null)" != "$want" ]; then
        py=
        for c in python3.11 python3.12 python3.13 /usr/bin/python3; do
            if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv, ensurepip
sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; then
                py=$(command -v "$c"); break
            fi
        done
        if [ -z "$py" ]; then
            echo "dev.sh: no CPython 3.11-3.13 for ansible-core: tests/test_ansible.py will be skipped" >&2
            return 0
        fi
        echo "dev.sh: setting up $dir with $py" >&2
        rm -rf "$dir"
        if ! { "$py" -m venv "$dir" &&
            "$dir/bin/python" -m pip install -q --disable-pip-version-check "$ANSIBLE_CORE" \
                "${ANSIBLE_TEST_DEPS[@]}" >/dev/null 2>&1; }; then
            rm -rf "$dir"
            echo "dev.sh: could not install $ANSIBLE_CORE: tests/test_ansible.py will be skipped" >&2
            return 0
        fi
        echo "$want" >"$dir/.venvkeeper-stamp"
    fi
    pipv=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" "$dir"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n 1)
    if [ -n "$pipv" ] && ! [ -e "$cache/get_pip_${pipv//./_}.py" ]; then
        mkdir -p "$cache" && cp tools/ansible_get_pip.py "$cache/get_pip_${pipv//./_}.py"
    fi
}

legacy_tools() {
    # virtualenv < 20 for CPython 2.7, to make real legacy virtualenvs in the tests.
    local py27
    py27=$(ls "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/2.7.*/bin/python2.7 2>/dev/null | tail -n 1)
    [ -n "$py27" ] || py27=$(command -v python2.7 || true)
    if [ -z "$py27" ]; then
        echo "dev.sh: no CPython 2.7: legacy virtualenv tests will be skipped" >&2
        return 0
    fi
    "$py27" -m pip install -q --disable-pip-version-check --target "$root/.dev/legacy-virtualenv" \
        'virtualenv<20' >/dev/null 2>&1 ||
        echo "dev.sh: could not install virtualenv<20 for $py27: legacy tests will be skipped" >&2
}

dist() {
    # build makes the sdist, then the wheel from the sdist (what a user's pip would do)
    rm -f dist/venvkeeper-*.tar.gz dist/venvkeeper-*.whl
    "$venv/bin/python" -m build --outdir dist .
    ls -l dist/venvkeeper-*
}

lint() {
    "$venv/bin/ruff" check src tests bench tools
    "$venv/bin/ruff" format --check src tests bench tools
    "$venv/bin/mypy"
    "$venv/bin/lint-imports" --no-cache --no-logo
    "$venv/bin/python" tools/check_open.py  # no bare open() in src/ (docs/safety.md)
    local site; site=$(mktemp -d)
    docs "$site" || { rm -rf "$site"; return 1; }
    rm -rf "$site"
}

docs() {
    # --strict: a broken link, a missing anchor or a page left out of the nav fails.
    NO_MKDOCS_2_WARNING=1 "$venv/bin/mkdocs" build --strict --quiet -f "$root/mkdocs.yml" \
        -d "${1:-$root/site}"
}

cmd=${1:-help}; [ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    ansible) ansible_tools ;;
    scan) setup; exec "$venv/bin/venvkeeper" scan "$@" ;;
    test)
        setup; test_wheels; system_tools; ansible_tools
        if [ "${1:-}" = --fast ]; then
            shift
            exec "$venv/bin/python" -m pytest -m "not slow" -n auto --dist loadgroup "$@"
        fi
        [ $# -gt 0 ] && exec "$venv/bin/python" -m pytest "$@"
        lint
        # tests named: its conftest then adds --expected-skips before the options are read
        exec "$venv/bin/python" -m pytest -n auto --dist loadgroup \
            --expected-skips docs/development.md tests ;;
    lint) setup; lint ;;
    docs) setup; docs "$@" ;;
    pyz) setup; exec "$venv/bin/python" tools/build_pyz.py "$@" ;;
    dist) setup; dist ;;
    deb) deb "$@" ;;
    bench)
        setup
        if [ "${1:-}" = procs ]; then shift; exec "$venv/bin/python" bench/procs.py "$@"; fi
        if [ "${1:-}" = repair ]; then shift; exec "$venv/bin/python" bench/repair.py "$@"; fi
        if [ "${1:-}" = startup ]; then shift; exec "$venv/bin/python" bench/startup.py "$@"; fi
        if [ "${1:-}" = matrix ]; then shift; exec "$venv/bin/python" bench/matrix.py "$@"; fi
        if [ "${1:-}" = incremental ]; then shift; exec "$venv/bin/python" bench/incremental.py "$@"; fi
        if [ "${1:-}" = apt_hook ]; then shift; exec "$venv/bin/python" bench/apt_hook.py "$@"; fi
        if [ "${1:-}" = consumers ]; then shift; exec "$venv/bin/python" bench/consumers.py "$@"; fi
        exec "$venv/bin/python" bench/run.py "$@" ;;
    *) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 2 ;;
esac
