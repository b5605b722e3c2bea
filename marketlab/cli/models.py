"""CLI of the predictors: ``marketlab train``, ``marketlab predict``, ``marketlab forecast``.

``train <model> --data <dataset> [--horizon h] [--config file.toml]``: a TOML config may hold
``[model]`` (architecture overrides), ``[train]`` (:class:`TrainConfig`) and ``[data]``
(:class:`DataConfig`) tables; unknown keys are rejected with file and key. ``predict <checkpoint>
--data <dataset> --out <file.parquet>`` writes class probabilities per timestamp and, with
``--signals <name>``, also stores them as a ``signals`` dataset the backtester can read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, StoreOpt, command, emit


def _load_train_config(path: Path | None) -> tuple[dict[str, Any], Any, Any]:
    from marketlab.core.config import from_dict, load_toml
    from marketlab.core.errors import SpecError
    from marketlab.models.sources import DataConfig
    from marketlab.models.train import TrainConfig

    if path is None:
        return {}, TrainConfig(), DataConfig()
    raw = load_toml(path)
    unknown = sorted(set(raw) - {"model", "train", "data"})
    if unknown:
        raise SpecError(path, unknown[0], "unknown table (allowed: model, train, data)")
    tc = from_dict(TrainConfig, raw.get("train", {}), path=path, prefix="train.")
    dc = from_dict(DataConfig, raw.get("data", {}), path=path, prefix="data.")
    return dict(raw.get("model", {})), tc, dc


@command
def train(
    model: Annotated[str, typer.Argument(help="tlob | mlplob | deeplob | binctabl")],
    data: Annotated[str, typer.Option("--data", help="'fi2010', an FI-2010 folder, or a store dataset.")],
    horizon: Annotated[int, typer.Option("--horizon", help="Horizon h in events: 10, 20, 50, 100.")] = 10,
    config: Annotated[Path | None, typer.Option("--config", help="TOML config with model, train and data tables.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/<model>_<data>_h<h>).")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Symbol of a store dataset.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override train.epochs.")] = None,
    max_train_windows: Annotated[int | None, typer.Option("--max-train-windows", help="Subsample training windows.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore an existing checkpoint instead of resuming.")] = False,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Train a LOB predictor (resumes from <out>/state.* after an interruption) and evaluate it on the test split."""
    import dataclasses

    from marketlab.core.errors import SpecError
    from marketlab.models.sources import load_windowsets
    from marketlab.models.train import train_predictor
    from marketlab.models.zoo import model_names

    if model not in model_names():
        raise SpecError(None, "model", f"unknown model {model!r} (known: {', '.join(model_names())})")
    mc, tc, dc = _load_train_config(config)
    over = {k: v for k, v in (("epochs", epochs), ("max_train_windows", max_train_windows)) if v is not None}
    tc = dataclasses.replace(tc, progress=tc.progress and not json, **over)
    st = None
    if store is not None:
        from marketlab.store import Store

        st = Store(store)
    sets, spec = load_windowsets(model, data, horizon=horizon, dcfg=dc, store=st, symbol=symbol)
    run = out or Path("runs") / f"{model}_{Path(data).name}_h{horizon}"
    s = train_predictor(model, sets, run, model_config=mc, train_config=tc, resume=not fresh, meta={"data": spec})
    t = s.get("test", {})
    emit({"model": model, "data": spec, "parameters": s["parameters"], "epochs_run": s["epochs_run"],
          "best_epoch": s["best_epoch"], "train_windows": s["train_windows"],
          "train_seconds": round(s["train_seconds"], 2), "test_macro_f1": t.get("macro_f1"),
          "test_accuracy": t.get("accuracy"), "test_mcc": t.get("mcc"), "test_confusion": t.get("confusion"),
          "checkpoint": s["checkpoint"]}, json, title=f"train {model}")


