"""Benchmarks: the project's speed and quality targets, measured and printed as JSON.

Tests check behaviour; the numbers live here (and their saved copies in docs/benchmarks/,
summarised in BENCHMARKS.md). One command runs any of them: `python -m benchmarks --help`.

    engine.py     the engine: steps/s against a textbook loop, quality, digits
    cohort.py     many runs stacked in cohorts against one solo run
    page.py       the page: tick latency, server CPU per tick, many visitors, browser memory
    lessons.py    each lesson shows its symptom; each alert's fix helps
    students.py   a whole class at once against the app
    classview.py  the teacher's class view of a whole class: refresh interval, server CPU
    common.py     the machine, the app in a subprocess, /proc readings
    browser_probe.py  headless Chromium flags and renderer sampling (also used by the tests)

Nothing outside this package imports it but the tests.
"""
