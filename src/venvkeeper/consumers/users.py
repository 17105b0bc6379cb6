"""The users of a root, from its own ``/etc/passwd`` and ``/etc/group`` (never NSS: the
root may be another system's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from venvkeeper.consumers.rootfs import RootFS


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    group: Optional[str] = None


class Users:
    def __init__(self, by_name: dict[str, User]) -> None:
        self._by_name = by_name
        self._by_uid = {u.uid: u for u in reversed(list(by_name.values()))}

    @classmethod
    def read(cls, fs: RootFS) -> Users:
        groups: dict[int, str] = {}
        try:
            for line in fs.read("/etc/group").decode("utf-8", "replace").splitlines():
                parts = line.split(":")
                if len(parts) >= 3 and parts[2].isdigit():
                    groups.setdefault(int(parts[2]), parts[0])
        except OSError:
            pass
        users: dict[str, User] = {}
        try:
            text = fs.read("/etc/passwd").decode("utf-8", "replace")
        except OSError:
            return cls(users)
        for line in text.splitlines():
            parts = line.split(":")
            if len(parts) < 7 or not parts[2].isdigit() or not parts[3].isdigit():
                continue
            gid = int(parts[3])
            users.setdefault(
                parts[0],
                User(
                    parts[0], int(parts[2]), gid, parts[5], parts[6] or "/bin/sh", groups.get(gid)
                ),
            )
        return cls(users)

    def all(self) -> list[User]:
        return list(self._by_name.values())

    def by_name(self, name: str) -> Optional[User]:
        return self._by_name.get(name)

    def by_uid(self, uid: int) -> Optional[User]:
        return self._by_uid.get(uid)

    def home(self, name: Optional[str]) -> Optional[str]:
        u = self._by_name.get(name or "")
        return u.home if u is not None else None
