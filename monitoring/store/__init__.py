"""Vigil's own store: engines, tables, migrations and every query and write.

The only package that imports SQLAlchemy. Callers get plain values, DataFrames or ORM rows
inside a ``session_scope``; the PostgreSQL/SQLite differences stay in here.
"""
