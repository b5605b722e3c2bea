"""Ingest formats are registry ids (``ingest/<format>``): one dispatch table, unknown names list the known."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from marketlab.core import registry
from marketlab.core.errors import MarketlabError
from marketlab.store import IngestBatch, Instrument, Store
from marketlab.store.ingest import formats, get_parser

MODULES = {"lobster": "lobster", "fi2010": "fi2010", "binance-raw": "binance_raw", "ohlcv": "ohlcv", "ashare": "ashare"}
ENTRY = {"ohlcv": "iter_batches", "lobster": "iter_batches", "binance-raw": "iter_batches"}  # streaming parsers: the store writes their batches one at a time


@pytest.mark.parametrize("fmt", sorted(MODULES))
def test_builtin_formats_resolve_to_their_parser(fmt: str) -> None:
    assert registry.is_registered(f"ingest/{fmt}")
    module = importlib.import_module(f"marketlab.store.ingest.{MODULES[fmt]}")
    assert get_parser(fmt) is getattr(module, ENTRY.get(fmt, "parse"))


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(MarketlabError) as exc:
        Store(tmp_path / "s").ingest("nope", [tmp_path])
    msg = str(exc.value)
    assert "unknown ingest format 'nope'" in msg and "\n" not in msg
    for fmt in MODULES:
        assert fmt in msg
    assert set(MODULES) <= set(formats())


def test_a_user_registered_format_is_used_by_store_ingest(tmp_path: Path) -> None:
    def parse(paths: list[Path], *, dataset: str | None = None) -> IngestBatch:
        from marketlab.store.ingest.ohlcv import parse as ohlcv_parse

        batch = ohlcv_parse(paths, dataset=dataset)
        batch.meta["source"] = "mine"
        batch.instruments = [Instrument(i.symbol, 0.01, 1.0) for i in batch.instruments]
        return batch

    f = tmp_path / "AAA.csv"
    f.write_text("date,open,high,low,close,volume\n2020-01-02,1,2,1,2,5\n2020-01-03,2,3,2,3,6\n")
    registry.register("ingest/mine-v1", parse)
    try:
        rep = Store(tmp_path / "s").ingest("mine-v1", [f], dataset="mine")
    finally:
        registry.unregister("ingest/mine-v1")
    assert rep.rows == {"panel": 2}
