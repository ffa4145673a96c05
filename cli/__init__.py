"""The ``vigil`` launcher, an adapter beside ``api``, ``app`` and ``dags``: the command line,
``vigil demo`` with its process supervisor, the traffic simulator and the demo seeder.

It imports ``monitoring``; ``monitoring`` never imports it.
"""
