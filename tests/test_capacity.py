"""gan_core/serve/capacity.py: the cost model, the calibration, and the meter that keeps measuring
what a trainer thread gives while a class trains."""

from __future__ import annotations

import pytest

from gan_core.config import default_config
from gan_core.serve.capacity import (
    DIGITS_COST, METER_WINDOW_S, METER_WEIGHT, CapacityMeter, calibrate, reference_config, step_cost,
)


def test_a_unit_is_the_reference_step_and_bigger_runs_cost_more():
    assert step_cost(reference_config()) == 1.0
    assert step_cost(default_config("ring8", batch_size=256)) == 4.0
    assert step_cost(default_config("ring8", batch_size=128, n_critic=3)) == 4.0
    assert step_cost(default_config("digits")) == DIGITS_COST


def test_calibration_measures_this_box():
    units = calibrate(seconds=0.02)
    assert units > 0


def test_the_meter_counts_only_saturated_stretches_and_blends_windows():
    meter = CapacityMeter(calibrated=1000.0)
    meter.add(units=10_000, wall_s=METER_WINDOW_S, saturated=False)  # waited for work: says nothing
    assert meter.units_per_s == 1000.0 and not meter.measured
    meter.add(units=3000 * METER_WINDOW_S, wall_s=METER_WINDOW_S, saturated=True)
    assert meter.measured and meter.units_per_s == pytest.approx(3000.0), "the first window replaces the guess"
    meter.add(units=1000 * METER_WINDOW_S, wall_s=METER_WINDOW_S, saturated=True)
    assert meter.units_per_s == pytest.approx((1 - METER_WEIGHT) * 3000 + METER_WEIGHT * 1000)


def test_a_trainer_measures_its_capacity_while_a_class_trains(tiny, wait_until, no_leaked_threads):
    from gan_core.serve.trainer import CohortRunner, Trainer

    trainer = Trainer(n_threads=1, chunk_s=0.01)
    guess = trainer.capacity()
    assert guess["units_per_s"] > 0 and not guess["measured"]
    runs = [CohortRunner(tiny(seed=i), trainer=trainer, name=f"gan-c{i}") for i in range(5)]
    try:
        for run in runs:
            run.start()
        wait_until(lambda: trainer.capacity()["measured"], timeout=30, what="a measured capacity")
        assert trainer.capacity()["units_per_s"] > 0
    finally:
        for run in runs:
            run.stop()
