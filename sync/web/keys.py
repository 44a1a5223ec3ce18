"""The console's key: where it comes from, and the keys derived from it.

The key is never kept in the state store (issue 13: a copy of the database, which auditors
may ask for, must not let anyone act as an operator). In order:

1. ``web.secret_key`` (production: ``EKINERJA_SYNC_WEB__SECRET_KEY``), at least 32 characters;
   in a config file only when the file is its owner's alone (``load_settings`` refuses it
   otherwise, as it refuses such a key file);
2. ``web.secret_key_file``: the file's first line; when the file does not exist it is made
   on first start, readable by its owner only (0600), with 32 random bytes in hex. A file
   others may read is refused;
3. neither: a random key for this process only (sessions end when it stops). Only on a
   loopback address: ``require_lasting_key`` refuses any other host.

Each use gets its own key, derived with HMAC-SHA256 from the key and the use's name, so a
value made for one use is worth nothing for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sync.settings import ConfigError, Settings, require_owner_only

__all__ = ["ConsoleKey", "console_key", "is_loopback", "require_lasting_key"]

_MIN_LENGTH = 32


@dataclass(frozen=True)
class ConsoleKey:
    """The key (never shown: not in the repr) and where it came from, in words."""

    value: bytes = field(repr=False)
    source: str
    lasting: bool = True

    def derive(self, purpose: str) -> bytes:
        return hmac.new(
            self.value, b"ekinerja-sync.web." + purpose.encode(), hashlib.sha256
        ).digest()

    @classmethod
    def for_tests(cls, value: str = "k" * 32) -> ConsoleKey:
        return cls(value.encode(), "tests")


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _from_file(path: Path) -> ConsoleKey:
    where = f"web.secret_key_file ({path})"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be created: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{where}: cannot be read: {why}") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{where}: is not a regular file")
    require_owner_only(path, "web.secret_key_file")
    value = text.splitlines()[0].strip() if text.strip() else ""
    if len(value) < _MIN_LENGTH:
        # The message never holds the value.
        raise ConfigError(f"{where}: the key has at least {_MIN_LENGTH} characters")
    return ConsoleKey(value.encode(), f"file {path}")


def console_key(settings: Settings) -> ConsoleKey:
    """The console's key from the settings (module docstring); ``ConfigError`` naming the key
    and the file when it cannot be used."""
    web = settings.web
    if web.secret_key is not None:
        return ConsoleKey(web.secret_key.get_secret_value().encode(), "web.secret_key")
    if web.secret_key_file:
        return _from_file(Path(web.secret_key_file).expanduser())
    return ConsoleKey(secrets.token_bytes(32), "made for this process only", lasting=False)


def require_lasting_key(key: ConsoleKey, host: str) -> None:
    """Refuse to serve beyond this machine with a key that is not configured."""
    if not key.lasting and not is_loopback(host):
        raise ConfigError(
            f"serving on {host} (web.host or --host) reaches beyond this machine: give "
            "the console a key first, "
            "in EKINERJA_SYNC_WEB__SECRET_KEY or in a file named by web.secret_key_file "
            "(made, readable by its owner only, on first start)"
        )
