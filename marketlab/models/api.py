"""The predictors' Python API: what ``marketlab train`` and ``marketlab predict`` run, argument for argument.

* :class:`TrainSpec`: a training config file, ``[model]`` (architecture overrides, checked against the
  model's config class), ``[train]`` (:class:`TrainConfig`) and ``[data]`` (:class:`DataConfig`);
  unknown tables and keys are refused naming the file and key.
* :func:`train_from_spec`: data -> window sets -> trainer (resumable run folder) -> test metrics.
* :func:`predict_to_store`: a checkpoint's class probabilities for one split, as Parquet and optionally
  as a store ``signals`` dataset the backtester reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from marketlab.core.config import Spec, from_dict
from marketlab.core.errors import DataError
from marketlab.models.sources import DataConfig
from marketlab.models.train import TrainConfig


@dataclass(frozen=True)
class TrainSpec(Spec):
    """A training config file (``specs/train/*.toml``); every table is optional."""

    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)


def _store(path: str | Path | None) -> Any:
    from marketlab.store import Store

    return Store(path)


def train_from_spec(model: str, data: str, *, spec: TrainSpec | str | Path | None = None, horizon: int = 10,
                    out: str | Path | None = None, symbol: str | None = None, epochs: int | None = None,
                    max_train_windows: int | None = None, fresh: bool = False, store: str | Path | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Train predictor ``model`` on ``data`` (``"fi2010"``, an FI-2010 folder or a store dataset).

    ``spec`` is a :class:`TrainSpec` or the path of its TOML file; ``epochs``/``max_train_windows`` override
    ``[train]`` (validated like the file). The run folder ``out`` (default ``runs/<model>_<data>_h<h>``) is
    resumed unless ``fresh``: a changed model, config, data or symbol is refused naming the key; more epochs
    than a finished run extend it. Returns the trainer's JSON-able summary plus ``data`` (the data spec).
    """
    from marketlab.models.sources import load_windowsets
    from marketlab.models.train import train_predictor
    from marketlab.models.zoo import model_class

    model_class(model)  # an unknown model fails before any data is read
    ts = spec if isinstance(spec, TrainSpec) else TrainSpec.from_toml(spec) if spec is not None else TrainSpec()
    over = {k: v for k, v in (("epochs", epochs), ("max_train_windows", max_train_windows)) if v is not None}
    if not progress:
        over["progress"] = False
    # command-line overrides are checked like the file's [train] table
    tc = from_dict(TrainConfig, {**ts.train.to_dict(), **over}, prefix="train.") if over else ts.train
    st = _store(store) if store is not None else None
    sets, data_spec = load_windowsets(model, data, horizon=horizon, dcfg=ts.data, store=st, symbol=symbol)
    run = Path(out) if out is not None else Path("runs") / f"{model}_{Path(data).name}_h{horizon}"
    summary = train_predictor(model, sets, run, model_config=ts.model, train_config=tc, resume=not fresh,
                              meta={"data": data_spec})
    return {**summary, "data": data_spec}


def predict_to_store(checkpoint: str | Path, data: str, out: str | Path, *,
                     split: Literal["train", "val", "test"] = "test", symbol: str | None = None,
                     signals: str | None = None, store: str | Path | None = None) -> dict[str, Any]:
    """Class probabilities (up / stationary / down) of ``checkpoint`` for every window of one split of ``data``.

    Writes ``out`` (Parquet, columns of :func:`marketlab.models.sources.signals_frame`) and, with ``signals``,
    a store ``signals`` dataset of that name. The data is prepared exactly as at training time (the data
    spec recorded in the checkpoint). Returns rows, macro-F1/accuracy against the true labels and symbols.
    """
    from marketlab.core.device import get_device
    from marketlab.core.errors import SpecError
    from marketlab.models.checkpoint import load_model
    from marketlab.models.metrics import classification_report
    from marketlab.models.sources import load_windowsets, signals_frame, write_signals
    from marketlab.models.train import predict_proba

    if split not in ("train", "val", "test"):
        raise SpecError(None, "split", f"must be train, val or test, got {split!r}")
    model, meta = load_model(checkpoint, get_device("auto"))
    spec = meta.get("data")
    if not spec:
        raise DataError(Path(checkpoint) / "config.json", "no data spec recorded", field="data")
    st = _store(store) if store is not None or signals is not None or spec.get("source") == "store" else None
    dc = DataConfig(seq_size=spec["seq_size"], num_features=spec["num_features"], sampling_q=spec.get("q", 500.0),
                    mode=spec.get("mode", "auto"))
    sets, _ = load_windowsets(meta["model"], data, horizon=spec["horizon"], dcfg=dc, store=st,
                              symbol=symbol or spec.get("symbol"))
    ws = sets[split]
    proba = predict_proba(model, ws)
    df = signals_frame(ws, proba, horizon=spec["horizon"], model=meta["model"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out)
    rep = classification_report(df["label"].to_numpy(), df["pred"].to_numpy())
    summary: dict[str, Any] = {"rows": df.height, "out": str(out), "split": split, "macro_f1": rep["macro_f1"],
                               "accuracy": rep["accuracy"], "symbols": sorted(df["symbol"].unique().to_list())}
    if signals is not None:
        r = write_signals(st, signals, df, meta={"checkpoint": str(checkpoint), "data": spec})
        summary["signals_dataset"] = signals
        summary["signals_rows"] = r.rows.get("signals")
    return summary
