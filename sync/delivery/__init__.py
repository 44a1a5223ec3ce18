"""Delivery: the outbox sent to e-Kinerja by claims and pages, one attempt at a time with its
retry policy, rate limit and circuit breaker, and each answer turned into state and ledger.

May import: ``state``, ``connectors`` (the target client) and the root helpers; never
``pipeline``, ``operations``, ``service``, ``cli`` or ``web``.
"""
