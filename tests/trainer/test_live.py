"""Automatic rollback on a live regression (trainer/live.py): a real SQLite store, a real adapter
registry, and live figures counted exactly as `plumline stats` counts them."""

from __future__ import annotations

import json

import pytest

from agent.adapters import current_adapter
from agent.stats import adapter_figures
from tests.trainer.conftest import promote_two_adapters, serve
from trainer.live import check_and_rollback, live_figures


@pytest.fixture
def live_env(train_env):
    config, store = train_env
    config.train.rollback_min_events = 30  # 40 suggestions per adapter show these gaps at p < 0.01
    fp = promote_two_adapters(config, store)
    return config, store, fp


def test_acceptance_regression_rolls_back(live_env):
    config, store, fp = live_env
    serve(store, "first", shown=40, accepted=20)
    serve(store, "second", shown=40, accepted=4)  # 10% against 50%
    check = check_and_rollback(config, store, fingerprint=fp)
    assert check.regressed and check.rolled_back_to == "first"
    assert current_adapter(config.adapters_dir).id == "first"
    assert store.get("adapters", "second")["status"] == "rejected"
    row = next(store.rows("select * from gate_decisions where decision = 'rollback'"))
    assert (row["candidate"], row["current"]) == ("second", "first")
    assert json.loads(row["metrics"])["p_values"]["acceptance"] < config.train.rollback_alpha


def test_persistence_regression_rolls_back(live_env):
    config, store, fp = live_env
    serve(store, "first", shown=40, accepted=20, kept=1.0)
    serve(store, "second", shown=40, accepted=20, kept=0.1)  # accepted as often, then mostly deleted
    check = check_and_rollback(config, store, fingerprint=fp)
    assert check.regressed and "persistence" in check.reason and "600s" in check.reason
    assert current_adapter(config.adapters_dir).id == "first"


def test_resent_notifications_are_not_a_regression(live_env):
    config, store, fp = live_env
    serve(store, "first", shown=40, accepted=20)
    serve(store, "second", shown=40, accepted=18, shown_sent=2)  # 45% against 50%, every "shown" sent twice
    check = check_and_rollback(config, store, fingerprint=fp)
    assert not check.regressed and check.rolled_back_to is None
    assert current_adapter(config.adapters_dir).id == "second"
    assert not list(store.rows("select * from gate_decisions where decision = 'rollback'"))
    # the figures compared are the ones `plumline stats` shows
    stats = adapter_figures(store, adapter="second")[0]
    live = live_figures(store, "second")
    assert (live.shown, live.accepted) == (stats.shown, stats.accepted) == (40, 18)


def test_too_few_events_never_roll_back(live_env):
    config, store, fp = live_env
    serve(store, "first", shown=40, accepted=20)
    serve(store, "second", shown=20, accepted=0)
    check = check_and_rollback(config, store, fingerprint=fp)
    assert not check.regressed and "train.rollback_min_events" in check.reason
    assert current_adapter(config.adapters_dir).id == "second"


def test_a_resent_persistence_check_counts_once(live_env):
    _, store, _ = live_env
    serve(store, "first", shown=4, accepted=4, kept=1.0)
    cid = next(store.rows("select id from completions where adapter_id = 'first'"))["id"]
    store.record_event(cid, "persist", 1.0, after_s=600)  # the same check, sent again
    live = live_figures(store, "first")
    assert live.persistence_checks == {"600s": 4} and live.persistence == {"600s": 1.0}
