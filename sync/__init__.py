"""The service around the domain: how a record travels from PMM to e-Kinerja, and who drives it.

Rooms, in the order a record meets them: ``pipeline`` (pull, validate, plan, outbox),
``delivery`` (send, retry, record answers), ``operations`` (what operators and auditors do),
``service`` (the daemon), ``cli`` and ``web`` (the two front doors). At the root: what every
room shares: ``bootstrap`` (the one assembly point), ``settings``, ``logs``, ``hashing``,
``advice``, ``secrets_guard`` and ``version``.
"""
