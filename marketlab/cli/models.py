"""CLI of the predictors: ``marketlab train``, ``marketlab predict``, ``marketlab forecast``.

A shell over :mod:`marketlab.models.api`. ``train <model> --data <dataset> [--horizon h] [--config
file.toml]``: the config is a :class:`marketlab.models.api.TrainSpec` (``[model]``, ``[train]``, ``[data]``
tables; unknown keys are rejected with file and key). ``train trades --data <dataset> --symbol S ...`` trains
the TRADES order-flow generator instead (the issue's spelling; the same command as ``marketlab trades
train``, :func:`marketlab.cli.trades.train_cmd`): ``train`` is a group whose named subcommands take
precedence and whose every other first word is a predictor name (:class:`TrainGroup`). ``predict <checkpoint>
--data <dataset> --out <file.parquet>`` writes class probabilities per timestamp and, with
``--signals <name>``, also stores them as a ``signals`` dataset the backtester can read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from typing import Any

from typer.core import TyperGroup

from marketlab.cli.common import JsonOpt, QuietOpt, StoreOpt, command, emit, show_progress

PREDICTOR = "predictor"  # hidden name of the predictor command inside the ``train`` group


class TrainGroup(TyperGroup):
    """``marketlab train``: a named subcommand (``trades``) runs as usual; any other first word is the MODEL of
    the predictor command, which receives it as its positional argument (so ``train tlob --data ...`` and a
    model registered from Python keep working). ``ctx``/commands are Typer's vendored click types (Any here)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Dispatch on the first word (see the class docstring)."""
        if args and args[0] in self.commands and args[0] != PREDICTOR:
            return super().resolve_command(ctx, args)
        return PREDICTOR, self.commands[PREDICTOR], args

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        """Usage of both forms."""
        formatter.write_usage(ctx.command_path, "MODEL --data DATASET [OPTIONS]  |  trades --data DATASET --symbol S [OPTIONS]")


train_app = typer.Typer(
    cls=TrainGroup,
    no_args_is_help=True,
    help=(
        "Train a model: `marketlab train MODEL --data D` for a LOB predictor (tlob | mlplob | deeplob | binctabl; "
        "`marketlab train MODEL --help` for its options), or `marketlab train trades --data D --symbol S` for the "
        "TRADES order-flow generator (same as `marketlab trades train`)."
    ),
)


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
    quiet: QuietOpt = False,
) -> None:
    """Train a LOB predictor (resumes a run folder; more --epochs extend a finished run) and evaluate it on the test split."""
    from marketlab.models.api import train_from_spec

    s = train_from_spec(
        model,
        data,
        spec=config,
        horizon=horizon,
        out=out,
        symbol=symbol,
        epochs=epochs,
        max_train_windows=max_train_windows,
        fresh=fresh,
        store=store,
        progress=show_progress(json, quiet),
    )
    t = s.get("test", {})
    emit(
        {
            "model": model,
            "data": s["data"],
            "parameters": s["parameters"],
            "epochs_run": s["epochs_run"],
            "best_epoch": s["best_epoch"],
            "resumed_from_epoch": s["resumed_from_epoch"],
            "train_windows": s["train_windows"],
            "train_seconds": round(s["train_seconds"], 2),
            "test_macro_f1": t.get("macro_f1"),
            "test_accuracy": t.get("accuracy"),
            "test_mcc": t.get("mcc"),
            "test_confusion": t.get("confusion"),
            "checkpoint": s["checkpoint"],
        },
        json,
        title=f"train {model}",
    )


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
    from marketlab.models.api import predict_to_store

    emit(
        predict_to_store(checkpoint, data, out, split=split, symbol=symbol, signals=signals, store=store),  # type: ignore[arg-type]
        json,
        title="predict",
    )


@command
def forecast(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Daily CSV (date, open, close[, high, low, volume]); default $MARKETLAB_DATA/us_index_daily/GSPC_daily.csv.gz.",
        ),
    ] = None,
    models: Annotated[str, typer.Option("--models", help="Comma list or 'all'.")] = "all",
    start: Annotated[str, typer.Option("--start", help="First day of the series used.")] = "2013-02-08",
    test_start: Annotated[str, typer.Option("--test-start", help="First day of the walk-forward test.")] = "2017-01-02",
    end: Annotated[str, typer.Option("--end", help="Last day used.")] = "2018-02-07",
    epochs: Annotated[int | None, typer.Option("--epochs", help="Override each model's initial epochs.")] = None,
    refit_epochs: Annotated[int, typer.Option("--refit-epochs", help="Epochs of each weekly refit.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Walk-forward CNN/LSTM forecasts of next week's daily opens; RMSE, RMSE/mean and time per model."""
    from marketlab.models.forecasters import ForecastSpec
    from marketlab.models.forecasters import forecast as run_forecast
    from marketlab.models.sources import data_root

    names = [] if models == "all" else [m.strip() for m in models.split(",")]
    spec = ForecastSpec.from_dict(
        {
            "models": names,
            "start": start,
            "test_start": test_start,
            "end": end,
            "epochs": epochs,
            "refit_epochs": refit_epochs,
            "seed": seed,
        }
    )
    path = data or data_root() / "us_index_daily" / "GSPC_daily.csv.gz"
    emit(run_forecast(spec, path, progress=show_progress(json, quiet)), json, title="forecast")


def register(app: typer.Typer) -> None:
    """Add ``train`` (predictors and ``train trades``), ``predict`` and ``forecast`` to the marketlab CLI."""
    from marketlab.cli.trades import train_cmd as train_trades

    train_app.command(PREDICTOR, hidden=True)(train)
    train_app.command("trades")(train_trades)
    app.add_typer(train_app, name="train")
    app.command("predict")(predict)
    app.command("forecast")(forecast)
