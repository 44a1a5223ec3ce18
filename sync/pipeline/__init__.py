"""The pipeline of a run: the engine, given its collaborators, has the ingester pull a
period and validate every record, the planner plan them against the store, the outbox writer
write the plan, and the deliverer send it; it writes an operator's replay to the ledger
(audit) and keeps the source's period listing.

May import: ``mappings``, ``state``, ``connectors`` (the source client), ``sync.delivery``
and the root helpers; never ``operations``, ``service``, ``cli`` or ``web``.
"""
