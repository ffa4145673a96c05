"""Vigil's core library: models, metrics, drift, decisions and the stores behind them.

`api`, `app`, `dags` and the CLI import this package; it imports none of them.
Nothing here connects to anything at import time.
"""

__version__ = "0.1.0"
