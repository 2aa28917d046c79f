"""The ``otsight`` command: one sub-command per verb.

Exit codes: 0 done (possibly with warnings), 2 unusable input or arguments, 1 internal error.
Heavy modules are imported inside the verbs so that ``otsight --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

app = typer.Typer(
    name="otsight",
    help="Open-source OT/ICS network security: decode, learn, detect, explain, respond.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {message}", soft_wrap=True)


def _warn(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default, indent=2) + "\n")


def _guard(fn):
    """Turn unexpected exceptions into a one-line message and exit code 1."""

    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            _err("interrupted")
            raise typer.Exit(EXIT_INTERNAL) from None
        except Exception as exc:  # noqa: BLE001 - the user gets a message, not a traceback
            if os.environ.get("OTSIGHT_DEBUG"):
                raise
            _err(f"internal error: {type(exc).__name__}: {exc} (set OTSIGHT_DEBUG=1 for details)")
            raise typer.Exit(EXIT_INTERNAL) from None

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


def _version(value: bool) -> None:
    if value:
        from otsight import __version__

        typer.echo(f"otsight {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """otsight: watch industrial networks passively and explain what is dangerous."""


def _progress_reporter(enabled: bool):
    """A rich progress bar with packets/s on stderr, or nothing when not on a terminal."""
    if not enabled:
        return None, None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,} packets"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=True,
        console=__import__("rich.console").console.Console(stderr=True),
    )
    task = progress.add_task("decoding", total=None, rate="")
    state = {"base": 0, "last": 0}

    def update(done_in_capture: int, _bytes: int) -> None:
        if done_in_capture < state["last"]:
            state["base"] += state["last"]
        state["last"] = done_in_capture
        total = state["base"] + done_in_capture
        elapsed = progress.tasks[0].elapsed or 0
        rate = f"{total / elapsed:,.0f} packets/s" if elapsed > 0 else ""
        progress.update(task, completed=total, rate=rate)

    return progress, update


def _finish_run(first_run: bool, summary: dict[str, Any]) -> None:
    """After a decoding run: remember the kernels are compiled, report warnings and errors."""
    if first_run:
        from otsight._jit import mark_kernels_cached

        mark_kernels_cached()
    for w in summary["warnings"]:
        _warn(w)
    for e in summary["errors"]:
        _err(e)


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="otsight analyze", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("captures", str(len(summary["captures"])))
    table.add_row("packets", f"{summary['packets']:,}")
    table.add_row("bytes", f"{summary['bytes']:,}")
    table.add_row(
        "flows",
        f"{summary['flows']:,}  "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["transports"].items())),
    )
    if summary["pdus"]:
        table.add_row(
            "framed PDUs", ", ".join(f"{k} {v:,}" for k, v in sorted(summary["pdus"].items()))
        )
    if summary.get("protocols"):
        table.add_row(
            "protocol rows",
            ", ".join(f"{k} {v:,}" for k, v in sorted(summary["protocols"].items()) if v),
        )
    if summary["l2_frames"]:
        table.add_row(
            "L2 industrial",
            ", ".join(f"{k} {v:,}" for k, v in sorted(summary["l2_frames"].items())),
        )
    if summary["arp"]:
        table.add_row("ARP", f"{summary['arp']:,}")
    if summary["lldp_systems"]:
        table.add_row("LLDP systems", ", ".join(summary["lldp_systems"]))
    if summary["weird"]:
        table.add_row("weird", ", ".join(f"{k} {v:,}" for k, v in sorted(summary["weird"].items())))
    rate = summary.get("packets_per_s")
    table.add_row(
        "time", f"{summary['elapsed_s']:.2f} s" + (f" ({rate:,} packets/s)" if rate else "")
    )
    if "out" in summary:
        table.add_row("written to", summary["out"])
    console.print(table)


@app.command()
@_guard
def analyze(
    captures: Annotated[
        list[Path], typer.Argument(help="pcap / pcapng files, optionally gzip-compressed.")
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write event tables (Parquet) and state (SQLite) here."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    packets: Annotated[
        bool, typer.Option("--packets", help="Also write the per-packet L2–L4 table (large).")
    ] = False,
    tables: Annotated[
        str | None,
        typer.Option(
            "--tables",
            help="Comma-separated tables to produce (default: all but packets; see `otsight "
            "plugins`). Dissectors whose tables are not asked for do not run.",
        ),
    ] = None,
) -> None:
    """Decode captures: L2–L4, flows, TCP reassembly, PDU framing; write event tables."""
    missing = [str(p) for p in captures if not p.is_file()]
    if missing:
        _err("no such capture file: " + ", ".join(missing))
        raise typer.Exit(EXIT_INPUT)
    from otsight._jit import kernels_cached

    first_run = not kernels_cached()
    if first_run:
        _warn(
            "first run: compiling decode kernels (about a minute, once; later runs start at once)"
        )
    from otsight.analyze import analyze as run
    from otsight.analyze import default_tables

    known = [*default_tables(), "packets"]
    wanted = default_tables()
    if tables:
        wanted = [t.strip() for t in tables.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in known]
        if unknown:
            _err(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(known)}")
            raise typer.Exit(EXIT_INPUT)
    if packets and "packets" not in wanted:
        wanted.append("packets")
    progress, update = _progress_reporter(sys.stderr.isatty() and not as_json)
    if progress is not None:
        with progress:
            summary = run(captures, out, wanted, update, command="analyze")
    else:
        summary = run(captures, out, wanted, None, command="analyze")
    _finish_run(first_run, summary)
    if as_json:
        _print_json(summary)
    else:
        _print_summary(summary)
    if any(c["status"] == "error" for c in summary["captures"]):
        raise typer.Exit(EXIT_INPUT)


@app.command()
@_guard
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the tables (DuckDB dialect).")],
    db: Annotated[Path, typer.Option("--db", help="An output folder of `otsight analyze --out`.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array of row objects.")
    ] = False,
) -> None:
    """Run SQL over an output folder: one view per event table, plus the state tables."""
    from otsight.store.query import QueryError, run_query

    try:
        cols, rows = run_query(db, sql)
    except QueryError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT) from None
    if as_json:
        _print_json([dict(zip(cols, r, strict=False)) for r in rows])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*cols)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    Console().print(table)


@app.command(name="eval")
@_guard
def eval_(
    capture: Annotated[Path, typer.Argument(help="The labelled pcap / pcapng capture.")],
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="Ground truth: per-frame CSV 'frame;label' (1-based) or named time intervals "
            "(CSV/JSON with name, start, end[, techniques]).",
        ),
    ],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="A saved baseline directory.")
    ] = None,
    learn_from: Annotated[
        Path | None,
        typer.Option("--learn-from", help="Learn the baseline from this benign capture."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score detection on a labelled capture: precision/recall/F1, delay, false alerts."""
    from otsight.evaluate.run import EvalError, attack_rows, evaluate_capture, summary_rows

    try:
        report = evaluate_capture(capture, labels, baseline=baseline, learn_from=learn_from)
    except EvalError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT) from None
    for w in report.warnings:
        _warn(w)
    if as_json:
        _print_json(report.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="otsight eval", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for what, value in summary_rows(report):
        table.add_row(what, value)
    console.print(table)
    rows = attack_rows(report)
    if rows:
        attacks = Table(*rows[0])
        for r in rows:
            attacks.add_row(*r.values())
        console.print(attacks)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)


