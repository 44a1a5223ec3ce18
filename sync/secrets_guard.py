"""Does a free text look like it holds a secret? For text an operator types that would be
kept for good (a discard's reason goes into the append-only ledger, which nobody can clean).

``secret_problem(text)`` answers with what it saw, in words that never repeat the text, or
None. It looks for: a password or key given as ``name=value`` / ``name: value`` (password,
passwd, pwd, kata sandi, secret, token, api key, client secret, access/refresh token,
private key, credential...), an ``Authorization`` scheme (``Bearer``, ``Basic``), a JWT
(``eyJ...``, three dot-separated base64url parts, or its header alone), a PEM private key,
well-known key prefixes (AWS ``AKIA``, GitHub ``ghp_``, Slack ``xox.-``, Google ``AIza``),
credentials in a URL (``scheme://user:password@host``), and a long random-looking run of
letters and digits (32+ characters mixing both, as keys and tokens are). A NIP, an NPSN or
a date is none of these.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["secret_problem"]

_NAMES = (
    r"pass(?:word|wd|phrase)?|pwd|kata[\s_-]?sandi|sandi|secret|client[\s_-]?secret"
    r"|api[\s_-]?key|apikey|access[\s_-]?key|private[\s_-]?key|secret[\s_-]?key"
    r"|(?:access|refresh|id|auth|bearer|session)?[\s_-]?token|credentials?|otp|pin"
)
_ASSIGNED = re.compile(rf"(?i)\b(?:{_NAMES})\b\s*[:=]\s*\S")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_ASSIGNED, "a password, key or token given as name=value"),
    (
        re.compile(r"(?i)\b(?:bearer\s+[a-z0-9._~+/=-]{3,}|basic\s+[a-z0-9+/]{8,}={0,2}(?!\w))"),
        "an Authorization header",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{6,}"), "a JSON Web Token (eyJ...)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(
            r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_-]{30,})"
        ),
        "an API key",
    ),
    (re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@"), "a password in an address"),
)
_RUN = re.compile(r"[A-Za-z0-9+/_=-]{32,}")


def _random_looking(run: str) -> bool:
    letters = sum(c.isalpha() for c in run)
    digits = sum(c.isdigit() for c in run)
    return letters >= 8 and digits >= 4


def secret_problem(text: str) -> str | None:
    """What in ``text`` looks like a secret (in words, without the text), or None."""
    # Full-width and other compatibility forms read as their plain letters (ｐａｓｓ＝...).
    plain = unicodedata.normalize("NFKC", text)
    for pattern, what in _PATTERNS:
        if pattern.search(plain):
            return what
    if any(_random_looking(m[0]) for m in _RUN.finditer(plain)):
        return "a long random-looking string (a key or a token)"
    return None
