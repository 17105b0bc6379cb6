"""The mount table: which filesystems a default scan walks and which it skips."""

from __future__ import annotations

from dataclasses import dataclass

from venvkeeper.host import fsutil

#: Kernel and virtual filesystems: nothing a venv can live on.
PSEUDO_FS = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
        "tracefs", "pstore", "bpf", "mqueue", "hugetlbfs", "configfs", "fusectl",
        "binfmt_misc", "autofs", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs", "nfsd",
        "fuse.gvfsd-fuse", "fuse.portal", "ramfs", "sunrpc", "usbfs", "xenfs", "zram",
    }
)  # fmt: skip

#: Filesystems whose files live on another host: walked only with --include-network.
NETWORK_FS = frozenset(
    {
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "9p", "lustre",
        "gpfs", "glusterfs", "fuse.glusterfs", "fuse.sshfs", "sshfs", "fuse.rclone",
        "davfs", "fuse.davfs2", "fuse.s3fs", "beegfs", "orangefs", "ocfs2", "gfs2",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Mount:
    """One line of the mount table."""

    mountpoint: str
    fstype: str

    @property
    def is_pseudo(self) -> bool:
        return self.fstype in PSEUDO_FS

    @property
    def is_network(self) -> bool:
        return self.fstype in NETWORK_FS


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 3 < len(raw) + 0 and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse ``/proc/PID/mountinfo``; malformed lines are ignored."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        lf = left.split(" ")
        rf = right.split(" ")
        if len(lf) < 5 or not rf:
            continue
        mounts.append(Mount(_unescape(lf[4]), rf[0]))
    return mounts


def read_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    """The mount table, or [] when it cannot be read (then nothing is skipped by type)."""
    try:
        text, _ = fsutil.read_text(mountinfo, limit=8 << 20)
    except OSError:
        return []
    return parse_mountinfo(text)
