"""The pipeline of a run: the engine pulls a period, validates and plans every record, writes
the outbox and the ledger's operator entries (audit), and keeps the source's period listing.

May import: ``mappings``, ``state``, ``connectors`` (the source client), ``sync.delivery``
and the root helpers; never ``operations``, ``service``, ``cli`` or ``web``.
"""
