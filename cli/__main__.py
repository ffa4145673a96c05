"""``python -m cli`` runs the ``vigil`` command line."""

from cli.main import main

main()
