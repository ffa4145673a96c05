"""Data lifecycle: how long each kind of Vigil's data is kept, and the pruning that enforces it.

``policy`` decides what is due (pure functions over the settings and a time); ``prune`` applies
it to the store (``monitoring.store.retention``, ``monitoring.store.partitions``) and to the
Evidently report files (``report_files``).
"""
