"""Names of the metrics stored in ``metric_windows``: the contract between the monitoring
pipeline that writes them, the watchdog that judges them and the dashboard that draws them."""

ACCURACY = "accuracy"
PRECISION = "precision"
RECALL = "recall"
F1 = "f1"
ROC_AUC = "roc_auc"
MAE = "mae"
RMSE = "rmse"
CLASSIFICATION_QUALITY = (ACCURACY, PRECISION, RECALL, F1, ROC_AUC)
REGRESSION_QUALITY = (MAE, RMSE)
QUALITY = CLASSIFICATION_QUALITY + REGRESSION_QUALITY
LOWER_IS_BETTER = frozenset({MAE, RMSE})
# CBPE's estimate of the classification metrics, before labels arrive (monitoring.metrics.estimated_performance);
# sample_count = the predictions of the window it was estimated on
ESTIMATED_QUALITY = tuple(f"estimated_{name}" for name in CLASSIFICATION_QUALITY)
ESTIMATED_ACCURACY = ESTIMATED_QUALITY[0]

# sample_count of a quality metric = the number of labelled predictions in the window
LATENCY_P50 = "latency_p50_ms"
LATENCY_P95 = "latency_p95_ms"
LATENCY_P99 = "latency_p99_ms"
ERROR_RATE = "error_rate"  # failed predictions / all predictions
THROUGHPUT = "throughput_rps"  # predictions per second over the window
REQUESTS = "requests"  # predictions in the window
CPU_PERCENT = "cpu_percent"  # of the serving process
MEMORY_MB = "memory_mb"  # resident memory of the serving process
DRIFT_SHARE = "drift_share"  # share of features whose drift test fired
SERVICE = (LATENCY_P50, LATENCY_P95, LATENCY_P99, ERROR_RATE, THROUGHPUT, REQUESTS)
PROCESS = (CPU_PERCENT, MEMORY_MB)

# drift rows about the model's outputs rather than an input feature (monitoring.metrics.prediction_drift):
# shown with the features, never counted in the share of drifted features
PREDICTION_CLASS = "prediction (class)"
PREDICTION_SCORE = "prediction (score)"
OUTPUT_DRIFT = (PREDICTION_CLASS, PREDICTION_SCORE)
