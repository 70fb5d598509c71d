"""The results as a table on the terminal."""

from __future__ import annotations

from typing import Any

from bench import web


def _mark(met: Any) -> str:
    return "ok" if met is True else ("MISS" if met is False else "")


def _kb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1024:,.1f} KB"


def table(results: dict[str, Any]) -> str:
    sections = results.get("sections", {})
    lines: list[str] = []
    for name, section in sections.items():
        lines.append("")
        if section.get("error"):
            lines.append(f"== {name}: ERROR {section['error']}")
            continue
        lines.append(f"== {name}  [{_mark(section.get('met'))}]  target: {section.get('target', '')}")
        lines.extend(RENDERERS[name](section))
    return "\n".join(lines)


def _cold_start(section: dict[str, Any]) -> list[str]:
    base = section["baseline"]
    lines = [
        f"   baseline (boto3 + one DynamoDB client): {base['cpu_ms']} ms CPU, {base['median_ms']} ms wall, "
        f"medians of {base['samples']} processes",
    ]
    for floor in section.get("floors", []):
        lines.append(
            f"   {floor['floor']} (the libraries alone, no mci): ratio {floor['ratio']:.2f}, {floor['cpu_ms']} ms CPU, "
            f"{floor['modules']} modules"
        )
    lines.append(
        f"   {'function':30} {'ratio':>6} {'CPU':>8} {'/floor':>6} {'wall':>6} {'wall':>8} {'import':>8} {'init':>7} "
        f"{'modules':>8}"
    )
    for row in section["functions"]:
        lines.append(
            f"   {row['function']:30} {row['ratio']:>6.2f} {row['cpu_ms']:>6.0f}ms {row.get('floor_ratio', 0):>6.2f} "
            f"{row['wall_ratio']:>6.2f} {row['median_ms']:>6.0f}ms {row['import_ms']:>6.0f}ms {row['init_ms']:>5.0f}ms "
            f"{row['modules']:>8} {_mark(row['met'])}"
        )
    for compared in section.get("compared", []):
        lines.append(f"   compared, same rounds: {compared['tree']} (commit {compared['commit']})")
        for row in compared["functions"]:
            lines.append(f"   {row['function']:30} {row['ratio']:>6.2f} {row['cpu_ms']:>6.0f}ms {row['modules']:>8}")
    return lines


def _snapstart(section: dict[str, Any]) -> list[str]:
    lines = [
        f"   first request / warm, CPU, median over {section['runs_per_scenario']} processes of each one's ratio"
        " (own: moto's share out)",
        f"   {'scenario':22} {'function':28} {'primed':>7} {'own':>6} {'unprimed':>9} {'own':>6}  primed first/warm",
    ]
    for row in section["scenarios"]:
        primed, unprimed = row["primed"], row["unprimed"]
        lines.append(
            f"   {row['scenario']:22} {row['function'] or '':28} {primed['process_ratio']:>7.2f} "
            f"{primed['own_process_ratio']:>6.2f} {unprimed['process_ratio']:>9.2f} "
            f"{unprimed['own_process_ratio']:>6.2f}  "
            f"{primed['first_ms']:.1f}/{primed['warm_ms']:.1f} ms {_mark(row['met'])}"
        )
    return lines


def _tracing(section: dict[str, Any]) -> list[str]:
    lines = [
        f"   Tracer (patch {section['patch_modules']}) / the same cold start without it; "
        f"medians of {section['runs_per_function']} processes each",
        f"   {'function':30} {'ratio':>6} {'CPU':>8} {'traced':>8} {'added':>8} {'Tracer':>8} {'modules':>9}",
    ]
    for row in section["functions"]:
        added_modules = row["traced_modules"] - row["modules"]
        lines.append(
            f"   {row['function']:30} {row['ratio']:>6.2f} {row['cpu_ms']:>6.0f}ms {row['traced_cpu_ms']:>6.0f}ms "
            f"{row['added_cpu_ms']:>6.0f}ms {row['tracer_cpu_ms']:>6.0f}ms {row['modules']:>4}+{added_modules}"
        )
    return lines


def _round_trips(section: dict[str, Any]) -> list[str]:
    lines = [f"   {'operation':46} {'DynamoDB':>13} {'SES':>9} {'Events':>9}   (measured / minimum)"]
    for row in section["operations"]:
        measured = row["measured"]
        minimum = row.get("minimum")

        def cell(service: str, width: int, measured: dict[str, float] = measured, minimum: Any = minimum) -> str:
            value = f"{measured[service]:g}"
            if minimum is not None:
                value += f"/{minimum[service]:g}"
            return f"{value:>{width}}"

        title = row["title"] + ("" if row["unit"] == "call" else f" [{row['unit']}]")
        lines.append(
            f"   {title:46} {cell('dynamodb', 13)} {cell('sesv2', 9)} {cell('events', 9)}   {_mark(row.get('met'))}"
        )
    return lines


