"""``marketlab xva <spec.toml>`` (layered deep xVA) and ``marketlab bsde <equation>`` (benchmark solves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketlab.cli.common import JsonOpt, QuietOpt, command, emit, show_progress


@command
def xva(
    spec: Annotated[Path, typer.Argument(help="xVA spec, e.g. specs/xva/xva_forward_cva.toml")],
    seed: Annotated[int | None, typer.Option(help="Override run.seed.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the layered deep xVA pipeline of a spec: clean values, IM, CVA/DVA/MVA/ColVA, FVA, exposures."""
    from marketlab.core.device import set_torch_threads
    from marketlab.pricing.xva import XvaRun

    set_torch_threads()
    overrides: dict[str, Any] = {"progress": show_progress(as_json, quiet)}
    if seed is not None:
        overrides["seed"] = seed
    result = XvaRun.from_spec(spec, **overrides).run()
    if as_json:
        emit(result, True)  # emit's JSON encoder turns arrays into lists
        return
    summary: dict[str, Any] = {"spec": str(spec), "device": result["device"], "steps": result["steps"]}
    for name, row in result["xva_table"].items():
        for key, val in row.items():
            summary[f"{key.upper()} [{name}]"] = val
            mc = result.get("xva", {}).get("outer_mc", {}).get(name, {})
            if key in mc:
                se = result["xva"]["outer_mc_se"][name][key]
                summary[f"{key.upper()} [{name}] outer MC"] = f"{mc[key]:.6g} +- {se:.2g}"
    if "im" in result:
        summary["IMFC_0"] = result["im"]["imfc_0"].tolist()
        summary["IMTC_0"] = result["im"]["imtc_0"].tolist()
    summary["seconds"] = round(result["seconds"]["total"], 2)
    summary["plots"] = result.get("plots", [])
    emit(summary, False, title="deep xVA")


@command
def bsde(
    equation: Annotated[str, typer.Argument(help="hjb_lq, allen_cahn, pricing_default_risk, pricing_diff_rate, "
                                                 "burgers_type, quadratic_gradient, reaction_diffusion, bs_call, "
                                                 "bs_forward, basket_call")],
    dim: Annotated[int | None, typer.Option("--dim", help="Dimension (default: the benchmark's).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Time steps N.")] = None,
    iterations: Annotated[int, typer.Option(help="Training iterations.")] = 2000,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Initial learning rate (x0.1 after 3/4 of the iterations).")] = 1e-2,
    network: Annotated[str, typer.Option(help="time | per_step")] = "time",
    precision: Annotated[str, typer.Option(help="float64 | float32 | autocast")] = "float64",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    save: Annotated[Path | None, typer.Option(help="Write <path>.safetensors + <path>.json.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Solve one benchmark BSDE with the deep BSDE method and print y0 against its reference."""
    from marketlab.core.device import set_torch_threads
    from marketlab.core.errors import SpecError
    from marketlab.pricing.bsde import SolverConfig, make_equation, relative_error, solve

    set_torch_threads()
    kwargs: dict[str, Any] = {}
    for key, value in (("dim", dim), ("steps", steps)):
        if value is not None and value < 1:
            raise SpecError(None, key, f"must be >= 1, got {value}")
    if dim is not None:
        kwargs["dim"] = dim
    if steps is not None:
        kwargs["N"] = steps
    eq = make_equation(equation, **kwargs)
    # the options are checked like a spec's keys (kinds, ranges) before anything runs
    cfg = SolverConfig.from_dict({"network": network, "precision": precision, "batch_size": batch_size,
                                  "iterations": iterations, "lr_values": [lr, lr / 10],
                                  "lr_boundaries": [int(0.75 * iterations)], "seed": seed, "device": device,
                                  "progress": show_progress(as_json, quiet)})
    solver, res = solve(eq, cfg)
    if save is not None:
        solver.save(save)
    from marketlab.pricing.bsde.reference import reference_for

    ref = reference_for(eq)
    out: dict[str, Any] = {"equation": equation, "dim": eq.dim, "steps": eq.N, "y0": res.y0[0],
                           "reference": ref, "rel_error": relative_error(res.y0[0], ref) if ref else None,
                           "valid_loss": res.valid_loss, "iterations": res.iterations,
                           "seconds": round(res.seconds, 3), "device": str(solver.device)}
    emit(out, as_json, title="deep BSDE")


def register(app: typer.Typer) -> None:
    """Add ``xva`` and ``bsde`` to the marketlab CLI."""
    app.command("xva")(xva)
    app.command("bsde")(bsde)