@app.command()
@_guard
def simulate(
    scenario: Annotated[
        str | None, typer.Option("--scenario", "-s", help="Scenario name (see --list).")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="e.g. 10m, 24h (default: the scenario's)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same capture.")] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Capture to write.")] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Per-frame labels 'frame;label' (and X.attacks.json)."),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the scenarios.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Generate a labelled capture of a virtual plant, with injected attacks."""
    from otsight.sim.model import ModelError, load_scenarios, parse_duration

    try:
        scenarios = load_scenarios()
        if list_:
            from otsight.sim.attacks import LIBRARY

            rows = [
                {
                    "name": sc.name,
                    "plant": sc.plant,
                    "description": sc.description,
                    "duration": sc.duration / 1e9,
                    "attacks": [
                        {
                            "name": a.name,
                            "attack": a.attack,
                            "at_s": a.at / 1e9,
                            "techniques": list(LIBRARY[a.attack].techniques)
                            if a.attack in LIBRARY
                            else [],
                            "description": LIBRARY[a.attack].description
                            if a.attack in LIBRARY
                            else "",
                        }
                        for a in sc.attacks
                    ],
                }
                for sc in scenarios.values()
            ]
            if as_json:
                _print_json(rows)
            else:
                _print_scenarios(rows)
            return
        if scenario is None or out is None:
            _err("give --scenario NAME and --out FILE.pcap (or --list)")
            raise typer.Exit(EXIT_INPUT)
        if scenario not in scenarios:
            _err(f"unknown scenario {scenario!r}; known: {', '.join(scenarios)}")
            raise typer.Exit(EXIT_INPUT)
        span = parse_duration(duration, "--duration") if duration else None
        from otsight.sim.generate import simulate as run

        result = run(scenarios[scenario], out, labels, span, seed)
    except ModelError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT) from None
    if as_json:
        _print_json(result.to_dict())
        return
    from rich.console import Console

    console = Console()
    console.print(
        f"[bold]{result.scenario}[/] on plant {result.plant}: {result.packets:,} packets "
        f"in {result.duration_ns / 1e9:,.0f} s of traffic → {result.pcap}"
    )
    for a in result.attacks:
        console.print(
            f"  attack {a['name']} ({a['attack']}; {', '.join(a['techniques'])}): "
            f"frames {a['frames'][0]}–{a['frames'][1]} ({a['frame_count']} frames)"
        )
    if result.labels:
        console.print(f"  labels: {result.labels}, {result.attacks_json}")


def _print_scenarios(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="otsight simulate --list", title_justify="left")
    for col in ("scenario", "plant", "duration", "attacks (ATT&CK for ICS)"):
        table.add_column(col)
    for r in rows:
        attacks = "\n".join(f"{a['name']}: {', '.join(a['techniques'])}" for a in r["attacks"])
        table.add_row(r["name"], r["plant"], f"{r['duration']:,.0f} s", attacks or "(none)")
    Console().print(table)


@app.command()
@_guard
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for every output.")] = Path(
        "otsight-demo"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate a water plant under attack, analyse the capture, summarise what was seen."""
    from otsight._jit import kernels_cached

    first_run = not kernels_cached()
    if first_run:
        _warn("first run: compiling decode kernels (once; later runs start at once)")
    from otsight.demo import run_demo

    summary = run_demo(out)
    _finish_run(first_run, summary)
    if as_json:
        _print_json(summary)
        return
    _print_demo(summary)


