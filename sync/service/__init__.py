"""The service that runs unattended: the daemon's jobs and clean stop, ``/healthz`` and
``/metrics``, the calendar of the periods it syncs, and its worker processes (``--workers``).

May import: ``pipeline``, ``delivery``, ``operations``, ``state``, ``mappings`` and the root
helpers, and ``web`` to serve the console inside the daemon; never ``cli``.
"""
