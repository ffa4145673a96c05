"""Answering predictions: the champion held in memory and hot-swapped, input
checks, the compiled fast path, the prediction log and its shipper process, batch scoring.
"""
