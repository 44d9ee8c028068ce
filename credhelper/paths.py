"""Where credhelper's files live, and which of them can be trusted.

Every location is computed here and nowhere else: the configuration, the cache directory and the
files in it, the runtime directory with the endpoint's token and record, `~/.aws/config` and
`~/.aws/credentials`. Profile names map to file names in a namespace of their own, so no profile
can share a file with another profile or with credhelper's own (`daemon.lock`, `endpoint.json`).
And one rule decides whether a file or directory credhelper reads to decide what to hand out can
be trusted (DESIGN section 11).

Stdlib only (os and stat, which the interpreter has loaded already): the credential-process hot
path uses it. (pathlib only inside the two functions for the AWS files, which it never calls.)
"""

import os
import stat

TYPE_CHECKING = False  # neither typing nor __future__: each would cost the hot path an import

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

# -- locations -----------------------------------------------------------------------------------


def config_path(explicit: "str | None", environ: "Mapping[str, str]") -> str:
    """`--config`, else `$CREDHELPER_CONFIG`, else `$XDG_CONFIG_HOME/credhelper/config.toml`."""
    if explicit:
        return os.path.expanduser(explicit)
    if environ.get("CREDHELPER_CONFIG"):
        return os.path.expanduser(environ["CREDHELPER_CONFIG"])
    base = _xdg(environ, "XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "credhelper", "config.toml")


def cache_dir_path(environ: "Mapping[str, str]") -> str:
    """`$CREDHELPER_CACHE_DIR`, else `$XDG_CACHE_HOME/credhelper`, else `~/.cache/credhelper`."""
    if environ.get("CREDHELPER_CACHE_DIR"):
        return os.path.expanduser(environ["CREDHELPER_CACHE_DIR"])
    base = _xdg(environ, "XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "credhelper")


CACHE_DIR_FIX = (
    "remove it so credhelper creates it 0700, or set CREDHELPER_CACHE_DIR to a directory of your own"
)


def cache_dir_setting(environ: "Mapping[str, str]") -> str:
    """The variable that chose `cache_dir_path(environ)`: what to change to move the cache."""
    if environ.get("CREDHELPER_CACHE_DIR"):
        return "CREDHELPER_CACHE_DIR"
    return "XDG_CACHE_HOME" if _xdg(environ, "XDG_CACHE_HOME") else "HOME"


def ignored_xdg(environ: "Mapping[str, str]", name: str) -> bool:
    """Whether XDG base directory variable `name` is set to a relative path, which `_xdg` ignores."""
    return bool(environ.get(name)) and not _xdg(environ, name)


def runtime_dir(environ: "Mapping[str, str]", cache_dir: str) -> str:
    """Where the endpoint's token and record live: `$XDG_RUNTIME_DIR/credhelper`, else the cache."""
    base = _xdg(environ, "XDG_RUNTIME_DIR")
    return os.path.join(base, "credhelper") if base else cache_dir


def _xdg(environ: "Mapping[str, str]", name: str) -> str:
    """An XDG base directory variable; a relative value is ignored, as the specification says
    (it would mean another place in every working directory)."""
    value = environ.get(name, "")
    return value if value.startswith("/") else ""


def token_path(environ: "Mapping[str, str]", cache_dir: str) -> str:
    return os.path.join(runtime_dir(environ, cache_dir), "token")


def endpoint_path(environ: "Mapping[str, str]", cache_dir: str) -> str:
    return os.path.join(runtime_dir(environ, cache_dir), "endpoint.json")


def container_token_dir(environ: "Mapping[str, str]", cache_dir: str) -> str:
    """The directory a container bind-mounts read-only at /run/credhelper: the token alone, in a
    file named `token` (`container_token_path`), never the record or the cache beside it. The
    directory, not the file: a restarted daemon renames a new token file into place."""
    return os.path.join(runtime_dir(environ, cache_dir), "containers")


CONTAINER_TOKEN_NAME = "token"


def container_token_path(environ: "Mapping[str, str]", cache_dir: str) -> str:
    return os.path.join(container_token_dir(environ, cache_dir), CONTAINER_TOKEN_NAME)


def daemon_lock_path(cache_dir: str) -> str:
    return os.path.join(cache_dir, "daemon.lock")


def daemon_pid_path(cache_dir: str) -> str:
    return os.path.join(cache_dir, "daemon.pid")


def target_lock_path(cache_dir: str, digest: str) -> str:
    """The lock one-shot writers of a target take (`digest`: of the target's resolved path)."""
    return os.path.join(cache_dir, f"target-{digest}.lock")


def expand_user_path(raw: str) -> str:
    """A configured target path with `~` and `$VARIABLES` expanded (absolute if written so)."""
    return os.path.expandvars(os.path.expanduser(raw))


def aws_config_path(environ: "Mapping[str, str]") -> "Path":
    """`$AWS_CONFIG_FILE`, else `~/.aws/config`: the file SDKs read profiles from."""
    from pathlib import Path  # not for the hot path, which never looks at the AWS files

    explicit = environ.get("AWS_CONFIG_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.path.expanduser("~")) / ".aws" / "config"


def shared_credentials_path(environ: "Mapping[str, str]") -> "Path":
    """`$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`: where source profiles' keys are."""
    from pathlib import Path  # not for the hot path, which never looks at the AWS files

    explicit = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.path.expanduser("~")) / ".aws" / "credentials"


# Names credhelper gives its own files in the cache and runtime directories (without the suffix).
OWN_STEMS = frozenset({"daemon", "endpoint", "token"})
OWN_PREFIXES = ("target-", "rotation-")
# What a profile keeps in the cache directory: credentials, MFA session, state, their locks and
# the ready answer of credential-process.
PROFILE_FILE_KINDS = frozenset({"json", "mfa.json", "state.json", "lock", "mfa.lock", "state.lock", "answer"})


def profile_stem(profile: str) -> str:
    """The part of a file name that stands for a profile. A name that holds a dot, or that
    credhelper's own files use, is escaped into `~...` (a character no profile name has), so
    `app` and `app.state`, or `daemon` and the daemon, never share a file."""
    folded = profile.casefold()  # `Daemon.lock` is `daemon.lock` on a case-insensitive file system
    if "." in profile or folded in OWN_STEMS or folded.startswith(OWN_PREFIXES):
        return "~" + profile.replace("%", "%25").replace(".", "%2E")
    return profile


def profile_file(cache_dir: str, profile: str, kind: str) -> str:
    """The file of `kind` (one of PROFILE_FILE_KINDS) that `profile` keeps in the cache directory."""
    if kind not in PROFILE_FILE_KINDS:
        raise ValueError(f"unknown kind of profile file: {kind}")
    return os.path.join(cache_dir, f"{profile_stem(profile)}.{kind}")


ROTATION_FILE_KINDS = frozenset({"json", "lock", "retired.json"})


def rotation_file(cache_dir: str, source: str, kind: str) -> str:
    """A rotation's file for one long-term key `source` (`keyring-NAME`, `profile-NAME`): its
    journal (`json`), its lock, and the keys it deactivated (`retired.json`)."""
    if kind not in ROTATION_FILE_KINDS:
        raise ValueError(f"unknown kind of rotation file: {kind}")
    # Folded: `Dev` and `dev` are one file on a case-insensitive file system, so they are one here
    # (two keyring entries differing in case share a rotation's journal and lock, never half of it).
    stem = source.casefold().replace("%", "%25").replace(".", "%2E").replace("/", "%2F")
    return os.path.join(cache_dir, f"rotation-{stem}.{kind}")


# -- whose files -----------------------------------------------------------------------------


def untrusted_reason(
    info: os.stat_result, allow_root: bool = False, path: "str | None" = None
) -> "str | None":
    """Why a file or directory with this status must not be trusted to decide what credhelper
    hands out, or None when it may be: it must be this user's own (or, where `allow_root`,
    root's), and nobody else may write to it: not others, not a group that has a member besides
    this user (OpenSSH's StrictModes rule; a user-private group is fine), not anyone an access
    control list names. Given its `path`, the way to it must be safe too (`untrusted_route`)."""
    uid = os.geteuid()
    if info.st_uid != uid and not (allow_root and info.st_uid == 0):
        return f"it belongs to uid {info.st_uid}, not to you (uid {uid})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IWOTH:
        return f"any user can write to it (mode {mode:o})"
    if mode & stat.S_IWGRP and not _group_is_private(info.st_gid, uid):
        return f"group {info.st_gid} can write to it and has other members (mode {mode:o})"
    if path is None:
        return None
    if _acl_lets_others_write(path, uid):
        return "an access control list lets others write to it (getfacl shows who)"
    return untrusted_route(path, frozenset({0, uid}))


ACL_USER, ACL_GROUP, ACL_MASK, ACL_WRITE = 0x02, 0x08, 0x10, 0x02


def _acl_lets_others_write(path: str, uid: int) -> bool:
    """Whether a POSIX access ACL names another user, or a group with other members, with write
    permission (the mode's group bits then show only the ACL's mask)."""
    try:
        raw = os.getxattr(path, "system.posix_acl_access")
    except OSError:  # none, or a file system without ACLs
        return False
    entries = [
        (
            int.from_bytes(raw[offset : offset + 2], "little"),
            int.from_bytes(raw[offset + 2 : offset + 4], "little"),
            int.from_bytes(raw[offset + 4 : offset + 8], "little"),
        )
        for offset in range(4, len(raw) - 7, 8)  # a 4-byte version, then 8-byte entries
    ]
    mask = next((permissions for tag, permissions, _ in entries if tag == ACL_MASK), ACL_WRITE)
    for tag, permissions, qualifier in entries:
        if not permissions & mask & ACL_WRITE:  # the mask bounds every named entry
            continue
        if tag == ACL_USER and qualifier != uid:
            return True
        if tag == ACL_GROUP and not _group_is_private(qualifier, uid):
            return True
    return False


def _group_is_private(gid: int, uid: int) -> bool:
    """Whether `uid` belongs to group `gid` and nobody else does (a group with no member at all is
    typically a setgid program's, not the user's: never private)."""
    import grp  # rare: only for a group-writable file
    import pwd

    try:
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    if any(member != user for member in group.gr_mem):
        return False
    primary = [entry.pw_uid for entry in pwd.getpwall() if entry.pw_gid == gid]
    return all(other == uid for other in primary) and (uid in primary or user in group.gr_mem)


def is_trusted(path: str, allow_root: bool = False) -> bool:
    """Whether `path` exists and passes the rule, and so does the way to it (`untrusted_route`)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return untrusted_reason(info, allow_root, path) is None


def untrusted_route(path: str, owners: "frozenset[int]") -> "str | None":
    """Why the way to `path` cannot be trusted, or None: a symlink on it (followed as the kernel
    would) owned by someone not in `owners` (whoever owns a link decides where it leads), or a
    directory above the end that someone else could swap an entry of (owned by another user than
    this one or root, or writable by others without the sticky bit)."""
    uid = os.geteuid()
    for step, where, owner in _route(path):
        if step == "directory" and (reason := _swappable(where, uid)) is not None:
            return f"{where}: {reason}"
        if step == "symlink" and owner not in owners:
            return f"{where} is a symlink owned by another user (uid {owner})"
    return None


def resolve_route(path: str) -> "tuple[str | None, list[tuple[str, int]]]":
    """Where `path` leads, walked as the kernel walks it (None for a loop of links), and each
    symlink followed on the way with its owner: the links checked are the ones that led there,
    where os.path.realpath and a separate check could each see another state of a changing path."""
    links: list[tuple[str, int]] = []
    for step, where, owner in _route(path):
        if step == "symlink":
            links.append((where, owner))
        elif step == "end":
            return where, links
    return None, links


def _route(path: str) -> "Iterator[tuple[str, str, int]]":
    """The walk to `path` (a symlink then ..), step by step: ("directory", d, -1) before a step out
    of d, ("symlink", link, its owner) for each link followed, and last ("end", where the walk
    leads, -1); no end after a loop of links."""
    # Not os.path.abspath: it drops `link/..` as text, where the kernel follows the link first.
    pending = [part for part in os.path.join(os.getcwd(), path).split("/") if part and part != "."]
    current = "/"
    for _ in range(4096):  # a loop of links ends the walk; opening the path then says ELOOP
        if not pending:
            yield "end", current, -1
            return
        yield "directory", current, -1
        part = pending.pop(0)
        if part == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
        except OSError:  # nothing there (yet) to follow
            # Joined as text, not normalised: a `..` after it must fail as the kernel fails it
            # (ENOENT), not skip links and directories further on.
            yield "end", os.path.join(candidate, *pending), -1
            return
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        try:
            link = os.readlink(candidate)
        except OSError:  # no longer a symlink: the path changed since lstat; look at it again
            pending.insert(0, part)
            continue
        yield "symlink", candidate, info.st_uid
        if link.startswith("/"):
            current = "/"
        pending[:0] = [part for part in link.split("/") if part]


def swappable_way_for(path: str, uid: int) -> "str | None":
    """For root writing a file of user `uid`: why a directory on the way to `path` (every one the
    walk passes through, those holding symlinks included) lets someone other than root and that
    user swap an entry, or None. Stricter than the trust rule: a sticky directory such as /tmp is
    no exception, for whoever made an entry there owns it and decides what it holds."""
    for step, where, _ in _route(path):
        if step == "directory" and (reason := _swappable(where, uid, sticky_exempts=False)) is not None:
            return f"{where}: {reason}"
    return None


def _swappable(directory: str, uid: int, sticky_exempts: bool = True) -> "str | None":
    try:
        info = os.stat(directory)
    except OSError:
        return None
    if info.st_uid not in (0, uid):
        return f"a directory of uid {info.st_uid}, who could swap what it holds"
    if info.st_mode & stat.S_ISVTX and sticky_exempts:
        return None
    if info.st_mode & stat.S_IWOTH or (
        info.st_mode & stat.S_IWGRP and not _group_is_private(info.st_gid, uid)
    ):
        sticky = " without the sticky bit" if sticky_exempts else ""
        return f"a directory others may write to (mode {stat.S_IMODE(info.st_mode):o}){sticky}"
    if _acl_lets_others_write(directory, uid):
        return "a directory an access control list lets others write to"
    return None
