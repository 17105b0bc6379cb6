"""fsutil: the bounded JSON reader and the careful whole-file read that every JSON venvkeeper
reads goes through (direct_url.json, host profiles, inventory rows, probe output)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venvkeeper.host.fsutil import (
    JSONError,
    NotRegularFile,
    TooLarge,
    load_json,
    load_json_file,
    read_file,
)


def test_load_json_reads_json() -> None:
    doc = {"url": "file:///x", "dir_info": {"editable": True}, "n": [1, [2, [3]]]}
    assert load_json(json.dumps(doc)) == doc
    assert load_json(json.dumps(doc).encode()) == doc
    assert load_json(b"\xef\xbb\xbf[1]") == [1]  # a BOM, as json.loads(bytes) allows
    assert load_json('["[[[[[[", "\\"[[[["]', max_depth=1) == ["[[[[[[", '"[[[[']


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        ("[" * 100_000, "nested deeper than 64 levels"),
        ('{"a": ' * 70 + "1" + "}" * 70, "nested deeper than 64 levels"),
        (b"x" * 2000, "larger than 1000 bytes"),
        (b'{"url": "\xff"}', "not UTF-8 (byte 9)"),
        (b"{", "not valid JSON: Expecting"),
        ("1" * 5000, "not valid JSON"),  # longer than int() converts
        (b"", "not valid JSON"),
    ],
)
def test_load_json_refuses_cleanly(data: bytes | str, needle: str) -> None:
    with pytest.raises(JSONError) as e:
        load_json(data, limit_bytes=1000 if needle.startswith("larger") else 1 << 20)
    assert needle in str(e.value)
    assert isinstance(e.value, ValueError)


def test_load_json_at_the_depth_limit() -> None:
    assert load_json("[" * 64 + "]" * 64) is not None
    with pytest.raises(JSONError):
        load_json("[" * 65 + "]" * 65)


@given(st.one_of(st.binary(max_size=500), st.text(max_size=500)))
def test_load_json_raises_nothing_else(data: bytes | str) -> None:
    with contextlib.suppress(JSONError):
        load_json(data, max_depth=8)


def test_read_file_refuses_links_fifos_and_large_files(tmp_path: Path) -> None:
    f = tmp_path / "f.json"
    f.write_text('{"a": 1}')
    assert read_file(str(f), 100) == b'{"a": 1}'
    assert load_json_file(str(f)) == {"a": 1}
    link = tmp_path / "link.json"
    link.symlink_to(f.name)
    with pytest.raises(OSError) as e:
        read_file(str(link), 100)
    assert e.value.errno == errno.ELOOP
    assert read_file(str(link), 100, follow_links=True) == b'{"a": 1}'
    os.mkfifo(tmp_path / "fifo")  # never opened for reading: no hang
    with pytest.raises(NotRegularFile):
        read_file(str(tmp_path / "fifo"), 100, follow_links=True)
    with pytest.raises(NotRegularFile):
        read_file("/dev/zero", 100, follow_links=True)
    with pytest.raises(NotRegularFile):
        read_file(str(tmp_path), 100)
    with pytest.raises(TooLarge):
        read_file(str(f), 3)
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(50 << 20)  # sparse: refused by its size, not read
    with pytest.raises(TooLarge):
        load_json_file(str(big), limit_bytes=1 << 20)
