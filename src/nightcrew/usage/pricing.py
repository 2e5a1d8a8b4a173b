"""Tokens to dollars: the only place in nightcrew that prices tokens.

Rules this module keeps (see the research notes, formats.md §1.4 and §3):

* Token counts use Anthropic's meaning: ``TokenCounts.input`` is the *uncached* prompt only.
  genai-prices' ``Usage.input_tokens`` is the *whole* prompt (uncached + cache read + cache
  write), so :func:`_genai_usage` adds the cache tokens in before asking it.
* 5-minute and 1-hour cache writes have different rates (1.25x and 2x input on most models).
* A long-context tier applies *per request*: when one request's prompt (input + cache read +
  cache write) exceeds the threshold, every token of that request, output included, is billed
  at the higher rates. So :meth:`Pricer.price_response` must be called once per API response,
  never on a sum. :meth:`Pricer.price_total` prices a sum at the base rates, which is exact
  when no request crossed the threshold and a lower bound otherwise.
* An unknown model costs ``None`` (unknown), never 0, and is warned about once per name.
* Money is :class:`~decimal.Decimal` at full precision; callers round for display.

Where a price comes from, first match wins:

1. ``overrides`` (``[pricing.<model>]`` in nightcrew.toml), by exact id or by the id without
   its date suffix (``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``);
2. our own table, for the few models where we knowingly disagree with genai-prices
   (``_PREFER_BUILTIN``);
3. genai-prices (offline snapshot, no network). Its price for a model is looked up once and
   turned into a :class:`ModelPrice`, so pricing a streamed message is plain Decimal
   arithmetic rather than a ~70 µs library call. genai-prices 0.2.3 prices 1-hour writes
   (``cache_write_1h_mtok``) and models tiers as ``TieredPrices`` keyed on its total
   ``input_tokens``, which is the same test as Anthropic's. A price shape we cannot mirror
   (several tiers, a per-request fee) is priced by calling genai-prices for each response;
4. our own table (``_BUILTIN``) for models genai-prices lacks or may drop later (LiteLLM
   already dropped the retired Sonnet 4, Opus 4/4.1 and Haiku 3.5);
5. otherwise unknown.

Where genai-prices and Anthropic disagree: Anthropic bills Sonnet 4 *and* Sonnet 4.5 requests
over 200k prompt tokens (the 1M-context beta) at $6 / $22.50 / $7.50 write / $0.60 read
($12 1h write). genai-prices 0.2.3 applies that tier to Sonnet 4.5 only, so Sonnet 4 takes its
price from our table. Sonnet/Opus 4.6 keep genai-prices' dated data, which drops their >200k
tier from 2026-03-13 (1M context generally available at the standard rates); Claude Code's own
table has no Sonnet 4.x tier at all, so its ``costUSD`` is lower than ours above 200k.

Not priced here, because :class:`TokenCounts` does not carry them: web searches ($0.01
each) and the 1.1x ``inference_geo: "us"`` multiplier. Claude Code's own ``costUSD`` includes
both, so prefer :meth:`Pricer.reported` for final totals.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal, NamedTuple

from nightcrew.core.usage import ModelUsage, TokenCounts

if TYPE_CHECKING:
    # genai-prices takes ~150 ms to import: it loads only when a model is first
    # priced, so commands that price nothing (a warm ``usage import``) stay fast.
    from genai_prices import Usage
    from genai_prices.types import ModelPrice as GenaiModelPrice

CostSource = Literal["reported", "priced"]

_MTOK = Decimal(1_000_000)
_DATE_SUFFIX = re.compile(r"[-@]\d{8}$")


def _log_warning(message: str) -> None:
    """The default ``warn``: logging is loaded only when something is said (it costs
    start-up time that every report would pay)."""
    import logging

    logging.getLogger(__name__).warning(message)


@dataclass(frozen=True)
class Cost:
    usd: Decimal | None  # None = unknown (never 0 for unknown)
    source: CostSource | None


_UNKNOWN = Cost(None, None)
# Prices one response from its counts (input, output, cache read, 5m write, 1h write) as
# Decimal text; None = unknown. See Pricer.response_pricer.
ResponsePricer = Callable[[int, int, int, int, int], str | None]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens, with an optional long-context tier."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    # Prompt tokens (input + cache_read + cache_write) above which every token of that
    # request is billed at the ``long_context`` rates.
    long_context_threshold: int | None = None
    long_context: ModelPrice | None = None

    def __post_init__(self) -> None:
        if (self.long_context_threshold is None) != (self.long_context is None):
            raise ValueError("long_context_threshold and long_context go together")
        if self.long_context is not None and self.long_context.long_context is not None:
            raise ValueError("a long-context tier cannot have a tier of its own")

    def rates_for(self, prompt_tokens: int) -> ModelPrice:
        """The rates that apply to one request with this many prompt tokens."""
        threshold = self.long_context_threshold
        if self.long_context is not None and threshold is not None and prompt_tokens > threshold:
            return self.long_context
        return self

    def cost(self, tokens: TokenCounts, *, per_request: bool = True) -> Decimal:
        """Cost of ``tokens``; ``per_request=False`` ignores the tier (for sums)."""
        prompt = tokens.input + tokens.cache_read + tokens.cache_write
        r = self.rates_for(prompt) if per_request else self
        micro_usd = (
            tokens.input * r.input
            + tokens.output * r.output
            + tokens.cache_read * r.cache_read
            + tokens.cache_write_5m * r.cache_write_5m
            + tokens.cache_write_1h * r.cache_write_1h
        )
        return micro_usd / _MTOK


def _mp(inp: str, out: str, read: str, w5m: str, w1h: str) -> ModelPrice:
    return ModelPrice(Decimal(inp), Decimal(out), Decimal(read), Decimal(w5m), Decimal(w1h))


# formats.md §3 (Anthropic's price page, the Claude Code 2.1.329 table and genai-prices 0.2.3).
_SONNET_4X_LONG = dataclasses.replace(
    _mp("3", "15", "0.30", "3.75", "6"),
    long_context_threshold=200_000,
    long_context=_mp("6", "22.50", "0.60", "7.50", "12"),
)
_OPUS_4 = _mp("15", "75", "1.50", "18.75", "30")
_OPUS_45 = _mp("5", "25", "0.50", "6.25", "10")
_BUILTIN: dict[str, ModelPrice] = {
    **dict.fromkeys(("claude-opus-4", "claude-opus-4-0", "claude-opus-4-1"), _OPUS_4),
    **dict.fromkeys(("claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7"), _OPUS_45),
    **dict.fromkeys(("claude-opus-4-8", "claude-opus-5"), _OPUS_45),
    "claude-opus-5-5": _mp("4", "20", "0.20", "5", "8"),
    **dict.fromkeys(("claude-sonnet-4", "claude-sonnet-4-0", "claude-sonnet-4-5"), _SONNET_4X_LONG),
    "claude-sonnet-4-6": _mp("3", "15", "0.30", "3.75", "6"),
    "claude-sonnet-5": _mp("2", "10", "0.20", "2.50", "4"),
    "claude-sonnet-5-5": _mp("2", "10", "0.10", "2.50", "4"),
    "claude-haiku-4-5": _mp("1", "5", "0.10", "1.25", "2"),
    "claude-3-5-haiku": _mp("0.80", "4", "0.08", "1", "1.6"),
    "claude-haiku-5-5": dataclasses.replace(
        _mp("0.10", "0.50", "0.01", "0.125", "0.2"),
        long_context_threshold=100_000,
        long_context=_mp("0.50", "2.50", "0.05", "0.625", "1"),
    ),
}
# Anthropic's rule beats genai-prices here (it has no >200k tier for Sonnet 4).
_PREFER_BUILTIN = frozenset({"claude-sonnet-4", "claude-sonnet-4-0"})


@dataclass(frozen=True)
class _GenaiRef:
    """A genai-prices model whose price shape ModelPrice cannot mirror: priced per call."""

    model_ref: str
    provider_id: str


_Resolved = ModelPrice | _GenaiRef | None
GenaiPrice = ModelPrice | _GenaiRef | None  # what lookup_genai answers


def _base_id(model: str) -> str:
    return _DATE_SUFFIX.sub("", model)


def _genai_usage(tokens: TokenCounts) -> Usage:
    from genai_prices import Usage

    # genai-prices counts the whole prompt as input; cache_write_tokens is both TTLs
    # together, and cache_write_1h_tokens is the part of it billed at the 1-hour rate.
    return Usage(
        input_tokens=tokens.input + tokens.cache_read + tokens.cache_write,
        output_tokens=tokens.output,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        cache_write_1h_tokens=tokens.cache_write_1h,
    )


_GENAI_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
_GENAI_1H = "cache_write_1h_mtok"
# Distinct counts, so a token type billed at the wrong rate shows; the large one crosses
# any long-context threshold below 21M prompt tokens.
_PROBES = (TokenCounts(3, 5, 7, 11, 13), TokenCounts(3_000_017, 5, 7_000_003, 11_000_027, 13))


def _from_genai_price(price: GenaiModelPrice) -> ModelPrice | None:
    """Mirror a genai-prices token price as a ModelPrice, or None if its shape does not fit."""
    from genai_prices.types import TieredPrices

    low: dict[str, Decimal] = {}
    high: dict[str, Decimal] = {}
    threshold: int | None = None
    for key in (*_GENAI_KEYS, _GENAI_1H):
        value = getattr(price, key, None)
        if isinstance(value, TieredPrices):
            if len(value.tiers) != 1 or threshold not in (None, value.tiers[0].start):
                return None
            threshold = value.tiers[0].start
            low[key], high[key] = value.base, value.tiers[0].price
        elif isinstance(value, Decimal):
            low[key] = high[key] = value
    if "input_mtok" not in low or "output_mtok" not in low:
        return None

    def build(r: dict[str, Decimal]) -> ModelPrice:
        # What genai-prices does with an unpriced unit: cache reads and writes fall back
        # to the input rate, 1-hour writes to the generic cache-write rate.
        write = r.get("cache_write_mtok", r["input_mtok"])
        return ModelPrice(
            input=r["input_mtok"],
            output=r["output_mtok"],
            cache_read=r.get("cache_read_mtok", r["input_mtok"]),
            cache_write_5m=write,
            cache_write_1h=r.get(_GENAI_1H, write),
        )

    base = build(low)
    if threshold is None:
        return base
    return dataclasses.replace(base, long_context_threshold=threshold, long_context=build(high))


def load_genai_prices() -> None:
    """Load genai-prices and its tables (~0.2 s), which a first lookup does otherwise."""
    from genai_prices.data_snapshot import get_snapshot

    get_snapshot()


def lookup_genai(model: str) -> GenaiPrice:
    """genai-prices' price for ``model``: mirrored if the mirror gives genai-prices' own
    numbers on the probes (a per-request fee or an unusual unit would not), else by ref;
    None if genai-prices does not know it. For a Pricer's ``genai_lookup`` made elsewhere
    (see :mod:`nightcrew.usage.price_helper`)."""
    from genai_prices import calc_price

    try:
        calc = calc_price(_genai_usage(TokenCounts()), model)
    except LookupError:
        return None
    ref = _GenaiRef(model, calc.provider.id)
    mirror = _from_genai_price(calc.model_price)
    if mirror is None or any(mirror.cost(t) != _genai_cost(ref, t) for t in _PROBES):
        return ref
    return mirror


def _genai_cost(ref: _GenaiRef, tokens: TokenCounts) -> Decimal:
    from genai_prices import calc_price

    return calc_price(_genai_usage(tokens), ref.model_ref, provider_id=ref.provider_id).total_price


class Pricer:
    """Prices token counts per model. Model lookups are cached for the Pricer's lifetime."""

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice] | None = None,
        warn: Callable[[str], None] | None = None,
        *,
        unknown: Callable[[str], None] | None = None,
        use_genai_prices: bool = True,
        genai_lookup: Callable[[str], GenaiPrice] | None = None,
    ) -> None:
        """``genai_lookup`` replaces :func:`lookup_genai` (the same answers, found in a
        helper process: see :mod:`nightcrew.usage.price_helper`). ``unknown``, when
        given, is told the name of a model with no known price instead of ``warn``
        being given a sentence (a run makes it an event)."""
        self._overrides = dict(overrides or {})
        self._warn = warn if warn is not None else _log_warning
        self._unknown = unknown
        self._use_genai = use_genai_prices
        self._genai_lookup = genai_lookup if genai_lookup is not None else lookup_genai
        self._resolved: dict[str, _Resolved] = {}

    def preload(self) -> None:
        """Load genai-prices and its tables now rather than at the first lookup (they take
        ~0.2 s): for a caller that waits on something else now and will price soon.
        Nothing to do when lookups are made elsewhere."""
        if self._use_genai and self._genai_lookup is lookup_genai:
            load_genai_prices()

    def price_response(self, model: str, tokens: TokenCounts) -> Cost:
        """Cost of one API response (long-context tiers apply)."""
        return self._price(model, tokens, per_request=True)

    def response_pricer(self, model: str) -> ResponsePricer:
        """A function pricing one response of ``model`` from its counts (input, output,
        cache read, 5m write, 1h write) as Decimal text, None when the price is unknown:
        the numbers of :meth:`price_response`, for the hot loop of a transcript import.
        A plain rate card is priced in integer picodollars (see :class:`RateCard`), which
        is exact and several times cheaper than Decimal arithmetic."""
        card = self.rate_card(model)
        if card is not None:
            return card_pricer(card)
        if self._resolved[model] is None:
            return _unknown_text

        def slow(i: int, o: int, r: int, w5m: int, w1h: int) -> str | None:
            usd = self.price_response(model, TokenCounts(i, o, r, w5m, w1h)).usd
            return None if usd is None else format(usd, "f")

        return slow

    def rate_card(self, model: str) -> RateCard | None:
        """``model``'s price as a :class:`RateCard`, which :func:`card_pricer` turns into
        the numbers of :meth:`price_response` without this Pricer (so a worker process can
        price with it). None when the price is unknown (warned about once, like every
        lookup) or has a shape a card cannot hold; then use :meth:`response_pricer`."""
        if model not in self._resolved:
            self._resolved[model] = self._resolve(model)
        price = self._resolved[model]
        return _rate_card(price) if isinstance(price, ModelPrice) else None

    def price_total(self, model: str, tokens: TokenCounts) -> Cost:
        """Cost of a sum over many responses, at base rates: a lower bound for tiered models
        if any single request crossed the threshold, exact otherwise."""
        return self._price(model, tokens, per_request=False)

    def reported(self, model_usage: ModelUsage) -> Cost:
        """Claude Code's own ``costUSD`` for one model, else our price of its totals."""
        raw: object = model_usage.reported_cost_usd
        if raw is None:
            return self.price_total(model_usage.model, model_usage.tokens)
        if isinstance(raw, Decimal):
            return Cost(raw, "reported")
        if isinstance(raw, float | int) and not isinstance(raw, bool) and math.isfinite(raw):
            # The JSON number itself: take its shortest repr (0.001899), not binary noise.
            return Cost(Decimal(str(raw)), "reported")
        raise TypeError(f"costUSD must be a Decimal, got {type(raw).__name__}")

    def _price(self, model: str, tokens: TokenCounts, *, per_request: bool) -> Cost:
        if model not in self._resolved:
            self._resolved[model] = self._resolve(model)
        price = self._resolved[model]
        if price is None:
            return _UNKNOWN
        if isinstance(price, ModelPrice):
            return Cost(price.cost(tokens, per_request=per_request), "priced")
        return Cost(_genai_cost(price, tokens), "priced")

    def _resolve(self, model: str) -> _Resolved:
        keys = (model, _base_id(model))
        for key in keys:
            if key in self._overrides:
                return self._overrides[key]
        for key in keys:
            if key in _PREFER_BUILTIN:
                return _BUILTIN[key]
        if self._use_genai and (found := self._genai_lookup(model)) is not None:
            return found
        for key in keys:
            if key in _BUILTIN:
                return _BUILTIN[key]
        if self._unknown is not None:
            self._unknown(model)
            return None
        self._warn(
            f"no price known for model {model!r}: its cost is recorded as unknown; "
            "add it under [pricing] in nightcrew.toml"
        )
        return None


