"""Tests for nightcrew.usage.pricing.

Expected dollars are worked out here from the price table in formats.md §3 and Claude Code's
cost formula in §1.4, never by calling the code under test.
"""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import Usage, calc_price

from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.usage import pricing
from nightcrew.usage.pricing import (
    Cost,
    CostTotal,
    ModelPrice,
    Pricer,
    model_price_from_config,
    sum_costs,
)

TOL = Decimal("1e-6")
M = Decimal(1_000_000)

# formats.md §3, copied by hand: input, 5m write, 1h write, cache read, output (USD per MTok).
TABLE: dict[str, tuple[str, str, str, str, str]] = {
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-5-20250929": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-6": ("3", "3.75", "6", "0.30", "15"),
    "claude-opus-4-20250514": ("15", "18.75", "30", "1.50", "75"),
    "claude-opus-4-1-20250805": ("15", "18.75", "30", "1.50", "75"),
    "claude-opus-4-5-20251101": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-6": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-5": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-5-5": ("4", "5", "8", "0.20", "20"),
    "claude-sonnet-5": ("2", "2.5", "4", "0.20", "10"),
    "claude-sonnet-5-5": ("2", "2.5", "4", "0.10", "10"),
    "claude-haiku-4-5-20251001": ("1", "1.25", "2", "0.10", "5"),
    "claude-3-5-haiku-20241022": ("0.80", "1", "1.6", "0.08", "4"),
    "claude-haiku-5-5": ("0.10", "0.125", "0.2", "0.01", "0.50"),
}

# All prompts well under every long-context threshold (100k for Haiku 5.5).
VECTORS = [
    TokenCounts(input=203, output=53, cache_read=400, cache_write_5m=100),
    TokenCounts(input=12, output=1_500, cache_read=45_000, cache_write_1h=8_000),
    TokenCounts(
        input=1_000, output=2_000, cache_read=30_000, cache_write_5m=4_000, cache_write_1h=5_000
    ),
    TokenCounts(input=7, output=1),
    TokenCounts(cache_read=90_000),
]


def claude_code_cost(model: str, t: TokenCounts) -> Decimal:
    """formats.md §1.4, as recovered from the Claude Code binary (no geo, no web search)."""
    inp, w5m, w1h, read, out = (Decimal(x) for x in TABLE[model])
    creation = t.cache_write_5m + t.cache_write_1h  # cache_creation_input_tokens
    eph_1h = t.cache_write_1h
    return (
        Decimal(t.input) / M * inp
        + Decimal(t.output) / M * out
        + Decimal(t.cache_read) / M * read
        + Decimal(eph_1h) / M * w1h
        + Decimal(creation - eph_1h) / M * w5m
    )


def genai_total(model: str, t: TokenCounts) -> Decimal:
    """genai-prices called directly, with its whole-prompt meaning of input_tokens."""
    usage = Usage(
        input_tokens=t.input + t.cache_read + t.cache_write_5m + t.cache_write_1h,
        output_tokens=t.output,
        cache_read_tokens=t.cache_read,
        cache_write_tokens=t.cache_write_5m + t.cache_write_1h,
        cache_write_1h_tokens=t.cache_write_1h,
    )
    return calc_price(usage, model).total_price


def usd(cost: Cost) -> Decimal:
    assert cost.usd is not None
    return cost.usd


# ---- the real captured vector ---------------------------------------------------------------

CAPTURED = TokenCounts(input=203, output=53, cache_read=400, cache_write_5m=100)


def test_captured_vector_reported_and_priced_agree() -> None:
    pricer = Pricer()
    reported = pricer.reported(
        ModelUsage("claude-sonnet-4-5", CAPTURED, reported_cost_usd=Decimal(str(0.001899)))
    )
    assert reported == Cost(Decimal("0.001899"), "reported")
    priced = pricer.price_response("claude-sonnet-4-5", CAPTURED)
    assert priced.source == "priced"
    assert abs(usd(priced) - usd(reported)) <= TOL
    # 609 + 795 + 120 + 375 micro-dollars, exactly.
    assert usd(priced) == Decimal("0.001899")
    assert usd(pricer.price_response("claude-sonnet-4-5-20250929", CAPTURED)) == Decimal("0.001899")


