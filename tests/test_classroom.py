"""Integration test of `benchmarks.students` at tiny scale: three students press Start
through gradio_client on the app, poll it like open tabs, see their own run's mode coverage,
and when they leave the trainer threads and sessions go."""

from __future__ import annotations

from app_support import running_app
from benchmarks.students import coverage_of, run_class


def test_coverage_is_read_from_the_status_line():
    assert coverage_of("**Running** · step **9** · modes covered **7/8** (93% of samples high quality)") == (7, 8, 93)
    assert coverage_of("modes covered **1/8** (0.3% of samples high quality)") == (1, 8, 0.3)
    assert coverage_of("**Running** · step **9** · modes **7/8**, 93% high quality") == (7, 8, 93)
    assert coverage_of("**Running** · step **0**") is None


def test_three_students_train_together_and_leave_cleanly():
    with running_app(max_active=30) as (url, manager):
        from classroom.handlers import Handlers

        stats = Handlers(manager).server_stats
        # A small class and an easy bar: the flow, not the speed, is under test here.
        result = run_class(url, students=3, seconds=20.0, target_modes=1, target_hq=0, stats=stats, cleanup_s=20.0)
    assert result["errors"] == []
    assert result["served"] == 3, result["not_served_last_status"]
    during = result["server_during"]
    assert during["capacity"]["trainer"] is not None  # 2-D runs trained on the shared trainer threads
    after = result["server_after"]
    assert after["sessions"] == 0 and after["training_threads"] == 0
