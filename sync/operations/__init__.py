"""The use cases the CLI and the console share: replay, discard and reset (``actions``, with
the guard of a closed period), the changes of a closed period made by two operators
(``changes``), where each period stands and closing one (``period_states``), reconcile,
mapping diff, ledger export, the deadline view and the NPSN checks.

May import: ``pipeline``, ``delivery``, ``state``, ``mappings``, ``connectors`` and the root
helpers; never ``service``, ``cli`` or ``web`` (they import it).
"""