# ---- agreement with Claude Code's formula -----------------------------------------------------


@pytest.mark.parametrize("use_genai", [True, False], ids=["genai-prices", "builtin-table"])
@pytest.mark.parametrize("model", sorted(TABLE))
@pytest.mark.parametrize("tokens", VECTORS, ids=lambda t: f"{t.input}-{t.output}-{t.cache_read}")
def test_priced_matches_claude_code_formula(
    model: str, tokens: TokenCounts, use_genai: bool
) -> None:
    cost = Pricer(use_genai_prices=use_genai).price_response(model, tokens)
    assert cost.source == "priced"
    assert abs(usd(cost) - claude_code_cost(model, tokens)) <= TOL


@pytest.mark.parametrize(
    ("model", "tokens", "expected"),
    [
        # 1000*3 + 2000*15 + 30000*0.30 + 4000*3.75 + 5000*6 = 87000 micro-dollars
        ("claude-sonnet-4-6", TokenCounts(1_000, 2_000, 30_000, 4_000, 5_000), "0.087"),
        # 10*5 + 100*25 + 10000*10 (1h write) = 102550
        ("claude-opus-4-5", TokenCounts(10, 100, 0, 0, 10_000), "0.10255"),
        # 100000*0.10 + 1000*5 + 2000*2 (1h write) = 19000
        ("claude-haiku-4-5", TokenCounts(0, 1_000, 100_000, 0, 2_000), "0.019"),
        # 1h writes at 2x input, 5m writes at 1.25x: 1000*6 vs 1000*3.75
        ("claude-sonnet-4", TokenCounts(0, 0, 0, 0, 1_000), "0.006"),
        ("claude-sonnet-4", TokenCounts(0, 0, 0, 1_000, 0), "0.00375"),
        # 500*4 + 50*20 + 10000*0.20 + 1000*8 = 13000
        ("claude-opus-5-5", TokenCounts(500, 50, 10_000, 0, 1_000), "0.013"),
    ],
)
def test_hand_computed_vectors(model: str, tokens: TokenCounts, expected: str) -> None:
    assert usd(Pricer().price_response(model, tokens)) == Decimal(expected)


def test_genai_mirror_agrees_with_genai_per_response() -> None:
    """Our cached copy of genai-prices' price gives genai-prices' own numbers, tiers included."""
    pricer = Pricer()
    vectors = [*VECTORS, TokenCounts(50_000, 1_000, 60_000), TokenCounts(150_000, 1_000, 100_000)]
    for model in ("claude-sonnet-4-5", "claude-haiku-5-5", "claude-opus-4-6", "claude-opus-5-5"):
        for tokens in vectors:
            assert usd(pricer.price_response(model, tokens)) == genai_total(model, tokens)


# ---- long context: per request, never on a sum -----------------------------------------------


