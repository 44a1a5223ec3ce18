"""What a school is sent: its action list as a snapshot (kept with the message in the outbox),
and that snapshot as an e-mail (plain text, Bahasa Indonesia) or as webhook JSON.

A message holds only what the school already holds: its own teachers' names and NIPs, what
to do in words, since when, and the deadline. No reason text from e-Kinerja, no failure ID,
no link into the dinas's systems, no secret. The days left are counted on the day it is sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from state.canonical import canonical_json
from sync.operations.school_actions import (
    WIB,
    SchoolActions,
    date_words,
    days_left_words,
)
from sync.who_acts import ACTOR_LABELS, ACTOR_ORDER, Actor

__all__ = ["Outgoing", "email_message", "snapshot", "webhook_body"]

# The snapshot's format, for a receiver that reads the webhook's JSON.
FORMAT = "ekinerja-sync.school-actions/1"


def snapshot(school: SchoolActions, kind: str, stage: int | None) -> dict[str, Any]:
    """The list as the message tells it (kept in the outbox: a resend says the same)."""
    return {
        "format": FORMAT,
        "kind": kind,
        "period": school.period,
        "npsn": school.npsn,
        "school_name": school.school_name,
        "deadline": school.deadline.isoformat(),
        "reminder_days_before": stage if kind == "reminder" else None,
        "content_hash": school.content_hash,
        "items": [
            {
                "who": item.actor.value,
                "nip": item.nip,
                "name": item.name,
                "kind": item.kind,
                "code": item.code,
                "todo": item.todo,
                "since": item.since.astimezone(WIB).date().isoformat(),
            }
            for item in school.items
        ],
    }


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message on its way: its snapshot, where it goes, and the day it is sent."""

    notice_id: int
    channel: str
    message_id: str
    snapshot: dict[str, Any]
    today: dt.date
    recipients: tuple[str, ...] = ()  # e-mail
    url: str | None = None  # webhook

    @property
    def days_left(self) -> int:
        return (dt.date.fromisoformat(self.snapshot["deadline"]) - self.today).days


def _subject(out: Outgoing) -> str:
    snap = out.snapshot
    school = snap["school_name"] or f"NPSN {snap['npsn']}"
    n = len(snap["items"])
    if snap["kind"] == "all_clear":
        return f"[e-Kinerja {snap['period']}] {school}: semua beres"
    if snap["kind"] == "reminder":
        return (
            f"[e-Kinerja {snap['period']}] Pengingat: {n} data {school} masih menunggu, batas "
            f"penilaian {days_left_words(out.days_left)}"
        )
    return (
        f"[e-Kinerja {snap['period']}] {school}: {n} data menunggu tindakan sekolah "
        f"(batas penilaian {days_left_words(out.days_left)})"
    )


def _text(out: Outgoing) -> str:
    snap = out.snapshot
    school = snap["school_name"] or "sekolah"
    deadline = date_words(dt.date.fromisoformat(snap["deadline"]))
    lines = [
        f"Yth. Kepala Sekolah dan Operator {school} (NPSN {snap['npsn']}),",
        "",
    ]
    if snap["kind"] == "all_clear":
        lines += [
            f"Semua data kinerja periode {snap['period']} yang sebelumnya menunggu tindakan "
            "sekolah sudah beres: tidak ada lagi yang perlu diperbaiki di sekolah. Terima kasih.",
            "",
            "Bila ada perubahan baru, sekolah akan diberi tahu lagi.",
        ]
    else:
        if snap["kind"] == "reminder":
            lines += ["PENGINGAT: daftar ini belum berubah sejak pesan sebelumnya.", ""]
        lines += [
            f"Data kinerja berikut untuk periode {snap['period']} belum dapat dikirim ke "
            "e-Kinerja BKN karena menunggu tindakan di sekolah.",
            f"Batas penilaian: {deadline} ({days_left_words(out.days_left)}). Penilaian yang "
            "belum sampai di e-Kinerja sampai batas itu dapat memengaruhi tunjangan.",
        ]
        for actor in ACTOR_ORDER:
            items = [i for i in snap["items"] if i["who"] == actor.value]
            if not items:
                continue
            lines += ["", f"== {ACTOR_LABELS[Actor(actor)]} ({len(items)}) =="]
            for n, item in enumerate(items, 1):
                since = date_words(dt.date.fromisoformat(item["since"]))
                lines += [
                    f"{n}. {item['name'] or '-'} (NIP {item['nip'] or '-'})",
                    f"   {item['todo']}",
                    f"   Menunggu sejak {since}.",
                ]
        lines += [
            "",
            "Perbaikan di PMM / Dapodik terbaca pada sinkronisasi berikutnya. Pesan baru dikirim "
            "hanya bila daftar ini berubah (dan sebagai pengingat menjelang batas penilaian).",
        ]
    lines += ["", "Dinas Pendidikan (dikirim otomatis oleh ekinerja-sync)", ""]
    return "\n".join(lines)


def email_message(out: Outgoing, sender: str, now: dt.datetime) -> EmailMessage:
    """The e-mail of ``out``: plain text, UTF-8, its ``Message-ID`` the outbox's."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(out.recipients)
    message["Subject"] = _subject(out)
    message["Date"] = format_datetime(now.astimezone(WIB))
    message["Message-ID"] = out.message_id
    message["X-Ekinerja-Sync-Content"] = out.snapshot["content_hash"]
    message.set_content(_text(out))
    return message


def webhook_body(out: Outgoing) -> bytes:
    """The webhook's JSON: the snapshot, its message id, and the days left today."""
    payload = {
        **out.snapshot,
        "message_id": out.message_id,
        "days_left": out.days_left,
        "subject": _subject(out),
    }
    return canonical_json(payload).encode("utf-8")
