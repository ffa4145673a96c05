"""What the production record means: monitoring windows (quality, latency,
throughput), feature drift, the Evidently report, reference data, process metrics.
"""