def _print_demo(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]otsight demo[/]: scenario {s['scenario']} on plant {s['plant']} "
        f"(seed {s['seed']}) — {s['packets']:,} packets, {s['flows']:,} flows, "
        f"{s['elapsed_s']:.1f} s"
    )
    console.print(
        "protocols decoded: "
        + ", ".join(f"{k} {v:,} rows" for k, v in sorted(s["protocols"].items()))
    )
    ops = Table(title="operations seen (requests)", title_justify="left")
    for col in ("protocol", "operation", "category", "count"):
        ops.add_column(col)
    for r in s["operations"]:
        ops.add_row(r["protocol"], str(r["operation"]), str(r["category"] or ""), f"{r['count']:,}")
    console.print(ops)
    att = Table(title="attacks the scenario injected (ground truth)", title_justify="left")
    for col in ("attack", "kind", "techniques", "frames"):
        att.add_column(col)
    for a in s["attacks_injected"]:
        att.add_row(
            a["name"],
            a["attack"],
            ", ".join(a["techniques"]),
            f"{a['frames'][0]}–{a['frames'][1]} ({a['frame_count']})",
        )
    console.print(att)
    console.print(
        f"written: {s['capture']}, {s['labels']}, {s['attacks_json']}, tables in {s['analysis']}"
    )


@app.command()
@_guard
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the protocol dissectors found (built in and entry-point plugins)."""
    from otsight.dissect.registry import registry

    reg = registry()
    rows = [
        {
            "name": name,
            "source": reg.sources[name],
            "tables": sorted(cls.tables),
            "semantics": [f"{s.space} ({len(s.rows)})" for s in cls.semantics],
        }
        for name, cls in sorted(reg.dissectors.items())
    ]
    for problem in reg.problems:
        _warn(problem)
    if as_json:
        _print_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("dissector", "tables", "code spaces", "from")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["tables"]), ", ".join(r["semantics"]), r["source"])
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    # otsight does no linear algebra; OpenBLAS's idle worker threads would only spin on the
    # core that the archive writer uses.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from otsight._memory import keep_freed_memory

    keep_freed_memory()
    try:
        app()
    except SystemExit:
        raise
