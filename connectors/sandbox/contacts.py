"""Contacts for the sandbox's schools, as a dinas would keep them: a CSV file with the header
``npsn,email,webhook_url`` that ``ekinerja-sync schools contacts import`` reads. Every school
gets its operator's address, every other school its kepala sekolah's as well; the domain is
reserved for examples (RFC 2606), so nothing can leave for a real mailbox."""

from __future__ import annotations

import csv
import io

from connectors.sandbox.world import SandboxWorld

__all__ = ["DOMAIN", "contacts_csv", "school_addresses"]

DOMAIN = "sekolah.example"


def school_addresses(npsn: str, index: int) -> list[str]:
    """The addresses of the sandbox school ``npsn`` (the ``index``-th in the world)."""
    tag = npsn.lower()
    found = [f"operator.{tag}@{DOMAIN}"]
    if index % 2 == 0:
        found.append(f"kepsek.{tag}@{DOMAIN}")
    return found


def contacts_csv(world: SandboxWorld) -> str:
    """The contacts file of every school of ``world``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["npsn", "email", "webhook_url"])
    for index, school in enumerate(world.schools):
        writer.writerow([school["npsn"], ";".join(school_addresses(school["npsn"], index)), ""])
    return out.getvalue()