def test_haiku_55_tier_applies_per_request() -> None:
    pricer = Pricer()
    half = TokenCounts(input=10_000, output=1_000, cache_read=50_000)  # prompt 60k
    # 10000*0.10 + 1000*0.50 + 50000*0.01 = 2000 micro-dollars each
    separately = usd(pricer.price_response("claude-haiku-5-5", half)) * 2
    assert separately == Decimal("0.004")
    # One request with the same tokens: prompt 120k > 100k, so every token at the higher rates:
    # 20000*0.50 + 2000*2.50 + 100000*0.05 = 20000 micro-dollars.
    together = usd(pricer.price_response("claude-haiku-5-5", half + half))
    assert together == Decimal("0.02")
    # A sum of responses is priced at base rates (exact here: no request crossed 100k).
    assert usd(pricer.price_total("claude-haiku-5-5", half + half)) == Decimal("0.004")


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (TokenCounts(input=100_000, output=10), "0.010005"),  # exactly 100k: base rates
        (TokenCounts(input=99_000, output=50_000), "0.0349"),  # output is not prompt
        # cache reads count: prompt 100500 > 100k -> 1000*0.50 + 99500*0.05 = 5475
        (TokenCounts(input=1_000, cache_read=99_500), "0.005475"),
        # cache writes (both TTLs) count: 1000*0.50 + 99000*0.625 + 1000*1 = 63375
        (TokenCounts(input=1_000, cache_write_5m=99_000, cache_write_1h=1_000), "0.063375"),
    ],
)
def test_haiku_55_threshold(tokens: TokenCounts, expected: str) -> None:
    for use_genai in (True, False):
        cost = Pricer(use_genai_prices=use_genai).price_response("claude-haiku-5-5", tokens)
        assert usd(cost) == Decimal(expected)


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-5", "claude-sonnet-4-20250514", "claude-sonnet-4"]
)
def test_sonnet_4_and_45_long_context(model: str) -> None:
    pricer = Pricer()
    half = TokenCounts(input=120_000, output=1_000)
    # 120000*3 + 1000*15 = 375000 each
    assert usd(pricer.price_response(model, half)) == Decimal("0.375")
    # 240000*6 + 2000*22.50 = 1485000: Anthropic's rule, which genai-prices lacks for Sonnet 4
    assert usd(pricer.price_response(model, half + half)) == Decimal("1.485")
    # exactly 200k prompt is not above the threshold
    assert usd(pricer.price_response(model, TokenCounts(input=200_000))) == Decimal("0.6")


def test_sonnet_4_disagreement_with_genai_is_deliberate() -> None:
    big = TokenCounts(input=250_000, output=1_000)
    assert genai_total("claude-sonnet-4-20250514", big) == Decimal("0.765")  # flat 3/15
    assert usd(Pricer().price_response("claude-sonnet-4-20250514", big)) == Decimal("1.5225")


# ---- unknown models, overrides, config ------------------------------------------------------


def test_unknown_model_is_none_and_warns_once_per_name() -> None:
    warnings: list[str] = []
    pricer = Pricer(warn=warnings.append)
    for _ in range(2):
        assert pricer.price_response("claude-nonexistent-9", CAPTURED) == Cost(None, None)
    assert len(warnings) == 1
    assert "'claude-nonexistent-9'" in warnings[0]
    assert "[pricing]" in warnings[0]
    assert pricer.price_response("mystery-model", CAPTURED) == Cost(None, None)
    assert len(warnings) == 2
    # Unknown to us, but Claude Code reported a cost: that still counts.
    mu = ModelUsage("mystery-model", CAPTURED, reported_cost_usd=Decimal("0.5"))
    assert pricer.reported(mu) == Cost(Decimal("0.5"), "reported")
    assert pricer.reported(ModelUsage("mystery-model", CAPTURED, None)) == Cost(None, None)
    assert len(warnings) == 2


def test_unknown_model_default_warning_goes_to_log(caplog: pytest.LogCaptureFixture) -> None:
    pricer = Pricer()
    with caplog.at_level(logging.WARNING, logger="nightcrew.usage.pricing"):
        pricer.price_response("mystery-model", CAPTURED)
        pricer.price_response("mystery-model", CAPTURED)
    assert [r.getMessage().count("mystery-model") for r in caplog.records] == [1]


