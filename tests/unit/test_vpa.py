"""The VPA baseline against cases computed by hand from the recommender's documented rules."""

import numpy as np
import pytest

from predictor.vpa import CPU_BUCKETS_MILLICORES, MEMORY_BUCKETS_BYTES, StaticRecommender, VpaRecommender

HOUR = 3600.0
DAY = 24 * HOUR


def test_bucket_layout_grows_five_percent_from_the_first_bucket() -> None:
    b = CPU_BUCKETS_MILLICORES
    # bucket 0 = [0, 10), bucket 1 = [10, 20.5), bucket 2 = [20.5, 31.525): each 5 % wider.
    assert b.start(np.array([0, 1, 2, 3])).tolist() == pytest.approx([0.0, 10.0, 20.5, 31.525])
    assert b.find(np.array([0.0, 9.99, 10.0, 20.49, 20.5, 1e9])).tolist() == [0, 0, 1, 1, 2, b.count - 1]


def test_cpu_target_is_the_end_of_the_p90_bucket_plus_fifteen_percent() -> None:
    t = np.arange(10) * 60.0
    vpa = VpaRecommender("cpu").fit(t, np.full(10, 100.0))
    # 100 m: log(100*0.05/10 + 1) / log(1.05) = 8.31 -> bucket 8, whose end is
    # 10 * (1.05**9 - 1) / 0.05 = 110.2656 m; + 15 % = 126.8055 m.
    assert vpa.predict(np.array([t[-1] + 1]))[0] == pytest.approx(110.26564 * 1.15, rel=1e-6)


def test_recommendations_only_see_samples_strictly_before_the_decision() -> None:
    t = np.array([0.0, 60.0, 120.0])
    vpa = VpaRecommender("cpu").fit(t, np.array([100.0, 100.0, 5000.0]))
    before, at, after = vpa.predict(np.array([0.0, 120.0, 121.0]))
    assert before == 0.0  # no history, no recommendation
    assert at == pytest.approx(110.26564 * 1.15, rel=1e-6)
    assert after > 5000.0


def test_half_life_decay_lets_recent_samples_outvote_an_old_spike() -> None:
    # One 1000 m sample at t=0 (weight 1), five 100 m samples two half-lives later (weight 4 each):
    # total 21, p90 threshold 18.9 <= 20 -> the 100 m bucket.
    t = np.array([0.0, *([2 * DAY] * 5)]) + np.array([0, 0, 1, 2, 3, 4])
    v = np.array([1000.0, *([100.0] * 5)])
    decayed = VpaRecommender("cpu").fit(t, v).predict(np.array([3 * DAY]))[0]
    assert decayed == pytest.approx(110.26564 * 1.15, rel=1e-6)
    # Without decay: total 6, threshold 5.4 > 5 -> the spike's bucket (1000 m: log(6)/log(1.05) = 36.7 -> bucket 36).
    flat = VpaRecommender("cpu", half_life_seconds=1e15).fit(t, v).predict(np.array([3 * DAY]))[0]
    assert flat == pytest.approx(CPU_BUCKETS_MILLICORES.start(np.array([37]))[0] * 1.15)
    assert flat > 1000.0


def test_memory_uses_daily_peaks_weighted_at_the_end_of_their_day() -> None:
    # Day 0 peaks at 300 MB (weight 2^(1 day / 1 day) = 2), day 1 at 200 MB (weight 2^2 = 4).
    # Total 6, threshold 5.4: the 200 MB bucket holds 4 < 5.4, so the target is 300 MB's bucket.
    t = np.array([1 * HOUR, 2 * HOUR, DAY + HOUR])
    v = np.array([100e6, 300e6, 200e6])
    got = VpaRecommender("memory").fit(t, v).predict(np.array([DAY + 2 * HOUR]))[0]
    # 300 MB: log(3e8*0.05/1e7 + 1)/log(1.05) = 18.78 -> bucket 18, end 1e7*(1.05**19-1)/0.05.
    assert got == pytest.approx(1e7 * (1.05**19 - 1) / 0.05 * 1.15, rel=1e-9)
    # Inside day 0, before the 300 MB sample, only the 100 MB peak is known.
    early = VpaRecommender("memory").fit(t, v).predict(np.array([1.5 * HOUR]))[0]
    assert early == pytest.approx(MEMORY_BUCKETS_BYTES.start(np.array([9]))[0] * 1.15, rel=1e-9)


def test_memory_peak_of_the_current_day_replaces_the_earlier_one() -> None:
    t = np.array([HOUR, 2 * HOUR, 3 * HOUR])
    v = np.array([100e6, 300e6, 150e6])
    vpa = VpaRecommender("memory").fit(t, v)
    one_peak = vpa._memory_histogram(3)
    assert one_peak.sum() == pytest.approx(2.0)  # one sample (the 300 MB peak), weight 2^1
    assert np.flatnonzero(one_peak).tolist() == [18]


def test_static_recommends_the_declared_value_always() -> None:
    static = StaticRecommender(250.0).fit(np.zeros(1), np.zeros(1))
    assert static.predict(np.array([1.0, 2.0, 3.0])).tolist() == [250.0, 250.0, 250.0]
