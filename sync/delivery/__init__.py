"""Delivery: the outbox sent to e-Kinerja by claims and pages, one attempt at a time with its
retry policy, rate limit and circuit breaker, and each answer turned into state and ledger.

It names the target only through ``target.Target`` (the protocol it owns; ``bootstrap`` wires
e-Kinerja's client in). May import: ``state``, ``connectors`` (its errors and answers) and
the root helpers; never ``pipeline``, ``operations``, ``service``, ``cli`` or ``web``.
"""
