"""The watchdog: judge the champion of each model and roll a bad one back to the last known-good.

``decisions`` holds the pure rules (sequential test, thresholds, guard rails, attribution);
``service`` reads the evidence from the store, applies the rules and acts in one locked transaction.
"""
