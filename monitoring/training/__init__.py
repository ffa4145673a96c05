"""Making models: data sets, validation, pipelines, evaluation, and the
training pipeline that registers a version and promotes it when it is better.
"""
