"""Which logged predictions were served: every row but a shadow's.

A shadow release's challenger scores requests the champion answered (``role='shadow'``, paired
with the champion's row by ``paired_id``); nobody received those answers. The service metrics,
quality, drift and incidents of a version count only what it served, so their queries filter with
``SERVED``. A shadow's rows are read by the release judge, which pairs them with the champion's
labels itself.
"""

from __future__ import annotations

from monitoring.store.tables import Prediction

SHADOW_ROLE = "shadow"
SERVED = Prediction.role != SHADOW_ROLE