_PICO_PER_USD = 10**12


def _unknown_text(i: int, o: int, r: int, w5m: int, w1h: int) -> None:
    return None


_PicoRates = tuple[int, int, int, int, int]  # input, output, cache read, 5m write, 1h write


class RateCard(NamedTuple):
    """A model's price in whole picodollars per token (input, output, cache read,
    5m write, 1h write), with its long-context tier if it has one. Every rate with at most
    six decimals per million tokens is a whole number of picodollars per token, so a
    response's cost is an exact integer sum. A plain tuple of ints: it pickles small and
    needs nothing of this module's lookups to use (see :func:`card_pricer`)."""

    base: _PicoRates
    long_context_threshold: int | None = None
    long_context: _PicoRates | None = None


def _pico_rates(price: ModelPrice) -> _PicoRates | None:
    """Picodollars per token for each rate, or None if one is not a whole number of them."""
    rates = []
    for per_mtok in (price.input, price.output, price.cache_read, price.cache_write_5m,
                     price.cache_write_1h):  # fmt: skip
        pico = per_mtok * 1_000_000  # USD per million tokens = micro-USD per token
        if pico != pico.to_integral_value():
            return None
        rates.append(int(pico))
    return rates[0], rates[1], rates[2], rates[3], rates[4]


def _rate_card(price: ModelPrice) -> RateCard | None:
    base = _pico_rates(price)
    if base is None:
        return None
    if price.long_context is None:
        return RateCard(base)
    tier = _pico_rates(price.long_context)
    return None if tier is None else RateCard(base, price.long_context_threshold, tier)


