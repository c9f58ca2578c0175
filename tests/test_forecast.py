"""Fresh-kit demand forecast (issue 9 item 2): known answers, injected effects, the simulator backtest,
shelf-life-aware stocking, the digest section and the CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from analytics import forecast as fc
from core.domain import Course, Ingredient, Kit, Line
from core.repos.catalog import CatalogBundle, CatalogRepository
from core.settings import load_settings
from core.store import Store
from recsys.catalog_io import load_shipped
from recsys.simulate import (
    SimulatedOrder,
    campaign_dates,
    demo_campaign_days,
    simulate_orders,
    store_campaigns,
    store_orders,
)

SIM_START = date(2026, 3, 2)  # a Monday
SIM_DAYS = 84


def _days(n: int, start: date = SIM_START) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start), periods=n, freq="D", name="day")


# -- known answers ---------------------------------------------------------------------------------


def test_seasonal_naive_repeats_the_same_weekday_last_week() -> None:
    week = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]
    y = pd.Series(week * 3, index=_days(21))
    forecast = fc.seasonal_naive(y, 10)
    assert forecast.mean.tolist() == week + week[:3]
    assert forecast.mean.index[0] == pd.Timestamp(SIM_START + timedelta(days=21))
    assert forecast.method == fc.BASELINE
    assert (forecast.low <= forecast.mean).all() and (forecast.mean <= forecast.high).all()
    short = fc.seasonal_naive(pd.Series([2.0, 4.0], index=_days(2)), 3)
    assert short.mean.tolist() == [3.0, 3.0, 3.0]  # shorter than a week: the mean so far


def test_mape_skips_zero_days_and_smape_counts_zero_zero_as_perfect() -> None:
    actual, forecast = [0, 2, 4, 0], [0, 1, 5, 2]
    assert fc.mape(actual, forecast) == pytest.approx((50 + 25) / 2)
    # 0/0 → 0, |1-2|/1.5 → 66.7, |5-4|/4.5 → 22.2, 0 vs 2 → 200
    assert fc.smape(actual, forecast) == pytest.approx((0 + 200 / 3 + 200 / 9 + 200) / 4)


def test_count_interval_is_poisson_or_negative_binomial() -> None:
    assert fc.count_interval(10, 10, 0.8) == (6.0, 14.0)  # Poisson(10) 10% / 90% quantiles
    low, high = fc.count_interval(10, 40, 0.8)  # over-dispersed: wider
    assert low < 6 and high > 14
    assert fc.count_interval(0, 0) == (0.0, 0.0)


# -- the model ---------------------------------------------------------------------------------------


def _synthetic(
    rng: np.random.Generator, n: int, *, level: float, campaign_effect: float
) -> tuple[pd.Series, pd.Series]:
    days = _days(n)
    weekday = np.log(np.array([0.85, 0.85, 0.85, 0.9, 1.05, 1.3, 1.2]))[days.day_of_week]
    campaign = pd.Series((rng.random(n) < 0.15).astype(float), index=days)
    mu = np.exp(np.log(level) + weekday + campaign_effect * campaign.to_numpy())
    return pd.Series(rng.poisson(mu).astype(float), index=days), campaign


def test_fit_forecast_recovers_an_injected_campaign_effect() -> None:
    rng = np.random.default_rng(0)
    y, campaign = _synthetic(rng, 196, level=20.0, campaign_effect=0.5)
    future_days = _days(14, SIM_START + timedelta(days=196))
    future = pd.DataFrame(
        {"campaign": [1.0 if d.day % 5 == 0 else 0.0 for d in future_days]}, index=future_days
    )
    forecast = fc.fit_forecast(y, campaign.to_frame("campaign"), 14, future, half_life=None)
    assert forecast.method == fc.MODEL
    assert forecast.effects["campaign"] == pytest.approx(0.5, abs=0.12)  # ±3 standard errors
    # On the forecast, a campaign day sells e^0.5 ≈ 1.65× the same weekday without one.
    ratio = []
    for day, flag in future["campaign"].items():
        twin = [d for d in future_days if d.weekday() == day.weekday() and d != day]
        if flag and twin and not future.loc[twin[0], "campaign"]:
            ratio.append(forecast.mean[day] / forecast.mean[twin[0]])
    assert ratio and np.allclose(ratio, math.exp(forecast.effects["campaign"]))
    assert (forecast.low <= forecast.mean).all() and (forecast.mean <= forecast.high).all()


def test_pooled_fit_keeps_sparse_items_finite_and_learns_the_shared_effect() -> None:
    rng = np.random.default_rng(1)
    days = _days(112)
    campaign = pd.Series((rng.random(112 + 14) < 0.12).astype(float), index=_days(126))
    levels = rng.uniform(0.1, 0.5, size=30)  # 30 kits selling a few a week
    weekday = np.log(np.array([0.85, 0.85, 0.85, 0.9, 1.05, 1.3, 1.2]))[days.day_of_week]
    demand = pd.DataFrame(
        {
            f"kit/k{i}": rng.poisson(level * np.exp(weekday + 0.5 * campaign.iloc[:112].to_numpy()))
            for i, level in enumerate(levels)
        },
        index=days,
    ).astype(float)
    forecasts = fc.fit_panel(demand, {"campaign": campaign}, 14)
    modelled = [f for f in forecasts.values() if f.method == fc.MODEL]
    assert len(modelled) >= 28
    assert modelled[0].effects["campaign"] == pytest.approx(0.5, abs=0.15)
    for item, forecast in forecasts.items():
        assert np.isfinite(forecast.mean).all()
        assert forecast.mean.mean() < 4 * max(demand[item].mean(), 0.1)  # no separation blow-ups


def test_out_of_season_days_are_forecast_as_zero() -> None:
    rng = np.random.default_rng(2)
    y, _ = _synthetic(rng, 60, level=5.0, campaign_effect=0.0)
    available = pd.DataFrame({"ingredient/x": [1.0] * 67 + [0.0] * 7}, index=_days(74))
    forecast = fc.fit_panel(y.rename("ingredient/x").to_frame(), None, 14, available=available)[
        "ingredient/x"
    ]
    assert (forecast.mean.iloc[:7] > 2).all() and (forecast.mean.iloc[7:] == 0).all()
    assert (forecast.high.iloc[7:] == 0).all() and "当季" in forecast.note


def test_too_little_history_falls_back_to_the_baseline_and_says_so() -> None:
    y = pd.Series([0.0] * 40 + [1.0, 2.0, 0.0, 3.0, 1.0, 0.0, 2.0], index=_days(47))  # launched a week ago
    forecast = fc.fit_forecast(y.rename("kit/new"), None, 14)
    assert forecast.method == fc.BASELINE and "新品" in forecast.note
    assert forecast.mean.tolist()[:7] == [1.0, 2.0, 0.0, 3.0, 1.0, 0.0, 2.0]
    thin = fc.fit_forecast(pd.Series([0.0] * 50 + [1.0], index=_days(51)), None, 14)
    assert thin.method == fc.BASELINE and "销量太少" in thin.note


# -- loading from the store --------------------------------------------------------------------------


def _tiny_catalog(store: Store) -> CatalogRepository:
    catalog = CatalogRepository(store)
    catalog.upsert(
        CatalogBundle(
            courses=[Course(slug="course/stew", title="炖菜课")],
            ingredients=[
                Ingredient(slug="ingredient/beef", name="牛腩", stock=5, shelf_life_days=3),
                Ingredient(slug="ingredient/potato", name="土豆", stock=50, shelf_life_days=30),
                Ingredient(slug="ingredient/bamboo", name="春笋", stock=0, shelf_life_days=2, season=[3, 4]),
            ],
            kits=[
                Kit(
                    slug="kit/stew",
                    title="炖牛腩食材包",
                    course="course/stew",
                    items=[Line(ingredient="ingredient/beef"), Line(ingredient="ingredient/potato")],
                )
            ],
        )
    )
    return catalog


def _order(n: int, when: str, items: list[tuple[str, int]]) -> SimulatedOrder:
    return SimulatedOrder(f"t-{n}", 1, when, [(slug, q, 100) for slug, q in items])


def test_daily_demand_expands_kits_into_ingredients_on_local_days(store: Store) -> None:
    _tiny_catalog(store)
    store_orders(
        store,
        [
            _order(1, "2026-04-01T03:00:00.000Z", [("kit/stew", 2), ("ingredient/beef", 1)]),  # 11:00 Beijing
            _order(2, "2026-04-01T17:30:00.000Z", [("ingredient/potato", 3)]),  # 01:30 on Apr 2 in Beijing
            _order(3, "2026-04-02T02:00:00.000Z", [("course/stew", 1)]),
        ],
    )
    items = ["kit/stew", "ingredient/beef", "ingredient/potato"]
    demand = fc.daily_demand(store, items, date(2026, 4, 1), date(2026, 4, 4))
    assert demand.loc["2026-04-01"].tolist() == [2.0, 3.0, 2.0]  # beef: 1 loose + 2 in kits
    assert demand.loc["2026-04-02"].tolist() == [0.0, 0.0, 3.0]
    assert demand.loc["2026-04-03"].sum() == 0 and len(demand) == 3
    enrolments = fc.course_enrolments(store, items, date(2026, 4, 1), date(2026, 4, 4))
    assert enrolments.loc["2026-04-02"].tolist() == [1.0, 1.0, 1.0]  # the kit's course, and its ingredients'
    window = fc.followup_regressor(enrolments["kit/stew"], 2)
    assert window.loc["2026-04-02"] == 0 and window.loc["2026-04-03"] == pytest.approx(math.log(2))
    store_campaigns(store, [(date(2026, 4, 2), date(2026, 4, 3))])
    calendar = fc.campaign_calendar(store, date(2026, 4, 1), date(2026, 4, 5))
    assert calendar.tolist() == [0.0, 1.0, 1.0, 0.0]
    season = fc.season_calendar(store, ["ingredient/bamboo", "kit/stew"], date(2026, 4, 30), date(2026, 5, 2))
    assert season["ingredient/bamboo"].tolist() == [1.0, 0.0] and season["kit/stew"].tolist() == [1.0, 1.0]


# -- stocking ----------------------------------------------------------------------------------------


def _flat(mean: float, days: int = 14) -> fc.Forecast:
    index = _days(days)
    series = pd.Series(mean, index=index)
    low, high = fc._band(series, series, 0.0)
    return fc.Forecast(series, low, high, var=series.copy())


def test_stock_plan_never_stocks_beyond_shelf_life() -> None:
    forecasts = {"ingredient/fish": _flat(4.0), "ingredient/rice": _flat(4.0), "kit/stew": _flat(1.0)}
    stock = {"ingredient/fish": 10, "ingredient/rice": 10, "kit/stew": None}
    shelf = {"ingredient/fish": 2, "ingredient/rice": 365, "kit/stew": 3}
    rows = {r.slug: r for r in fc.stock_plan(forecasts, stock, shelf, names={"ingredient/fish": "鲈鱼"})}
    fish, rice, kit = rows["ingredient/fish"], rows["ingredient/rice"], rows["kit/stew"]
    assert (
        fish.cover_days == 2 and fish.need == fc.count_interval(8, 8)[1] == 12
    )  # two days of demand, not 14
    assert fish.order == 2 and "保质期 2 天" in fish.suggestion and fish.name == "鲈鱼"
    assert (
        rice.cover_days == 14 and rice.need == fc.count_interval(56, 56)[1] and rice.order == rice.need - 10
    )
    assert (
        kit.stock is None and kit.order == kit.need == fc.count_interval(3, 3)[1] and "备货" in kit.suggestion
    )
    assert fish.demand_14 == pytest.approx(56) and fish.demand_7 == pytest.approx(28)
    glut = fc.stock_plan({"ingredient/fish": _flat(1.0)}, {"ingredient/fish": 30}, {"ingredient/fish": 2})[0]
    assert glut.order == 0 and glut.expiring == 30 - glut.need > 20 and "过期" in glut.suggestion
    ranked = fc.stock_plan(forecasts, stock, shelf)
    assert [r.order for r in ranked] == sorted((r.order for r in ranked), reverse=True)


# -- the simulator backtest ----------------------------------------------------------------------


def _simulated_store(path: Path, n_users: int, days: int, seed: int) -> Store:
    store = Store(path)
    catalog = CatalogRepository(store)
    load_shipped(catalog)
    windows = demo_campaign_days(SIM_START, days + 14, seed=seed)
    orders = simulate_orders(
        catalog,
        n_users=n_users,
        days=days,
        seed=seed,
        start=SIM_START,
        course_followups=True,
        campaign_days=campaign_dates(windows),
    )
    store_orders(store, orders)
    store_campaigns(store, windows)
    return store


@pytest.fixture(scope="module")
def sim_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = _simulated_store(tmp_path_factory.mktemp("forecast") / "sim.db", 200, SIM_DAYS, 11)
    yield store
    store.close()


def test_simulator_options_add_followups_and_campaign_bumps(store: Store) -> None:
    catalog = CatalogRepository(store)
    load_shipped(catalog)
    base = simulate_orders(catalog, n_users=150, days=28, seed=4, start=SIM_START)
    assert base == simulate_orders(
        catalog, n_users=150, days=28, seed=4, start=SIM_START, course_followups=False
    )
    with_followups = simulate_orders(
        catalog, n_users=150, days=28, seed=4, start=SIM_START, course_followups=True
    )
    kit_course = {k["slug"]: k["course"] for k in catalog.kits()}
    extra = [o for o in with_followups if len(o.items) == 1 and o.items[0][0] in kit_course]
    assert len(with_followups) > len(base) and extra
    promo = {SIM_START + timedelta(days=d) for d in (9, 10, 11)}
    bumped = simulate_orders(catalog, n_users=150, days=28, seed=4, start=SIM_START, campaign_days=promo)
    per_day = pd.Series([o.created_at[:10] for o in bumped]).value_counts()
    on = per_day[[f"{d:%Y-%m-%d}" for d in promo]].mean()
    assert on > 1.3 * per_day.drop([f"{d:%Y-%m-%d}" for d in promo]).mean()


def test_backtest_beats_seasonal_naive_on_the_simulator(sim_store: Store) -> None:
    end = SIM_START + timedelta(days=SIM_DAYS)
    facts = fc.item_facts(sim_store)
    sales = fc.load_sales(sim_store, SIM_START, end)
    items = fc.select_items(sales, facts, fc.kit_contents(sim_store))
    inputs = fc.load_inputs(sim_store, items, SIM_START, end)
    result = fc.backtest(inputs)
    print("\nforecast backtest, 200 users × 84 days, seed 11, origins", result["origins"])
    for group, summary in result["groups"].items():
        for grain in ("score", "total", "weekly", "daily"):
            if grain in summary:
                print(
                    f"  {group:10s} {grain:6s} model {summary[grain]['model']}  naive {summary[grain]['naive']}"
                )
        print(
            f"  {group:10s} interval coverage of {fc.HORIZON}-day totals {summary['interval_coverage_total']}"
        )
    assert len(result["origins"]) == 3
    for group in ("kit", "ingredient", "all"):
        score = result["groups"][group]["score"]
        assert score["model"]["smape"] < score["naive"]["smape"], group
        assert score["model"]["mape"] < score["naive"]["mape"], group
    for group in ("kit", "ingredient"):
        total = result["groups"][group]["total"]
        assert total["model"]["smape"] < total["naive"]["smape"], group
    assert 0.6 <= result["groups"]["all"]["interval_coverage_total"] <= 0.97  # nominal 80%


def test_run_forecast_and_the_digest_section(sim_store: Store) -> None:
    from listening.digest import Section, period_for
    from listening.stock_digest import stock_section

    run = fc.run_forecast(sim_store, today=date(2026, 7, 1))
    assert run is not None and run.origin == SIM_START + timedelta(days=SIM_DAYS)
    assert any(s.startswith("kit/") for s in run.forecasts) and any(
        s.startswith("ingredient/") for s in run.forecasts
    )
    assert all(len(f.mean) == 14 and np.isfinite(f.mean).all() for f in run.forecasts.values())
    now = datetime(2026, 5, 26, 1, 0, tzinfo=UTC)  # Tuesday morning in Beijing: last week is May 18–24
    section = stock_section(sim_store, period_for("weekly", now, fc.SHANGHAI))
    assert isinstance(section, Section) and section.key == "stock" and section.title == "备货建议"
    assert section.data["origin"] == "2026-05-25" and 1 <= len(section.data["items"]) <= 5
    assert "优先备货" in section.lines[0] and all(line.startswith("• ") for line in section.lines[1:])


def test_digest_section_without_orders_says_so(store: Store) -> None:
    from listening.digest import period_for
    from listening.stock_digest import stock_section

    section = stock_section(store, period_for("weekly", datetime(2026, 5, 26, tzinfo=UTC), fc.SHANGHAI))
    assert section.data == {"items": []} and "没有订单" in section.lines[0]


# -- CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CliRunner, typer.Typer, Path]]:
    import xianke.context as context
    from xianke.app import App
    from xianke.commands.forecast import forecast

    xk = App(load_settings(data_dir=tmp_path, db_path=tmp_path / "cli.db"))
    monkeypatch.setattr(context, "_app", xk)
    root = typer.Typer()
    root.command("forecast")(forecast)
    root.command("noop")(lambda: None)  # two commands, so `forecast` is a sub-command as in xianke
    yield CliRunner(), root, tmp_path
    xk.store.close()


def test_cli_on_an_empty_database_is_polite(cli: tuple[CliRunner, typer.Typer, Path]) -> None:
    runner, root, tmp = cli
    result = runner.invoke(root, ["forecast"])
    # A polite refusal: exit 1 through typer.Exit (click reports it as SystemExit), never a crash.
    assert result.exit_code == 1, result.output
    assert result.exception is None or type(result.exception) is SystemExit
    assert "xianke demo" in result.output and "Traceback" not in result.output
    missing = runner.invoke(root, ["forecast", "--db", str(tmp / "nope.db")])
    assert missing.exit_code == 2 and "nope.db" in missing.output


def test_cli_prints_table_chart_and_backtest_json(cli: tuple[CliRunner, typer.Typer, Path]) -> None:
    runner, root, tmp = cli
    _simulated_store(tmp / "sim.db", 120, 56, 5).close()
    chart = tmp / "out" / "forecast.png"
    result = runner.invoke(
        root, ["forecast", "--db", str(tmp / "sim.db"), "--chart", str(chart), "--backtest"]
    )
    assert result.exit_code == 0, result.output
    assert "备货建议" in result.output and "回测" in result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["chart"] == str(chart) and chart.stat().st_size > 20_000
    assert summary["items"] > 20 and len(summary["top"]) == 15
    assert set(summary["backtest"]["groups"]) == {"all", "kit", "ingredient"}
