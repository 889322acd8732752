"""The catalog: companies, sites, devices, channel -> series mapping and alarm rules.

``document`` is the JSON document and its validation, ``store`` the SQL store
(SQLite or PostgreSQL; edge), ``directory`` the immutable snapshot and the
read-through cache consumers use (pure apart from the injected loader).
"""
