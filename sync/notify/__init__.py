"""Telling each school what only it can fix: its action list (``sync.operations.
school_actions``) sent by e-mail or webhook through an outbox, once per change.

- ``plan``: whether a school is told, and what (pure);
- ``message``: the list as an e-mail (Bahasa Indonesia) and as webhook JSON;
- ``channels``: the ``Channel`` protocol and its adapters over ``connectors.mail`` and
  ``connectors.webhook``;
- ``notifier``: ``SchoolNotifier``: plans into the outbox (``state.notices``) and sends;
- ``build``: the notifier from the settings; ``told``: who was told what, and what changed
  since (``status``, the console); ``metrics``: messages sent and failed per channel.

May import ``state``, ``mappings``, ``connectors``, ``sync.operations`` and the root modules;
never ``sync.cli``, ``sync.web`` or ``sync.service`` (they use it).
"""

from __future__ import annotations