_FRACTION_PREFIX = tuple("0." + "0" * zeros for zeros in range(12))


def pico_text(pico: int) -> str:
    """Picodollars as the shortest exact decimal text of their USD value."""
    if 0 < pico < _PICO_PER_USD:  # the usual response: four times cheaper than divmod
        digits = str(pico)
        return (_FRACTION_PREFIX[12 - len(digits)] + digits).rstrip("0")
    usd, frac = divmod(pico, _PICO_PER_USD)
    return f"{usd}.{frac:012d}".rstrip("0") if frac else str(usd)


def card_pricer(card: RateCard) -> ResponsePricer:
    """A function pricing one response from its counts (input, output, cache read,
    5m write, 1h write) with ``card``: Decimal text, the same as
    :meth:`Pricer.price_response` gives for the price the card came from. A pure
    function of the card, for worker processes that have no Pricer."""
    a, b, c, d, e = card.base
    threshold, tier = card.long_context_threshold, card.long_context
    if tier is None or threshold is None:

        def flat(i: int, o: int, r: int, w5m: int, w1h: int) -> str | None:
            return pico_text(i * a + o * b + r * c + w5m * d + w1h * e)

        return flat
    ta, tb, tc, td, te = tier

    def tiered(i: int, o: int, r: int, w5m: int, w1h: int) -> str | None:
        if i + r + w5m + w1h > threshold:
            return pico_text(i * ta + o * tb + r * tc + w5m * td + w1h * te)
        return pico_text(i * a + o * b + r * c + w5m * d + w1h * e)

    return tiered