@command
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder (model.safetensors + config.json).")],
    data: Annotated[str, typer.Option("--data", help="'fi2010', an FI-2010 folder, or a store dataset.")],
    out: Annotated[Path, typer.Option("--out", help="Output Parquet file of class probabilities.")],
    split: Annotated[str, typer.Option("--split", help="train | val | test")] = "test",
    symbol: Annotated[str | None, typer.Option("--symbol", help="Symbol of a store dataset.")] = None,
    signals: Annotated[str | None, typer.Option("--signals", help="Also write a store signals dataset of this name.")] = None,
    store: StoreOpt = None,
    json: JsonOpt = False,
) -> None:
    """Predict class probabilities (up / stationary / down) per timestamp for one split of a dataset."""
    from marketlab.core.device import get_device
    from marketlab.core.errors import DataError, SpecError
    from marketlab.models.checkpoint import load_model
    from marketlab.models.metrics import classification_report
    from marketlab.models.sources import DataConfig, load_windowsets, signals_frame, write_signals
    from marketlab.models.train import predict_proba

    if split not in ("train", "val", "test"):
        raise SpecError(None, "split", f"must be train, val or test, got {split!r}")
    model, meta = load_model(checkpoint, get_device("auto"))
    spec = meta.get("data")
    if not spec:
        raise DataError(Path(checkpoint) / "config.json", "no data spec recorded", field="data")
    st = None
    if store is not None or signals is not None or spec.get("source") == "store":
        from marketlab.store import Store

        st = Store(store)
    dc = DataConfig(seq_size=spec["seq_size"], num_features=spec["num_features"], sampling_q=spec.get("q", 500.0),
                    mode=spec.get("mode", "auto"))
    sets, _ = load_windowsets(meta["model"], data, horizon=spec["horizon"], dcfg=dc, store=st,
                              symbol=symbol or spec.get("symbol"))
    ws = sets[split]
    proba = predict_proba(model, ws)
    df = signals_frame(ws, proba, horizon=spec["horizon"], model=meta["model"])
    out.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(out)
    rep = classification_report(df["label"].to_numpy(), df["pred"].to_numpy())
    summary: dict[str, Any] = {"rows": df.height, "out": str(out), "split": split, "macro_f1": rep["macro_f1"],
                               "accuracy": rep["accuracy"], "symbols": sorted(df["symbol"].unique().to_list())}
    if signals is not None:
        r = write_signals(st, signals, df, meta={"checkpoint": str(checkpoint), "data": spec})
        summary["signals_dataset"] = signals
        summary["signals_rows"] = r.rows.get("signals")
    emit(summary, json, title="predict")


@command
def forecast(
    data: Annotated[Path | None, typer.Option("--data", help="Daily CSV (date, open, close[, high, low, volume]).")] = None,
    models: Annotated[str, typer.Option("--models", help="Comma list or 'all'.")] = "all",
    start: Annotated[str, typer.Option("--start", help="First day of the series used.")] = "2013-02-08",
    test_start: Annotated[str, typer.Option("--test-start", help="First day of the walk-forward test.")] = "2017-01-02",
    end: Annotated[str, typer.Option("--end", help="Last day used.")] = "2018-02-07",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override each model's initial epochs.")] = None,
    refit_epochs: Annotated[int, typer.Option("--refit-epochs", help="Epochs of each weekly refit.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json: JsonOpt = False,
) -> None:
    """Walk-forward CNN/LSTM forecasts of next week's daily opens; RMSE, RMSE/mean and time per model."""
    from marketlab.models.forecasters import forecaster_names, read_daily_csv, walk_forward

    path = data or Path("..") / "shared" / "data" / "us_index_daily" / "GSPC_daily.csv.gz"
    frame = read_daily_csv(path, start=start, end=end)
    names = forecaster_names() if models == "all" else [m.strip() for m in models.split(",")]
    results = {}
    for name in names:
        r = walk_forward(name, frame, test_start=test_start, epochs=epochs, refit_epochs=refit_epochs,
                         seed=seed, progress=not json)
        results[name] = {k: r[k] for k in ("rmse", "rmse_over_mean", "rmse_per_day", "seconds", "test_weeks")}
    emit({"data": str(path), "test_start": test_start, "results": results}, json, title="forecast")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("predict")(predict)
    app.command("forecast")(forecast)