def test_override_wins_and_adds_models() -> None:
    warnings: list[str] = []
    cheap = model_price_from_config(
        "claude-sonnet-4-5",
        {"input": 1, "output": 2, "cache_read": 0.1, "cache_write_5m": 1.25, "cache_write_1h": 2},
    )
    local = model_price_from_config(
        "local-llm",
        {"input": 0.5, "output": 1, "cache_read": 0, "cache_write_5m": 0, "cache_write_1h": 0},
    )
    pricer = Pricer({"claude-sonnet-4-5": cheap, "local-llm": local}, warn=warnings.append)
    # 203*1 + 53*2 + 400*0.1 + 100*1.25 = 474 micro-dollars; the dated id finds the override
    assert usd(pricer.price_response("claude-sonnet-4-5-20250929", CAPTURED)) == Decimal("0.000474")
    # 203*0.5 + 53*1 = 154.5
    assert usd(pricer.price_response("local-llm", CAPTURED)) == Decimal("0.0001545")
    assert warnings == []


def test_config_table_is_exact_decimal() -> None:
    price = model_price_from_config(
        "m",
        {"input": 3, "output": 15, "cache_read": 0.3, "cache_write_5m": 3.75, "cache_write_1h": 6},
    )
    assert price == ModelPrice(
        Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"), Decimal("6")
    )
    assert str(price.cache_read) == "0.3"  # not 0.299999999999999988897769753748...


GOOD = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write_5m": 3.75, "cache_write_1h": 6}


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({k: v for k, v in GOOD.items() if k != "output"}, "'output'"),
        ({**GOOD, "ouput": 15}, "'ouput'"),
        ({**GOOD, "input": "abc"}, "'input'"),
        ({**GOOD, "cache_read": -0.3}, "'cache_read'"),
        ({**GOOD, "cache_write_1h": True}, "'cache_write_1h'"),
        ({**GOOD, "cache_write_5m": float("nan")}, "'cache_write_5m'"),
        ({**GOOD, "output": None}, "'output'"),
    ],
)
def test_bad_config_table_names_the_key(table: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key) as info:
        model_price_from_config("my-model", table)
    assert "[pricing.my-model]" in str(info.value)


def test_model_price_tier_fields_go_together() -> None:
    base = (Decimal(1), Decimal(1), Decimal(1), Decimal(1), Decimal(1))
    with pytest.raises(ValueError):
        ModelPrice(*base, long_context_threshold=10)
    with pytest.raises(ValueError):
        ModelPrice(*base, long_context=ModelPrice(*base))


# ---- reported() ---------------------------------------------------------------------------


def test_reported_takes_float_repr_not_binary_noise() -> None:
    mu = ModelUsage("claude-sonnet-4-5", CAPTURED, reported_cost_usd=0.001899)  # type: ignore[arg-type]
    cost = Pricer().reported(mu)
    assert cost == Cost(Decimal("0.001899"), "reported")
    assert cost.usd != Decimal(0.001899)  # noqa: RUF032 (the binary float, on purpose)


def test_reported_falls_back_to_priced() -> None:
    cost = Pricer().reported(ModelUsage("claude-sonnet-4-5", CAPTURED, reported_cost_usd=None))
    assert cost == Cost(Decimal("0.001899"), "priced")


# ---- totals ---------------------------------------------------------------------------------


def test_sum_costs() -> None:
    assert sum_costs([Decimal("1.5"), None, Decimal("2.25")]) == CostTotal(Decimal("3.75"), 1)
    assert not sum_costs([Decimal("1.5"), None]).complete
    assert sum_costs([None, None]) == CostTotal(None, 2)
    assert sum_costs([]) == CostTotal(Decimal(0), 0)
    assert sum_costs([Decimal("0.1"), Decimal("0.2")]) == CostTotal(Decimal("0.3"), 0)
    assert sum_costs([Decimal("0.1"), Decimal("0.2")]).complete
    mixed: list[Decimal | Cost | None] = [
        Cost(Decimal("1"), "reported"),
        Cost(None, None),
        Decimal("2"),
    ]
    assert sum_costs(mixed) == CostTotal(Decimal("3"), 1)


# ---- cheapness and the genai-prices fallbacks ------------------------------------------------


