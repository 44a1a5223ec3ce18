"""The state store's alembic migrations, shipped inside the package.

Operators run them with ``ekinerja-sync db upgrade``; the code that runs them is
``state.schema`` (``alembic.ini`` is not needed: the config is made in code). Developers add
one with ``python -m state.migrations revision --autogenerate -m "what changed"`` (see
``__main__``) after changing a model; the drift test (``tests/integration/test_migrations.py``)
fails until they do.
"""
