"""monitoring.metrics.drift against Evidently itself: same methods, same verdicts, close scores.

The comparisons with Evidently are marked slow: importing Evidently alone takes several seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitoring.metrics.drift import (
    CATEGORICAL,
    NUMERICAL,
    FeatureDriftConfig,
    compute_drift,
    default_method,
)

NUMERIC = ["normal", "skewed", "integers", "binary", "three_values", "with_nans"]
CATEGORIES = ["colour", "yes_no", "with_missing"]


def make_frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    """Features of every shape the default tests treat differently; `shift` moves all of them."""
    rng = np.random.default_rng(seed)
    colour_weights = np.array([5, 4, 3, 2, 1, 1 + 6 * shift])
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1, rows),
            "skewed": rng.exponential(1 + shift, rows),
            "integers": rng.integers(0, 50 + int(20 * shift), rows),
            "binary": (rng.random(rows) < 0.3 + 0.2 * shift).astype(int),
            "three_values": rng.choice(
                [1.0, 2.0, 3.0], rows, p=[0.5 - 0.2 * shift, 0.3, 0.2 + 0.2 * shift]
            ),
            "with_nans": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(shift, 1, rows)),
            "colour": rng.choice(list("abcdef"), rows, p=colour_weights / colour_weights.sum()),
            "yes_no": rng.choice(["yes", "no"], rows, p=[0.5 + 0.2 * shift, 0.5 - 0.2 * shift]),
            "with_missing": pd.Series(
                rng.choice(
                    ["u", "v", "w", None], rows, p=[0.3, 0.3, 0.3 - 0.1 * shift, 0.1 + 0.1 * shift]
                ),
                dtype=object,
            ),
        }
    )


HALF = 0.5  # the dataset drift share these tests use (Evidently's default)
SMALL_SAMPLE_METHODS = ["ks", "ks", "ks", "z", "chisquare", "ks", "chisquare", "z", "chisquare"]
LARGE_SAMPLE_METHODS = (
    ["wasserstein"] * 3 + ["jensenshannon"] * 2 + ["wasserstein"] + ["jensenshannon"] * 3
)


@pytest.fixture(scope="module")
def evidently_report():
    from monitoring.metrics import evidently_report

    return evidently_report


def assert_same_as_evidently(evidently_report, reference, current, overrides=None):
    ours = compute_drift(reference, current, NUMERIC, CATEGORIES, overrides, drift_share=HALF)
    theirs = evidently_report.evidently_verdicts(reference, current, NUMERIC, CATEGORIES, overrides)
    assert [f.feature for f in ours.features] == NUMERIC + CATEGORIES
    for feature in ours.features:
        method, score, drifted = theirs[feature.feature]
        assert (feature.feature, feature.method, feature.drifted) == (
            feature.feature,
            method,
            drifted,
        )
        assert feature.score == pytest.approx(score, rel=1e-6, abs=1e-12), feature.feature
    evidently_share = sum(drifted for _, _, drifted in theirs.values()) / len(theirs)
    assert ours.share_drifted == pytest.approx(evidently_share)
    assert ours.dataset_drifted == (evidently_share >= HALF)
    return ours


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reference_rows", "current_rows", "shift", "expected_methods"),
    [
        (300, 400, 0.0, SMALL_SAMPLE_METHODS),
        (300, 400, 0.5, SMALL_SAMPLE_METHODS),
        # a current sample above 10000 rows: scipy's asymptotic KS p-value
        (800, 12000, 0.1, SMALL_SAMPLE_METHODS),
        # just above 1000 rows, but not once missing values are dropped
        (
            1001,
            700,
            0.0,
            LARGE_SAMPLE_METHODS[:5] + ["ks"] + LARGE_SAMPLE_METHODS[6:8] + ["chisquare"],
        ),
        (3000, 4000, 0.5, LARGE_SAMPLE_METHODS),
    ],
)
def test_methods_verdicts_and_scores_equal_evidentlys(
    evidently_report, reference_rows, current_rows, shift, expected_methods
):
    result = assert_same_as_evidently(
        evidently_report,
        make_frame(reference_rows, 0.0, seed=1),
        make_frame(current_rows, shift, seed=2),
    )
    assert [f.method for f in result.features] == expected_methods
    if shift == 0.0:
        assert not result.dataset_drifted
        assert result.share_drifted <= 2 / 9
    elif shift >= 0.5:
        assert result.dataset_drifted
        assert len(result.drifted_features) >= 5


@pytest.mark.slow
def test_overrides_equal_evidentlys_with_the_same_per_column_settings(evidently_report):
    overrides = {
        "normal": FeatureDriftConfig(method="ks"),
        "skewed": FeatureDriftConfig(method="jensenshannon"),  # binned by Sturges' rule
        "integers": FeatureDriftConfig(method="jensenshannon", threshold=0.05),
        "three_values": FeatureDriftConfig(method="wasserstein"),
        "with_nans": FeatureDriftConfig(threshold=0.2),
        "colour": FeatureDriftConfig(method="chisquare"),
        "yes_no": FeatureDriftConfig(method="z", threshold=0.01),
    }
    result = assert_same_as_evidently(
        evidently_report, make_frame(3000, 0.0, seed=1), make_frame(2000, 0.2, seed=2), overrides
    )
    by_name = {f.feature: f for f in result.features}
    assert by_name["integers"].threshold == 0.05
    assert by_name["with_nans"].method == "wasserstein"
    assert by_name["with_nans"].threshold == 0.2
    assert by_name["binary"].threshold == 0.1


@pytest.mark.parametrize(
    ("reference_rows", "current_rows", "values"),
    [
        (1001, 1, "continuous"),
        (1500, 7, "continuous"),
        (2003, 4999, "continuous"),
        (1200, 900, "ties"),
    ],
)
def test_wasserstein_score_is_scipys(reference_rows, current_rows, values):
    rng = np.random.default_rng(reference_rows + current_rows)
    if values == "ties":
        reference = pd.DataFrame({"x": rng.integers(0, 12, reference_rows).astype(float)})
        current = pd.DataFrame({"x": rng.integers(2, 14, current_rows).astype(float)})
    else:
        reference = pd.DataFrame({"x": rng.normal(0, 2, reference_rows)})
        current = pd.DataFrame({"x": rng.normal(0.3, 2, current_rows)})
    (feature,) = compute_drift(reference, current, ["x"], [], drift_share=HALF).features
    expected = stats.wasserstein_distance(reference.x, current.x) / np.std(reference.x)
    assert feature.method == "wasserstein"
    assert feature.score == pytest.approx(expected, rel=1e-9)


samples = st.lists(
    st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6)), min_size=1, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(reference=samples, current=samples)
def test_wasserstein_score_is_scipys_on_any_sample(reference, current):
    (feature,) = compute_drift(
        pd.DataFrame({"x": reference}),
        pd.DataFrame({"x": current}),
        ["x"],
        [],
        {"x": FeatureDriftConfig(method="wasserstein")},
        drift_share=HALF,
    ).features
    expected = stats.wasserstein_distance(reference, current) / max(np.std(reference), 0.001)
    assert feature.score == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_ks_p_value_on_large_samples_is_scipys():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 20_000).round(2)})  # with ties
    current = pd.DataFrame({"x": rng.normal(0.02, 1, 15_000).round(2)})
    (feature,) = compute_drift(
        reference, current, ["x"], [], {"x": FeatureDriftConfig(method="ks")}, drift_share=HALF
    ).features
    assert feature.score == pytest.approx(stats.ks_2samp(reference.x, current.x).pvalue, rel=1e-9)
    assert 0.001 < feature.score < 0.99  # neither end, where any p-value would pass


def test_a_threshold_override_changes_the_verdict():
    reference, current = make_frame(3000, 0.0, seed=1), make_frame(3000, 0.2, seed=2)
    default = compute_drift(reference, current, ["normal"], [], drift_share=HALF)
    assert default.features[0].drifted
    lenient = compute_drift(
        reference, current, ["normal"], [], {"normal": FeatureDriftConfig(threshold=0.5)},
        drift_share=HALF,
    )
    assert lenient.features[0].score == default.features[0].score
    assert not lenient.features[0].drifted


def test_missing_and_infinite_values_are_dropped_per_column():
    reference = pd.DataFrame(
        {"x": [1.0, 2.0, np.nan, 3.0, np.inf, 4.0, 5.0, 6.0], "c": list("aabbccd") + [None]}
    )
    current = pd.DataFrame(
        {"x": [np.nan, 1.5, 2.5, -np.inf, 3.5, 9.0], "c": ["a", None, "b", "b", np.nan, "e"]}
    )
    result = compute_drift(reference, current, ["x"], ["c"], drift_share=HALF)
    x, c = result.features
    assert (x.reference_size, x.current_size) == (6, 4)
    assert (c.reference_size, c.current_size) == (7, 4)
    assert (x.method, c.method) == ("ks", "chisquare")


def test_a_category_new_in_current_drifts_with_chi_square():
    reference = pd.DataFrame({"c": ["a", "b"] * 100})
    current = pd.DataFrame({"c": ["a", "b"] * 99 + ["new", "new"]})
    (feature,) = compute_drift(reference, current, [], ["c"], drift_share=HALF).features
    assert (feature.method, feature.score, feature.drifted) == ("chisquare", 0.0, True)


def test_dataset_drifts_when_the_share_of_drifted_features_reaches_drift_share():
    reference = pd.DataFrame({"a": np.arange(500.0), "b": np.arange(500.0)})
    current = pd.DataFrame({"a": np.arange(500.0) + 400, "b": np.arange(500.0)})
    half = compute_drift(reference, current, ["a", "b"], [], drift_share=HALF)
    assert half.drifted_features == ["a"]
    assert half.share_drifted == 0.5
    assert half.dataset_drifted
    assert not compute_drift(reference, current, ["a", "b"], [], drift_share=0.6).dataset_drifted


@pytest.mark.parametrize(
    ("kind", "reference_size", "distinct", "expected"),
    [
        (NUMERICAL, 1000, 6, "ks"),
        (NUMERICAL, 1000, 5, "chisquare"),
        (NUMERICAL, 1000, 3, "chisquare"),
        (NUMERICAL, 1000, 2, "z"),
        (NUMERICAL, 1001, 6, "wasserstein"),
        (NUMERICAL, 1001, 5, "jensenshannon"),
        (CATEGORICAL, 1000, 50, "chisquare"),
        (CATEGORICAL, 1000, 2, "z"),
        (CATEGORICAL, 1001, 2, "jensenshannon"),
    ],
)
def test_default_method_follows_evidentlys_rule(kind, reference_size, distinct, expected):
    assert default_method(kind, reference_size, distinct) == expected


def with_arguments(**arguments):
    return lambda reference, current: (reference, current, arguments)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r, c: (r.drop(columns=["normal"]), c, {}), "reference data lacks feature columns"),
        (lambda r, c: (r, c.drop(columns=["colour"]), {}), "current data lacks feature columns"),
        (lambda r, c: (r.iloc[:0], c, {}), "reference data has no rows"),
        (lambda r, c: (r, c.iloc[:0], {}), "current data has no rows"),
        (
            lambda r, c: (r.assign(normal=np.nan), c, {}),
            "'normal' has no finite values in the reference",
        ),
        (
            lambda r, c: (r, c.assign(colour=None), {}),
            "'colour' has no non-missing values in the current",
        ),
        (
            lambda r, c: (r, c.assign(normal="x"), {}),
            "numerical feature 'normal' has non-numeric current",
        ),
        (lambda r, c: (r, pd.concat([c, c.normal], axis=1), {}), "more than one column named"),
        (with_arguments(numerical=[], categorical=[]), "no features to compare"),
        (with_arguments(categorical=["colour", "normal"]), "listed more than once: \\['normal'\\]"),
        (
            with_arguments(overrides={"nope": FeatureDriftConfig()}),
            "'nope', which is not a feature",
        ),
        (
            with_arguments(overrides={"colour": FeatureDriftConfig(method="ks")}),
            "'ks' does not apply to categorical feature 'colour'",
        ),
        (with_arguments(drift_share=0), "drift_share must be in"),
    ],
)
def test_bad_input_is_a_clear_value_error(change, message):
    reference, current, arguments = change(make_frame(50, 0.0, seed=1), make_frame(50, 0.0, seed=2))
    arguments = {"numerical": ["normal"], "categorical": ["colour"], "drift_share": HALF, **arguments}
    with pytest.raises(ValueError, match=message):
        compute_drift(reference, current, **arguments)


def test_feature_lists_must_not_be_strings():
    frame = make_frame(50, 0.0, seed=1)
    with pytest.raises(TypeError, match="list of column names"):
        compute_drift(frame, frame, "normal", [], drift_share=HALF)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"method": "psi"}, "unknown drift method 'psi'"),
        ({"threshold": 0}, "positive number"),
        ({"threshold": math.nan}, "positive number"),
    ],
)
def test_bad_override_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        FeatureDriftConfig(**config)


@pytest.mark.slow
def test_drift_report_is_html_on_a_bounded_sample(evidently_report, tmp_path):
    reference, current = make_frame(3000, 0.0, seed=1), make_frame(4000, 0.5, seed=2)
    path = evidently_report.save_drift_report(
        reference,
        current,
        ["normal"],
        ["colour"],
        tmp_path / "reports" / "drift.html",
        sample_rows=500,
        drift_share=HALF,
    )
    html = path.read_text()
    assert path.parent.name == "reports"
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "normal" in html and "colour" in html
    # 500 reference rows are a small sample: Evidently chose KS and chi-square, not Wasserstein
    assert "K-S p_value" in html and "chi-square p_value" in html
    assert "Wasserstein" not in html


@pytest.mark.slow
def test_drift_report_keeps_the_methods_it_is_given(evidently_report, tmp_path):
    reference, current = make_frame(3000, 0.0, seed=1), make_frame(4000, 0.5, seed=2)
    path = evidently_report.save_drift_report(
        reference,
        current,
        ["normal"],
        ["colour"],
        tmp_path / "drift.html",
        sample_rows=500,
        overrides={"normal": FeatureDriftConfig(method="wasserstein")},
        drift_share=HALF,
    )
    html = path.read_text()
    assert "Wasserstein distance (normed)" in html
    assert "K-S p_value" not in html


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sample_rows": 0}, "sample_rows must be at least 1"),
        ({"numerical": ["absent"]}, "reference data lacks feature columns: \\['absent'\\]"),
    ],
)
def test_drift_report_refuses_bad_input(evidently_report, tmp_path, change, message):
    frame = make_frame(50, 0.0, seed=1)
    arguments = {"numerical": ["normal"], "categorical": ["colour"], "sample_rows": 10,
                 "drift_share": HALF, **change}
    with pytest.raises(ValueError, match=message):
        evidently_report.save_drift_report(frame, frame, path=tmp_path / "drift.html", **arguments)
    assert not (tmp_path / "drift.html").exists()
