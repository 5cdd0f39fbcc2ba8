"""Tests for gan_core/telemetry.py: bounded decimation against a numpy
reference, ring order, immutable snapshots, and consistency under a writer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gan_core.records import N_STATS, EvalFrame
from gan_core.telemetry import DecimatingSeries, RingBuffer, Telemetry


def reference_bins(values: np.ndarray, capacity: int):
    """What a decimating table should hold after len(values) steps: rows of equal-width
    bins from step 1, width the smallest power of two that keeps the rows ≤ capacity
    (a full table merges when the next bin completes)."""
    n = len(values)
    width = 1
    while n >= (capacity + 1) * width:
        width *= 2
    rows = n // width
    means = values[: rows * width].reshape(rows, width, -1).mean(1)
    last_step = np.arange(1, rows + 1) * width
    return width, last_step, means


def feed(series: DecimatingSeries, values: np.ndarray, chunks: list[int]) -> None:
    start = 0
    for size in chunks:
        block = values[start: start + size]
        steps = np.arange(start + 1, start + 1 + len(block))
        series.extend(steps, steps * 0.5, block)
        start += len(block)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 17, 18, 35, 36, 100, 257])
def test_decimating_series_matches_numpy_reference(n):
    capacity = 8
    rng = np.random.default_rng(n)
    values = rng.normal(size=(n, 3))
    series = DecimatingSeries(3, capacity)
    chunks = list(rng.integers(1, 6, size=n))  # arbitrary chunking must not matter
    feed(series, values, chunks)
    width, last_step, means = reference_bins(values, capacity)
    table = series.view()
    assert series.bin_size == width
    assert len(table) <= capacity
    np.testing.assert_array_equal(table[:, 0], last_step)
    np.testing.assert_allclose(table[:, 1], last_step * 0.5)  # time of the bin's last step
    np.testing.assert_allclose(table[:, 2:], means, rtol=1e-12, atol=1e-12)


def test_decimating_series_stays_bounded_over_a_long_run():
    series = DecimatingSeries(1, 16)
    values = np.arange(10_000, dtype=np.float64)[:, None]
    feed(series, values, [500] * 20)
    table = series.view()
    assert len(table) <= 16 and series.data.shape == (16, 3)
    # Each row is the mean of its bin of consecutive steps: mean of (s−w … s−1) = s − (w+1)/2.
    np.testing.assert_allclose(table[:, 2], table[:, 0] - (series.bin_size + 1) / 2)
    assert table[0, 0] == series.bin_size  # history still starts at the beginning of the run


def test_decimating_series_rejects_bad_capacity():
    for bad in (2, 7):
        with pytest.raises(ValueError, match="capacity"):
            DecimatingSeries(1, bad)


@pytest.mark.parametrize("chunks", [[1] * 13, [3, 4, 6], [13], [2, 9, 2]])
def test_ring_buffer_keeps_the_last_rows_oldest_first(chunks):
    ring = RingBuffer(2, capacity=5)
    rows = np.column_stack([np.arange(13), -np.arange(13)]).astype(float)
    start, seen = 0, []
    for size in chunks:
        ring.extend(rows[start: start + size])
        start += size
        seen = rows[:start]
        np.testing.assert_array_equal(ring.view(), seen[-5:])
    assert len(ring.view()) == 5


def test_ring_buffer_partially_filled():
    ring = RingBuffer(1, capacity=4)
    assert ring.view().shape == (0, 1)
    ring.extend(np.array([[1.0], [2.0]]))
    np.testing.assert_array_equal(ring.view(), [[1.0], [2.0]])


def record(tel: Telemetry, first: int, n: int) -> None:
    steps = np.arange(first, first + n)
    stats = steps[:, None] * np.arange(1, N_STATS + 1)[None, :]  # column j = (j+1)·step
    tel.record_steps(steps, steps * 0.01, stats.astype(float), rate=float(n))


def test_snapshot_is_immutable_and_cached_per_version():
    tel = Telemetry()
    record(tel, 1, 10)
    snap = tel.snapshot()
    assert snap.step == 10 and snap.steps_per_s == 10.0
    for arr in (snap.history, snap.recent, snap.coverage):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[...] = 0
    with pytest.raises(AttributeError):
        snap.step = 3  # type: ignore[misc]
    assert tel.snapshot() is snap  # nothing written: the same snapshot
    record(tel, 11, 1)
    new = tel.snapshot()
    assert new.version > snap.version and new.step == 11
    assert snap.step == 10 and len(snap.recent) == 10  # the old snapshot did not change
    np.testing.assert_array_equal(new.column("d_loss", recent=True), np.arange(1, 12))
    np.testing.assert_array_equal(new.column("g_loss"), 2 * np.arange(1, 12))
    np.testing.assert_array_equal(new.column("wall_s"), np.arange(1, 12) * 0.01)


def frame(step: int, covered: int | None) -> EvalFrame:
    empty = np.zeros(0)
    return EvalFrame(step, empty, empty, empty, empty, None, None, None, None,
                     covered, None if covered is None else 8, None if covered is None else 50.0)


def test_frames_and_coverage_and_reset():
    tel = Telemetry()
    tel.set_status("running", "", device="cpu", config="cfg")
    record(tel, 1, 5)
    tel.record_frame(frame(5, 3))
    tel.record_frame(frame(6, None))  # no modes: coverage untouched
    snap = tel.snapshot()
    assert snap.frame.step == 6 and snap.state == "running" and snap.device == "cpu" and snap.config == "cfg"
    np.testing.assert_array_equal(snap.coverage, [[5, 3, 50.0]])
    tel.record_digit_scores(5, 2.5, 120.0)
    np.testing.assert_array_equal(tel.snapshot().digit_scores, [[5, 2.5, 120.0]])
    tel.reset()
    snap = tel.snapshot()
    assert snap.step == 0 and snap.frame is None and len(snap.history) == 0 and len(snap.recent) == 0
    assert len(snap.coverage) == 0 and len(snap.digit_scores) == 0 and snap.history_bin == 1
    assert snap.state == "running" and snap.config == "cfg"  # status survives a data reset


def test_the_frame_before_the_latest_is_kept_for_showing_one_update():
    tel = Telemetry()
    assert tel.snapshot().previous_frame is None
    first, second = frame(30, 3), frame(31, 3)
    tel.record_frame(first)
    assert tel.snapshot().previous_frame is None
    tel.record_frame(second)
    assert tel.snapshot().previous_frame is first and tel.snapshot().frame is second
    again = frame(31, 4)  # the same step published again (after a pause): nothing moved since `first`
    tel.record_frame(again)
    assert tel.snapshot().previous_frame is first and tel.snapshot().frame is again
    tel.record_frame(frame(12, 3))  # an earlier step (the run went back): no "before" to show
    assert tel.snapshot().previous_frame is None
    tel.record_frame(frame(13, 3))
    tel.truncate_after(12)  # a rewind before the latest frame drops both
    assert tel.snapshot().frame is None and tel.snapshot().previous_frame is None
    tel.record_frame(frame(13, 3))
    tel.record_frame(frame(14, 3))
    tel.reset()
    assert tel.snapshot().previous_frame is None


def test_snapshots_are_consistent_while_another_thread_writes():
    tel = Telemetry(history_capacity=16, recent=32)
    stop = threading.Event()
    total = {"n": 0}

    def writer():
        step = 1
        while not stop.is_set() and step < 200_000:
            n = 1 + step % 7
            record(tel, step, n)
            step += n
        total["n"] = step - 1

    thread = threading.Thread(target=writer, name="telemetry-writer", daemon=True)
    thread.start()
    ratios = np.arange(1, N_STATS + 1)
    checked = 0
    try:
        while checked < 300 and thread.is_alive():
            snap = tel.snapshot()
            if len(snap.recent) == 0:
                continue
            recent, history = snap.recent, snap.history
            # Full-resolution rows are consecutive steps ending at the published step.
            np.testing.assert_array_equal(np.diff(recent[:, 0]), 1)
            assert recent[-1, 0] == snap.step
            np.testing.assert_array_equal(recent[:, 2:], recent[:, :1] * ratios)
            # The decimated history is increasing, bounded, and each bin is internally
            # consistent: every stat column is the same multiple of the mean step.
            assert len(history) <= 16
            if len(history):
                assert np.all(np.diff(history[:, 0]) > 0) and history[-1, 0] <= snap.step
                np.testing.assert_allclose(history[:, 2:], history[:, 2:3] * ratios, rtol=1e-9)
            checked += 1
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert checked >= 50
    final = tel.snapshot()
    assert final.step == total["n"] and final.history_bin > 1  # decimation happened under load


def test_last_update_says_which_network_moved():
    tel = Telemetry()
    assert tel.snapshot().last_update == ""
    record(tel, 1, 3)
    assert tel.snapshot().last_update == "both"
    before = tel.snapshot().version
    tel.record_update("d")
    snap = tel.snapshot()
    assert snap.last_update == "d" and snap.version > before
    tel.record_update("g")
    assert tel.snapshot().last_update == "g"
    with pytest.raises(ValueError, match="'d' or 'g'"):
        tel.record_update("both")
    tel.reset()
    assert tel.snapshot().last_update == ""


def test_live_changes_are_events_dropped_by_a_rewind_and_restored_from_a_file():
    from gan_core.config import TrainConfig
    from gan_core.telemetry import MAX_EVENTS

    tel = Telemetry()
    a = TrainConfig()
    tel.record_change(100, a, a)  # nothing changed: no event
    tel.record_change(200, a, a.with_live(d_lr=1e-2, n_critic=5))
    tel.record_change(300, a, a.with_live(loss="wgan-gp"))
    assert tel.snapshot().events == ((200, "D lr 0.001→0.01, k 1→5"), (300, "loss → wgan-gp"))
    tel.truncate_after(250)
    assert tel.snapshot().events == ((200, "D lr 0.001→0.01, k 1→5"),)
    for i in range(MAX_EVENTS + 5):
        tel.record_change(400 + i, a, a.with_live(g_lr=1e-4))
    assert len(tel.snapshot().events) == MAX_EVENTS, "bounded"

    steps = np.arange(1, 11, dtype=float)
    tel.record_steps(steps, steps, np.ones((10, N_STATS)), 1.0)
    saved = tel.history()
    other = Telemetry()
    other.restore(saved, step=10)
    snap = other.snapshot()
    assert snap.step == 10 and np.array_equal(snap.history, saved.rows) and snap.events == saved.events
    assert len(snap.recent) == 0, "full-resolution steps are not in a file: detectors wait for new ones"
