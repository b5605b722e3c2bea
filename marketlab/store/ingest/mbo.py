"""Generic order-by-order (L3 / market-by-order) files -> store events: the ``ingest/mbo`` format.

Schema (CSV with a header row, or Parquet), modelled on Databento's MBO schema; one row per venue message,
in the venue's order (rows are never re-sorted; ``ts_event`` must not decrease within a symbol):

==============  ========  ====================================================================================
column          required  meaning
==============  ========  ====================================================================================
``ts_event``    yes       event time: int ns since the epoch (UTC), or an ISO-8601 string (``...Z`` / offset)
``order_id``    yes       venue order id, int > 0 (ignored on ``trade``/``clear``/``none`` rows)
``side``        yes       ``B``/``A``/``N`` (Databento: bid, ask, none), ``buy``/``sell``/``none`` or +1/-1/0
``price``       yes       price in currency units (decimal); ``tick_size`` turns it into integer ticks
``size``        yes       int >= 0 (lots); meaning by action below
``action``      yes       ``A``/``add``, ``C``/``cancel``, ``M``/``modify``, ``F``/``fill``, ``T``/``trade``,
                          ``R``/``clear``, ``N``/``none``; and ``D``/``delete`` (not Databento's: a cancel known
                          to remove the whole order, for feeds and converters that say so)
``flags``       no        Databento's flag byte; accepted and ignored
``symbol``      no        instrument; else the ``symbol`` option, else the file name's stem
==============  ========  ====================================================================================

Actions -> events (LOBSTER type codes of the store's EVENTS schema; ``seq`` counts per symbol and day):

* ``add`` -> 1. ``fill`` (a resting order traded) -> 4. ``trade`` (the aggressor's side of a trade, or a
  hidden execution; the visible book does not change) -> 5; a trade with side ``N`` is dropped (the store
  needs a side). ``delete`` -> 3 with the row's size.
* ``cancel`` -> 2, or 3 when it takes what the file says the order still has (its ``add`` minus later
  reductions); ``size`` is the lots that left the book, or with ``reduce_size="remaining"`` what the order
  has left after the message (cancels and fills; needs the order's add in the file).
* ``modify`` (new price and size): a lower size at the same price -> 2 (keeps priority); a new price or a
  larger size -> 3 of the old order then 1 of the new one with the same id (loses priority, as the engine's
  price-changing modify does); an unchanged order -> nothing.
* ``clear`` (the venue resets the book) -> 3 for every order the file added that is still live, then they
  are forgotten; ``none`` -> nothing.

Traps, each handled here and counted in the report's notes (``meta["notes"]``):

* **Orders that predate the file** (a cancel, fill or delete of an id the file never added): kept as they
  are with ``unknown_orders="keep"`` (a replay in tolerant mode takes them from the seeded book), dropped
  with ``"drop"``. A modify of such an order becomes an add of its new state.
* **Delete before create** (the venue publishes an order's cancel, fill or delete before its add): the
  removal waits for the add; an order deleted (or wholly removed) that way never rests, a partly reduced
  one rests with what is left.
* **Double deletes / reductions of a gone order** (an id whose add and removal are both in the file):
  dropped (a second delete would take liquidity that other orders hold). An add that reuses a live id is
  a DataError; reusing a gone id starts a new order.
* **Create-before-fill races** (a taker's add published before the fills that make room for it, so it
  crosses the rebuilt book for a few messages): ``crossing_add`` as in :class:`marketlab.lob.VenuePolicy`.
  ``"rest"`` (default) keeps the rows as they are (a replay with the same policy rests the add); ``"reject"``
  and ``"defer"`` run the events through the engine with that policy: a rejected add and every later row of
  its id are dropped; a deferred add is written where it rests (after the fills that uncross the book, with
  what is left of it) and its own fills while it waited are dropped (they never touched the book).
  These two need a full-depth feed: where a venue omits messages beyond some depth (LOBSTER level-L files),
  orders removed out of view stay in the rebuilt book and later adds look crossing (a GOOG level-10 day
  through ``to_mbo``: 31,300 of its 71,258 adds), so such files keep ``"rest"``. The pass runs the
  engine one row at a time (about 2.5-3 s of CPU for a 150k-row day).
* **Stub orders** far from the market (0.01 bids, 99,999.99 asks): ordinary rows; the engine keeps them
  on far levels.
* **Price-changing modifies**: cancel + add, above.

Options: ``symbol``, ``tick_size`` (currency per tick, default 0.01), ``lot_size`` (default 1.0),
``currency`` ("USD"), ``crossing_add`` ("rest" | "reject" | "defer"), ``reduce_size`` ("left" |
"remaining"), ``unknown_orders`` ("keep" | "drop"). Bad input is a one-line :class:`DataError` naming the
file, row and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from marketlab.core.errors import DataError

REQUIRED = ("ts_event", "order_id", "side", "price", "size", "action")
ACTIONS = {"A": "add", "C": "cancel", "M": "modify", "F": "fill", "T": "trade", "R": "clear", "N": "none", "D": "delete"}
ACTIONS.update({v.upper(): v for v in ACTIONS.values()})
SIDES = {"B": 1, "BUY": 1, "BID": 1, "+1": 1, "1": 1, "A": -1, "SELL": -1, "ASK": -1, "-1": -1, "N": 0, "NONE": 0, "0": 0}
OPTIONS = {"symbol", "tick_size", "lot_size", "currency", "crossing_add", "reduce_size", "unknown_orders"}
CHOICES = {"crossing_add": ("rest", "reject", "defer"), "reduce_size": ("left", "remaining"), "unknown_orders": ("keep", "drop")}
E_ADD, E_CANCEL, E_DELETE, E_EXECUTE, E_HIDDEN = 1, 2, 3, 4, 5


@dataclass
class MboOptions:
    """Validated ``ingest/mbo`` options (see the module docstring)."""

    symbol: str | None = None
    tick_size: float = 0.01
    lot_size: float = 1.0
    currency: str = "USD"
    crossing_add: str = "rest"
    reduce_size: str = "left"
    unknown_orders: str = "keep"

    @classmethod
    def parse(cls, options: dict[str, Any]) -> MboOptions:
        """Options from ``**options``; an unknown name or a bad value is a one-line DataError."""
        unknown = set(options) - OPTIONS
        if unknown:
            raise DataError(None, f"unknown mbo option(s) {sorted(unknown)} (known: {sorted(OPTIONS)})")
        out = cls(**options)
        for name, allowed in CHOICES.items():
            if getattr(out, name) not in allowed:
                raise DataError(None, f"mbo option {name}={getattr(out, name)!r} must be one of {list(allowed)}")
        for name in ("tick_size", "lot_size"):
            v = getattr(out, name)
            if not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
                raise DataError(None, f"mbo option {name} must be a positive number, got {v!r}")
        return out


@dataclass
class Counts:
    """What the conversion did besides 1:1 rows (the ingest report's notes)."""

    rows: int = 0
    events: int = 0
    unknown_kept: int = 0
    unknown_dropped: int = 0
    gone_dropped: int = 0
    modify_split: int = 0
    race_delete_before_create: int = 0
    modify_of_unknown_as_add: int = 0
    modify_unchanged: int = 0
    clear_deletes: int = 0
    delete_size_differs: int = 0
    trade_without_side: int = 0
    none_rows: int = 0
    crossing_rejected: int = 0
    rows_of_rejected_adds: int = 0
    deferred_adds: int = 0
    deferred_fills_dropped: int = 0
    deferred_never_rested: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def as_notes(self) -> dict[str, int]:
        """Non-zero counts as a plain dict."""
        d = {k: v for k, v in self.__dict__.items() if k != "extra" and v}
        d.update(self.extra)
        return d


def read_table(path: Path) -> pl.DataFrame:
    """The file as a DataFrame with the required columns (Parquet by suffix, else CSV with a header)."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            df = pl.read_csv(path, infer_schema_length=0)  # every column as text: parsed and checked here
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, reported in one line
        raise DataError(path, f"cannot read MBO table ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    for c in REQUIRED:
        if c not in df.columns:
            raise DataError(path, "missing column", field=c)
    return df


def _bad(path: Path, df: pl.DataFrame, mask: np.ndarray, col: str, what: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        raise DataError(path, what, field=col, row=i + 2, value=df[col][i])  # file line: header is line 1


def _ts_ns(path: Path, df: pl.DataFrame) -> np.ndarray:
    s = df["ts_event"]
    if s.dtype.is_integer():
        return s.to_numpy().astype(np.int64)
    txt = s.cast(pl.String)
    num = txt.str.strip_chars().cast(pl.Int64, strict=False)
    if num.null_count() == 0:
        return num.to_numpy()
    iso = txt.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
    bad = iso.is_null().to_numpy() & num.is_null().to_numpy()
    _bad(path, df, bad, "ts_event", "not an integer ns timestamp or ISO-8601 time")
    return np.where(num.is_null().to_numpy(), iso.dt.epoch("ns").to_numpy(), num.fill_null(0).to_numpy()).astype(np.int64)


def _ints(path: Path, df: pl.DataFrame, col: str) -> np.ndarray:
    s = df[col].cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
    _bad(path, df, s.is_null().to_numpy(), col, "not an integer")
    return s.to_numpy()


def columns(path: Path, df: pl.DataFrame, opt: MboOptions) -> dict[str, np.ndarray]:
    """Typed, checked columns: ts (ns), order_id, side (+1/-1/0), price (ticks), size, action (str)."""
    action = df["action"].cast(pl.String).str.strip_chars().str.to_uppercase().replace_strict(
        ACTIONS, default=None).to_numpy()
    _bad(path, df, np.array([a is None for a in action], dtype=bool), "action", f"unknown action (known: {sorted(set(ACTIONS))})")
    side = df["side"].cast(pl.String).str.strip_chars().str.to_uppercase().replace_strict(SIDES, default=None,
                                                                                         return_dtype=pl.Int64)
    _bad(path, df, side.is_null().to_numpy(), "side", "side must be B/A/N, buy/sell/none or +1/-1/0")
    px = df["price"].cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    pxv = px.to_numpy()
    _bad(path, df, px.is_null().to_numpy() | ~np.isfinite(np.nan_to_num(pxv, nan=np.inf)), "price", "not a finite number")
    ticks = np.rint(pxv / opt.tick_size)
    book_row = np.isin(action, ["add", "modify", "cancel", "fill", "delete", "trade"])
    off = np.abs(pxv / opt.tick_size - ticks) > 1e-6 * np.maximum(1.0, np.abs(ticks))
    _bad(path, df, off & book_row, "price", f"price not on the tick grid ({opt.tick_size})")
    _bad(path, df, (ticks <= 0) & np.isin(action, ["add", "modify"]), "price", "price must be > 0")
    size = _ints(path, df, "size")
    _bad(path, df, size < 0, "size", "size must be >= 0")
    _bad(path, df, (size == 0) & np.isin(action, ["add"]), "size", "an add needs size > 0")
    oid = _ints(path, df, "order_id")
    needs_id = np.isin(action, ["add", "modify", "cancel", "fill", "delete"])
    _bad(path, df, (oid <= 0) & needs_id, "order_id", "order_id must be > 0")
    sd = side.to_numpy()
    _bad(path, df, (sd == 0) & np.isin(action, ["add", "modify", "cancel", "fill", "delete"]), "side",
         "this action needs side B or A")
    ts = _ts_ns(path, df)
    return {"ts": ts, "order_id": oid, "side": sd.astype(np.int64), "price": ticks.astype(np.int64), "size": size,
            "action": action}


def translate(cols: dict[str, np.ndarray], opt: MboOptions, counts: Counts, path: Path | None = None) -> np.ndarray:
    """MBO rows of one symbol -> ``int64[m, 6]`` event rows ``ts, type, order_id, side, price, size`` (the
    rules of the module docstring, before the ``crossing_add`` pass)."""
    live: dict[int, list[int]] = {}  # id -> [side, price, size] of orders added in the file
    gone: set[int] = set()
    # delete-before-create races: reductions of an id whose add comes later in the file wait for it
    act_arr, oid_arr = cols["action"], cols["order_id"]
    add_rows = np.flatnonzero(act_arr == "add")
    first_add = dict(zip(oid_arr[add_rows][::-1].tolist(), add_rows[::-1].tolist(), strict=True))
    early: dict[int, int] = {}  # id -> lots removed before its add (-1: deleted before its add)
    out: list[tuple[int, int, int, int, int, int]] = []
    remaining = opt.reduce_size == "remaining"
    keep_unknown = opt.unknown_orders == "keep"
    rows = zip(cols["ts"].tolist(), cols["action"].tolist(), cols["order_id"].tolist(), cols["side"].tolist(),
               cols["price"].tolist(), cols["size"].tolist(), strict=True)
    for row, (ts, act, oid, side, price, size) in enumerate(rows):
        counts.rows += 1
        if act == "add":
            if oid in live:
                raise DataError(path, f"add of live order id {oid} (ids must be unique while live)", field="order_id",
                                row=row + 2, value=oid)
            gone.discard(oid)
            taken = early.pop(oid, 0)
            if taken:
                counts.race_delete_before_create += 1
                if taken < 0 or taken >= size:  # removed before it was created: it never rests
                    gone.add(oid)
                    continue
                size -= taken
            live[oid] = [side, price, size]
            out.append((ts, E_ADD, oid, side, price, size))
        elif act in ("cancel", "fill", "delete"):
            o = live.get(oid)
            if o is None and first_add.get(oid, -1) > row and oid not in gone:
                # its add is still to come (the venue published the removal first): applied to the add
                early[oid] = -1 if act == "delete" or early.get(oid, 0) < 0 else early.get(oid, 0) + size
                continue
            if o is None:
                if oid in gone:
                    counts.gone_dropped += 1
                elif remaining and act != "delete":
                    counts.extra["remaining_size_of_unknown_order_dropped"] = counts.extra.get(
                        "remaining_size_of_unknown_order_dropped", 0) + 1
                elif keep_unknown:
                    counts.unknown_kept += 1
                    typ = E_DELETE if act == "delete" else (E_EXECUTE if act == "fill" else E_CANCEL)
                    out.append((ts, typ, oid, side, price, size))
                else:
                    counts.unknown_dropped += 1
                continue
            q = o[2]
            left = q - size if remaining and act != "delete" else size
            if act == "delete":
                if size != q:
                    counts.delete_size_differs += 1
                typ, left, done = E_DELETE, size, True
            elif left >= q:
                typ, left, done = (E_EXECUTE if act == "fill" else E_DELETE), q, True
            else:
                typ, done = (E_EXECUTE if act == "fill" else E_CANCEL), False
            if left <= 0 and not done:
                counts.extra["empty_reductions_dropped"] = counts.extra.get("empty_reductions_dropped", 0) + 1
                continue
            out.append((ts, typ, oid, o[0], o[1], left))
            if done:
                del live[oid]
                gone.add(oid)
            else:
                o[2] = q - left
        elif act == "modify":
            o = live.get(oid)
            if o is None:  # its old state predates the file (or it is gone): its new state enters the book
                counts.modify_of_unknown_as_add += 1
                if size > 0:
                    gone.discard(oid)
                    live[oid] = [side, price, size]
                    out.append((ts, E_ADD, oid, side, price, size))
                continue
            if size == 0:
                out.append((ts, E_DELETE, oid, o[0], o[1], o[2]))
                del live[oid]
                gone.add(oid)
            elif price == o[1] and size == o[2]:
                counts.modify_unchanged += 1
            elif price == o[1] and size < o[2]:
                out.append((ts, E_CANCEL, oid, o[0], o[1], o[2] - size))
                o[2] = size
            else:
                counts.modify_split += 1
                out.append((ts, E_DELETE, oid, o[0], o[1], o[2]))
                out.append((ts, E_ADD, oid, o[0], price, size))
                o[1], o[2] = price, size
        elif act == "trade":
            if side == 0:
                counts.trade_without_side += 1
                continue
            out.append((ts, E_HIDDEN, oid, side, price, size))
        elif act == "clear":
            for k in sorted(live):
                sd, px, q = live[k]
                out.append((ts, E_DELETE, k, sd, px, q))
                gone.add(k)
            counts.clear_deletes += len(live)
            live.clear()
        else:
            counts.none_rows += 1
    return np.array(out, dtype=np.int64).reshape(-1, 6)


def apply_crossing_policy(ev: np.ndarray, policy: str, counts: Counts) -> np.ndarray:
    """Run events through the engine with ``crossing_add = policy`` ("reject" | "defer") and return the
    events as the book saw them (see the module docstring). Rows of orders that predate the file (unknown
    to the engine) are kept as they are."""
    from marketlab.lob import REASONS, OrderBook, VenuePolicy
    from marketlab.lob import kernels as K
    from marketlab.lob.commands import events_to_commands

    book = OrderBook(policy=VenuePolicy(crossing_add=policy), event_capacity=1 << 12)  # type: ignore[arg-type]
    cmds = events_to_commands(np.ascontiguousarray(ev[:, [0, 1, 2, 5, 4, 3]]))  # LOBSTER column order
    out: list[np.ndarray] = []
    rejected: set[int] = set()
    one = book._one_cmd  # noqa: SLF001 - the per-call path of the engine's own API, without re-dispatch
    for i, c in enumerate(cmds.tolist()):
        oid = c[2]
        if oid in rejected:
            counts.rows_of_rejected_adds += 1
            continue
        was_deferred = c[1] == K.K_APPLY_REDUCE and book.order(oid) is not None and book.order(oid).deferred  # type: ignore[union-attr]
        code = one(*c) if c[1] != K.K_NOOP else 0
        if c[1] == K.K_NOOP:
            out.append(ev[i : i + 1])
            continue
        if code == K.R_CROSS:
            counts.crossing_rejected += 1
            rejected.add(oid)
            continue
        if code == K.R_UNKNOWN_ID:
            out.append(ev[i : i + 1])  # predates the file: kept for a tolerant replay
            continue
        if code != 0:
            key = f"engine_rejected_{REASONS.get(code, code)}"
            counts.extra[key] = counts.extra.get(key, 0) + 1
            continue
        got = book.last_events()
        if c[1] == K.K_APPLY_ADD and book.order(oid) is not None and book.order(oid).deferred:  # type: ignore[union-attr]
            counts.deferred_adds += 1
        if was_deferred:
            counts.deferred_fills_dropped += 1
        if got.size:
            rows = np.stack([got["ts"], got["type"], got["order_id"], got["side"], got["price"], got["size"]], axis=1)
            out.append(rows.astype(np.int64))
    counts.deferred_never_rested += book.n_deferred
    return np.concatenate(out) if out else np.zeros((0, 6), dtype=np.int64)


def events_frame(ev: np.ndarray, symbol: str) -> pl.DataFrame:
    """``int64[m, 6]`` event rows -> EVENTS_SCHEMA frame (``seq`` from 0 per UTC day, in row order)."""
    from marketlab.core.timeutil import NS_PER_DAY

    day = ev[:, 0] // NS_PER_DAY
    start = np.r_[0, np.flatnonzero(np.diff(day)) + 1] if len(day) else np.zeros(0, dtype=np.int64)
    seq = np.arange(len(day), dtype=np.int64)
    if len(day):
        seq -= np.repeat(start, np.diff(np.r_[start, len(day)]))
    return pl.DataFrame([
        pl.Series("ts", ev[:, 0]),
        pl.repeat(symbol, len(ev), dtype=pl.String, eager=True).alias("symbol"),
        pl.Series("seq", seq),
        pl.Series("type", ev[:, 1].astype(np.int8)),
        pl.Series("order_id", ev[:, 2]),
        pl.Series("side", ev[:, 3].astype(np.int8)),
        pl.Series("price", ev[:, 4]),
        pl.Series("size", ev[:, 5]),
    ])


def convert(path: Path, opt: MboOptions, counts: Counts) -> dict[str, np.ndarray]:
    """One MBO file -> ``{symbol: int64[m, 6] event rows}``."""
    df = read_table(path)
    if "symbol" in df.columns:
        syms = df["symbol"].cast(pl.String).to_numpy()
        _bad(path, df, np.array([s is None or s == "" for s in syms], dtype=bool), "symbol", "empty symbol")
    else:
        syms = np.full(df.height, opt.symbol or path.name.split(".")[0], dtype=object)
    cols = columns(path, df, opt)
    out: dict[str, np.ndarray] = {}
    for sym in dict.fromkeys(syms.tolist()):
        sel = syms == sym
        sub = {k: v[sel] for k, v in cols.items()}
        if (np.diff(sub["ts"]) < 0).any():
            i = int(np.flatnonzero(sel)[int(np.flatnonzero(np.diff(sub["ts"]) < 0)[0]) + 1])
            raise DataError(path, f"ts_event goes back in time for symbol {sym}", field="ts_event", row=i + 2)
        ev = translate(sub, opt, counts, path)
        if opt.crossing_add != "rest" and len(ev):
            ev = apply_crossing_policy(ev, opt.crossing_add, counts)
        out[str(sym)] = ev
    return out


def parse(paths: list[Path], *, dataset: str | None = None, **options: Any) -> Any:
    """Pure parser: MBO files -> :class:`~marketlab.store.IngestBatch` with ``events`` (module docstring)."""
    from marketlab.store import IngestBatch, Instrument

    opt = MboOptions.parse(options)
    counts = Counts()
    frames: list[pl.DataFrame] = []
    symbols: list[str] = []
    files: list[Path] = []
    for p in map(Path, paths):  # a folder contributes its MBO tables in name order
        files += sorted(f for f in p.iterdir() if f.name.endswith((".csv", ".csv.gz", ".parquet"))) if p.is_dir() else [p]
    for f in files:
        for sym, ev in convert(f, opt, counts).items():
            frames.append(events_frame(ev, sym))
            counts.events += len(ev)
            if sym not in symbols:
                symbols.append(sym)
    if not frames:
        raise DataError(None, "no MBO files given")
    events = pl.concat(frames)
    instruments = [Instrument(s, tick_size=opt.tick_size, lot_size=opt.lot_size, currency=opt.currency) for s in symbols]
    meta = {"source": "MBO", "policy": {"crossing_add": opt.crossing_add, "reduce_size": opt.reduce_size,
                                        "unknown_orders": opt.unknown_orders}, "notes": counts.as_notes()}
    return IngestBatch(dataset=dataset or "mbo", frames={"events": events}, instruments=instruments, meta=meta)


def to_mbo(events: pl.DataFrame, *, tick_size: float) -> pl.DataFrame:
    """Store events (EVENTS_SCHEMA, LOBSTER types 1-5) -> an MBO table of this module's schema: 1 add,
    2 cancel, 3 delete, 4 fill, 5 trade. Types 6 (cross) and 7 (halt) have no MBO action (ValueError).
    Prices are written as decimals with enough digits for ``tick_size``."""
    typ = events["type"].to_numpy()
    if ((typ < 1) | (typ > 5)).any():
        bad = int(typ[(typ < 1) | (typ > 5)][0])
        raise ValueError(f"event type {bad} has no MBO action (only types 1-5 convert)")
    names = np.array(["", "add", "cancel", "delete", "fill", "trade"], dtype=object)
    digits = max(0, -int(np.floor(np.log10(tick_size))) + 2)
    px = events["price"].to_numpy()
    return pl.DataFrame({
        "ts_event": events["ts"],
        "symbol": events["symbol"],
        "order_id": events["order_id"],
        "side": np.where(events["side"].to_numpy() > 0, "B", "A"),
        "price": [f"{p * tick_size:.{digits}f}" for p in px.tolist()],
        "size": events["size"],
        "action": names[typ],
    })