def _warm(section: dict[str, Any]) -> list[str]:
    lines = [f"   {'handler':24} {'ratio':>6} {'handler':>10} {'bare':>10} {'AWS calls':>10}"]
    for row in section["handlers"]:
        lines.append(
            f"   {row['handler']:24} {row['ratio']:>6.2f} {row['handler_ms']:>8.1f}ms {row['bare_ms']:>8.1f}ms "
            f"{row['aws_calls_per_call']:>10} {_mark(row['met'])}"
        )
    return lines


def _sweep(section: dict[str, Any]) -> list[str]:
    index, scan = section["index"], section["scan"]
    return [
        f"   {section['claims']:,} claims, {section['due']:,} due, on {section['backend']}",
        f"   DueIndex: {index['items_read_per_due_claim']} items read per due claim ({index['items_read']:,} items, "
        f"{index['queries']} queries), sweep {index['seconds']} s",
        f"   Scan:     {scan['items_read_per_due_claim']} items read per due claim ({scan['items_read']:,} items, "
        f"{scan['requests']} requests), finding {scan['finding_seconds']} s vs {index['finding_seconds']} s",
        f"   Scan / DueIndex: {section['scan_to_index_items_ratio']}x items read, "
        f"{section['scan_to_index_finding_time_ratio']}x time to find the due claims",
    ]


def _load(section: dict[str, Any]) -> list[str]:
    lines = []
    for label, key in (("1 client", "one_client"), (f"{section['clients']} clients", "concurrent")):
        row = section[key]
        lines.append(
            f"   {label:10} {row['seconds']:>5} s  {row['throughput_per_second']:>7} adds/s  "
            f"p50 {row['p50_ms']:>8} ms  p99 {row['p99_ms']:>8} ms  errors {row['errors']} {row['statuses']}"
        )
    lines.append(f"   p50 with {section['clients']} clients / 1 client: {section['p50_ratio_to_one_client']}")
    return lines


def _size(section: dict[str, Any]) -> list[str]:
    lines = [f"   {section['method']}; largest function package {_kb(section['largest_function_bytes'])}"]
    for name, layer in section["layers"].items():
        if layer is None:
            lines.append(f"   layer {name:26} not built")
        else:
            lines.append(
                f"   layer {name:26} {_kb(layer['zipped_bytes'])} zipped, {_kb(layer['unzipped_bytes'])} unzipped, "
                f"{layer['files']} files: {layer.get('py_files', '?')} .py, {layer['pyc_files']} .pyc"
            )
    return lines


def _session(section: dict[str, Any]) -> list[str]:
    lines = [f"   cold start cost: {section['cold_start_source']}"]
    for row in section["layouts"]:
        lines.append(
            f"   {row['layout']}: {row['functions_in_layout']} functions, a session meets "
            f"{row['cold_starts_when_idle']} cold starts when idle ({row['idle_session_wait_ms']:.0f} ms)"
        )
        for name, day in row["days"].items():
            lines.append(
                f"      {name + ' day':28} {100 * day['cold_request_share']:>5.1f}% of requests wait, "
                f"{100 * day['sessions_with_a_cold_start_share']:>5.1f}% of sessions; session wait p95 "
                f"{day['session_wait_p95_ms']:>6.0f} ms, p99 {day['session_wait_p99_ms']:>6.0f} ms, "
                f"mean {day['session_wait_mean_ms']:>5.0f} ms; environments {day['peak_environments']}"
            )
    return lines


def _scale(section: dict[str, Any]) -> list[str]:
    lines = [
        f"   {section['added']} adds and {section['consent_emails']} consent requests on {section['backend']}, "
        f"{section['concurrency']} at a time: {section['add_seconds']} s + {section['consent_seconds']} s, "
        f"throttles {section['throttles']}, failures {section['failures']}",
        f"   {'operation':14} {'requests':>28} {'RCU':>5} {'WCU':>5} {'index WCU':>22} {'items':>5} {'retries':>7}",
    ]
    for name, op in section["operations"].items():
        requests = ", ".join(f"{k} {v:g}" for k, v in op["requests_per_call"].items())
        index = ", ".join(f"{k} {v:g}" for k, v in op["index_wcu_per_call"].items())
        lines.append(
            f"   {name:14} {requests:>28} {op['rcu_per_call']:>5g} {op['wcu_per_call']:>5g} {index:>22} "
            f"{op['items_written_per_call']:>5g} {op['retries']:>7}"
        )
    for name, op in section["operations"].items():
        units = ", ".join(f"{k} {v:g}" for k, v in op.get("engine_units_per_call", {}).items())
        lines.append(f"   {name:14} units the engine reported per call: {units or '-'}")
    for row in section["drain"]:
        lines.append(
            f"   {row['emails']:,} emails offered at {row['offered_per_second']:.0f}/s, SES {row['ses_per_second']}/s: "
            f"{row['throttled_to_outbox']:,} to the outbox, {row['sweep_runs']} sweep runs, "
            f"last email after {row['last_email_seconds']:,.0f} s"
        )
    return lines


RENDERERS = {
    "size": _size,
    "cold_start": _cold_start,
    "snapstart": _snapstart,
    "tracing": _tracing,
    "round_trips": _round_trips,
    "warm_overhead": _warm,
    "sweep": _sweep,
    "load": _load,
    "session": _session,
    "scale": _scale,
    "web": web.render,
}