def test_model_lookup_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[1]))
        return calc_price(*args, **kwargs)

    monkeypatch.setattr(genai_prices, "calc_price", counting)
    pricer = Pricer()
    pricer.price_response("claude-sonnet-4-5", CAPTURED)
    after_first = len(calls)
    assert after_first > 0
    for _ in range(100):
        pricer.price_response("claude-sonnet-4-5", CAPTURED)
    assert len(calls) == after_first


def test_unmirrorable_price_is_priced_by_genai_per_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pricing, "_from_genai_price", lambda price: None)
    pricer = Pricer()
    big = TokenCounts(input=150_000, output=1_000, cache_read=100_000)
    assert usd(pricer.price_response("claude-sonnet-4-5", big)) == genai_total(
        "claude-sonnet-4-5", big
    )
    # 150000*6 + 1000*22.50 + 100000*0.60 = 982500
    assert usd(pricer.price_response("claude-sonnet-4-5", big)) == Decimal("0.9825")


def test_wrong_mirror_is_rejected_by_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = ModelPrice(Decimal(3), Decimal(15), Decimal(3), Decimal(3), Decimal(3))
    monkeypatch.setattr(pricing, "_from_genai_price", lambda price: wrong)
    assert usd(Pricer().price_response("claude-sonnet-4-5", CAPTURED)) == Decimal("0.001899")


# ---- the fast per-response pricer of transcript imports ---------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-4-5-20250929",  # tiered at 200k (genai-prices' mirror)
        "claude-sonnet-4",  # tiered, our own table
        "claude-haiku-5-5",  # tiered at 100k
        "claude-opus-4-5-20251101",
        "claude-haiku-4-5",
        "gpt-4o",  # another provider through genai-prices
    ],
)
def test_response_pricer_gives_price_response_numbers(model: str) -> None:
    import random

    pricer = Pricer()
    fast = pricer.response_pricer(model)
    rng = random.Random(model)
    for _ in range(500):
        counts = [
            rng.choice((0, 1, 7, rng.randrange(400_000), rng.randrange(10**7))) for _ in "12345"
        ]
        expected = usd(pricer.price_response(model, TokenCounts(*counts)))
        text = fast(*counts)
        assert text is not None and Decimal(text) == expected, counts


def test_response_pricer_text_is_exact_and_short() -> None:
    pricer = Pricer(
        overrides={"m": ModelPrice(*(Decimal(x) for x in ["3", "15", "0.3", "3.75", "6"]))}
    )
    fast = pricer.response_pricer("m")
    assert fast(1, 0, 0, 0, 0) == "0.000003"
    assert fast(0, 0, 1, 0, 0) == "0.0000003"
    assert fast(1_000_000, 0, 0, 0, 0) == "3"
    assert fast(0, 0, 0, 0, 0) == "0"


def test_response_pricer_of_an_odd_rate_falls_back_to_decimal() -> None:
    odd = Decimal("0.0000001")  # a seventh decimal per million tokens: not whole picodollars
    pricer = Pricer(overrides={"m": ModelPrice(odd, odd, odd, odd, odd)})
    assert pricer.response_pricer("m")(3, 0, 0, 0, 0) == "0.0000000000003"


def test_response_pricer_of_an_unknown_model_is_none_and_warns_once() -> None:
    warnings: list[str] = []
    pricer = Pricer(warn=warnings.append)
    assert pricer.response_pricer("claude-imaginary-9")(1, 1, 1, 1, 1) is None
    assert pricer.response_pricer("claude-imaginary-9")(2, 2, 2, 2, 2) is None
    assert len(warnings) == 1


