"""The MLflow model registry: versions, aliases, artifacts, and moving the
champion alias (promotion, rollback, the choice of rollback target). The only importer of MLflow.
"""