@dataclass(frozen=True)
class CostTotal:
    """A total that can say "at least $X, some cost unknown".

    ``usd`` sums the known costs; ``unknown`` counts the costs that were unknown. ``usd`` is
    None only when every cost was unknown; an empty total is ``Decimal(0)``.
    """

    usd: Decimal | None
    unknown: int

    @property
    def complete(self) -> bool:
        return self.unknown == 0


def sum_costs(costs: Iterable[Decimal | Cost | None]) -> CostTotal:
    total = Decimal(0)
    known = unknown = 0
    for item in costs:
        usd = item.usd if isinstance(item, Cost) else item
        if usd is None:
            unknown += 1
        else:
            total += usd
            known += 1
    return CostTotal(None if unknown and not known else total, unknown)


_CONFIG_KEYS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def model_price_from_config(name: str, table: Mapping[str, object]) -> ModelPrice:
    """A ``[pricing.<name>]`` table (USD per million tokens, all five keys) as a ModelPrice."""
    where = f"[pricing.{name}]"
    for key in table:
        if key not in _CONFIG_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; expected {', '.join(_CONFIG_KEYS)}")
    r: dict[str, Decimal] = {}
    for key in _CONFIG_KEYS:
        if key not in table:
            raise ValueError(f"{where}: missing key {key!r} (USD per million tokens)")
        value = table[key]
        rate: Decimal | None = None
        if isinstance(value, int | float | str | Decimal) and not isinstance(value, bool):
            try:
                rate = Decimal(str(value))
            except InvalidOperation:
                rate = None
        if rate is None or not rate.is_finite() or rate < 0:
            raise ValueError(f"{where}: {key!r} must be a non-negative number, got {value!r}")
        r[key] = rate
    return ModelPrice(
        r["input"], r["output"], r["cache_read"], r["cache_write_5m"], r["cache_write_1h"]
    )
