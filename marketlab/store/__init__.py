"""Market-data store: Parquet partitions + a DuckDB catalog, read lazily through Polars.

>>> from marketlab.store import Store, IngestBatch, Instrument
>>> store = Store("data/store")                                  # doctest: +SKIP
>>> store.scan_trades("synth_lob", "SYN", "2024-01-02").collect()  # doctest: +SKIP
"""

from marketlab.core.timeutil import to_ns
from marketlab.store.catalog import Store, default_store_path
from marketlab.store.types import KINDS, IngestBatch, IngestReport, Instrument, check_dataset, check_symbol

__all__ = [
    "KINDS",
    "IngestBatch",
    "IngestReport",
    "Instrument",
    "Store",
    "check_dataset",
    "check_symbol",
    "default_store_path",
    "to_ns",
]
