"""Integration test of `benchmarks.students` at tiny scale: three students press Start through
gradio_client on the app, poll the live channel like open tabs at the pace it tells them, see
their own run's mode coverage and stay; when their pages close, the runs and threads go."""

from __future__ import annotations

from app_support import running_app
from benchmarks.students import coverage_of, run_class


def test_coverage_is_read_from_the_status_line():
    assert coverage_of("<b>Running</b> · step <b>9</b> · modes covered <b>7/8</b> (93% of samples high quality)") \
        == (7, 8, 93)
    assert coverage_of("modes covered <b>1/8</b> (0.3% of samples high quality)") == (1, 8, 0.3)
    assert coverage_of("<b>Running</b> · step <b>0</b>") is None


def test_three_students_who_stay_train_together_through_the_live_channel(wait_until):
    with running_app(max_active=30) as (url, page):
        # A small class and an easy bar: the flow, not the speed, is under test here.
        result = run_class(url, students=3, seconds=12.0, target_modes=1, target_hq=0, stats=page.server_stats)
        assert result["errors"] == []
        assert result["served"] == 3, result["not_served_last_status"]
        assert result["polls"] >= 3 * 5, "each student kept polling after it was served"
        assert page.manager.stats()["sessions"] == 3, "nobody left when served"
        assert page.server_stats()["capacity"]["trainer"] is not None  # the 2-D runs' trainer
        for sid in list(page.manager.sessions()):
            page.unload(type("R", (), {"session_hash": sid})())
        assert page.manager.stats()["sessions"] == 0 and wait_until(lambda: page.manager.training_threads() == 0)