# ---- rate cards for worker processes, and lookups made elsewhere ----------------------------


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-5-20250929", "claude-haiku-5-5", "claude-opus-4-5-20251101"]
)
def test_a_rate_card_prices_without_the_pricer_like_price_response(model: str) -> None:
    """What a worker process does: price with the card alone (tiers included)."""
    import pickle
    import random

    pricer = Pricer()
    card = pricer.rate_card(model)
    assert card is not None
    price = pricing.card_pricer(pickle.loads(pickle.dumps(card)))
    rng = random.Random(model)
    for _ in range(300):
        counts = [rng.choice((0, 1, rng.randrange(300_000), rng.randrange(10**7))) for _ in "12345"]
        text = price(*counts)
        assert text is not None
        assert Decimal(text) == usd(pricer.price_response(model, TokenCounts(*counts))), counts


def test_no_rate_card_for_an_unknown_model_or_an_odd_rate() -> None:
    warnings: list[str] = []
    odd = Decimal("0.0000001")
    pricer = Pricer(overrides={"m": ModelPrice(odd, odd, odd, odd, odd)}, warn=warnings.append)
    assert pricer.rate_card("m") is None  # priced by response_pricer's Decimal path instead
    assert pricer.rate_card("claude-imaginary-9") is None
    assert pricer.rate_card("claude-imaginary-9") is None
    assert len(warnings) == 1 and "claude-imaginary-9" in warnings[0]


def test_prices_in_whole_dollars_and_above_read_exactly() -> None:
    pricer = Pricer(overrides={"m": ModelPrice(*[Decimal(75)] * 5)})
    fast = pricer.response_pricer("m")
    assert fast(1_000_000, 0, 0, 0, 0) == "75"
    assert fast(1_000_001, 0, 0, 0, 0) == "75.000075"
    assert fast(0, 20_000_000, 0, 0, 1) == "1500.000075"


def test_a_lookup_made_elsewhere_gives_the_same_prices_and_warnings() -> None:
    asked: list[str] = []

    def lookup(model: str) -> pricing.GenaiPrice:
        asked.append(model)
        return pricing.lookup_genai(model)

    warnings: list[str] = []
    remote = Pricer(genai_lookup=lookup, warn=warnings.append)
    local = Pricer()
    for model in ("claude-sonnet-4-5", "claude-opus-4-5-20251101", "gpt-4o"):
        assert remote.price_response(model, CAPTURED) == local.price_response(model, CAPTURED)
    assert remote.price_response("claude-imaginary-9", CAPTURED).usd is None
    assert asked == ["claude-sonnet-4-5", "claude-opus-4-5-20251101", "gpt-4o",
                     "claude-imaginary-9"]  # fmt: skip
    assert len(warnings) == 1


def test_overrides_and_our_own_choices_need_no_lookup() -> None:
    def no_lookup(model: str) -> pricing.GenaiPrice:
        raise AssertionError(f"looked up {model}")

    rate = ModelPrice(Decimal(1), Decimal(2), Decimal(3), Decimal(4), Decimal(5))
    pricer = Pricer(overrides={"mine": rate}, genai_lookup=no_lookup)
    assert usd(pricer.price_response("mine", TokenCounts(input=1_000_000))) == Decimal(1)
    assert pricer.rate_card("claude-sonnet-4") is not None  # _PREFER_BUILTIN


def test_a_price_helper_process_answers_like_genai_prices_here() -> None:
    from nightcrew.usage.price_helper import PriceHelper

    with PriceHelper() as helper:
        pid = helper.pid
        remote = Pricer(genai_lookup=helper.lookup)
        for model in ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "gpt-4o"):
            assert remote.rate_card(model) == Pricer().rate_card(model)
        assert helper.lookup("claude-imaginary-9") is None
    assert helper.pid is None
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped


def test_lookups_go_on_here_when_the_price_helper_dies() -> None:
    import signal

    from nightcrew.usage.price_helper import PriceHelper

    with PriceHelper() as helper:
        assert helper.pid is not None
        os.kill(helper.pid, signal.SIGKILL)
        found = helper.lookup("claude-opus-4-5-20251101")
        assert found == pricing.lookup_genai("claude-opus-4-5-20251101")
        assert helper.pid is None
