"""``python -m monitoring`` runs the ``vigil`` command line."""

from monitoring.cli import main

main()
