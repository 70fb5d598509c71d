"""The ``mci`` command line: arguments, the API client, exit codes and the messages a person reads."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from mci_cli import __version__, bulk_add, export, reference_data
from mci_cli.api import ApiClient, ApiError
from mci_cli.report import InputRejected, print_issues

OK, REJECTED, USAGE, API_FAILED, INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_API_URL = "http://127.0.0.1:3000"
URL_VARIABLE, TOKEN_VARIABLE = "MCI_API_URL", "MCI_TOKEN"

MAIN_HELP = f"""\
Operations client of the MCI customers API: load reference data, nominate customers in bulk, export
Customers pages. It talks to the local stack (make run) or a deployed stage.

Every command takes --api-url (or ${URL_VARIABLE}; default {DEFAULT_API_URL}) and --token (or
${TOKEN_VARIABLE}; a bearer JWT of the stage's issuer). On the local stack, `mci local-token` issues one.

exit codes:
  0  done (for add-bulk also when some rows are ineligible or refused: see the results file)
  1  the input was rejected: each problem printed as FILE:LINE: FIELD: MESSAGE, nothing changed
  2  usage error (arguments, missing token)
  3  the API refused the token or the request, or could not be reached
  130 interrupted (Ctrl-C): rerunning the same command is safe
"""

EXAMPLES = """\
examples (local stack, demo data):
  export MCI_TOKEN=$(mci local-token --partner mci-operations --role mci_operations)
  mci reference-data load cli/examples/engagements.csv cli/examples/reference-data.json
  export MCI_TOKEN=$(mci local-token --partner p-contoso-partners --role incentives_user)
  mci customers add-bulk cli/examples/customers.csv
  mci customers export e-azure-migrate --tab eligible -o eligible.csv
"""

LOAD_HELP = """\
Load engagements, locations, customers and domains (role mci_operations). Records are upserted by
id: loading the same files again changes nothing.

Every file is read and every record validated by the API (a dry run) before anything is written: when
any record is refused, the command prints each problem as FILE:LINE: FIELD: MESSAGE, writes nothing
and exits 1. Then it loads in batches, with a progress bar on a terminal. Each batch carries an
Idempotency-Key derived from the batch's request, so a batch sent again after a lost answer, or
rerun within the 24 hours the API keeps keys, is answered with its first answer, not loaded twice.

JSON files: the body of POST /ops/reference-data, an object with any of the lists engagements,
locations, customers and domains (see local/demo_data.json).

CSV files: UTF-8, a header row, one record per row; the header says which kind the file holds. Empty
cells are left out (the API's default applies); lists are separated by ';'; booleans are true/false;
dotted columns nest (criteria.segments). Columns, required ones marked *:
"""

ADD_BULK_HELP = """\
Add customers to engagements from a CSV file (roles incentives_user or incentives_admin), one row per
customer and engagement:

  {columns}
  (* required; customer_language en or es; hours for variable-payment engagements only)

First the file is read and every customer previewed (POST /eligibility-checks): an unknown location,
an identifier of the wrong shape or an unknown engagement stops the run with FILE:LINE: FIELD:
MESSAGE before anything is added (exit 1). Then row by row: the eligibility preview, and the add
(POST /customers) when the engagement is eligible. Each add carries an Idempotency-Key derived from
the row, so a rerun after an interruption adds nothing twice and ends with the same results.

The results file (default FILE.results.csv beside FILE) has one row per input row: result added
(claim_id, state), ineligible (the preview's reason codes and reasons) or refused (the API's reason).
Ineligible and refused rows are normal results: the exit code is still 0.
"""

EXPORT_HELP = """\
Write one tab of an engagement's Customers page as CSV (to stdout, or -o FILE), following the API's
cursors until the last page: eligible (active claims and known customers to claim), ineligible (known
customers that are not eligible, with reasons) or complete (claims in a final state).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _columns_help() -> str:
    lines = []
    for kind in reference_data.KINDS.values():
        names = ", ".join(f"{c.name}{'*' if c.required else ''}" for c in kind.columns)
        lines.append(f"  {kind.name}: {names}")
    return "\n".join(lines)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _page_size(text: str) -> int:
    value = _positive(text)
    if value > export.MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be at most {export.MAX_PAGE}: {value}")
    return value


def parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("API")
    group.add_argument(
        "--api-url",
        metavar="URL",
        default=os.environ.get(URL_VARIABLE) or DEFAULT_API_URL,
        help=f"base URL of the API (${URL_VARIABLE}; default {DEFAULT_API_URL}, the local stack)",
    )
    group.add_argument(
        "--token",
        metavar="JWT",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"bearer token (${TOKEN_VARIABLE}; prefer the variable: arguments are visible to other users)",
    )

    root = argparse.ArgumentParser(prog="mci", description=MAIN_HELP, epilog=EXAMPLES, formatter_class=_Formatter)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    reference = commands.add_parser(
        "reference-data",
        help="load reference data (operations)",
        description="Reference data of the programme: engagements, locations, customers, domains.",
        formatter_class=_Formatter,
    )
    reference_commands = reference.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = reference_commands.add_parser(
        "load",
        parents=[connection],
        help="validate, then load JSON or CSV files",
        description=LOAD_HELP + _columns_help(),
        epilog="example:\n  mci reference-data load engagements.csv locations.csv more.json",
        formatter_class=_Formatter,
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="JSON or CSV files (.json, .csv)")
    load.add_argument("--dry-run", action="store_true", help="validate every record with the API, write nothing")
    load.add_argument(
        "--batch-size",
        type=_positive,
        default=reference_data.DEFAULT_BATCH_RECORDS,
        metavar="N",
        help=f"records per request (default {reference_data.DEFAULT_BATCH_RECORDS}; a request the API finds "
        "too large is split)",
    )
    load.set_defaults(run=_load)

    customers = commands.add_parser(
        "customers",
        help="add customers in bulk, export Customers pages (partners)",
        description="Customers of engagements, as a partner user.",
        formatter_class=_Formatter,
    )
    customer_commands = customers.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_bulk = customer_commands.add_parser(
        "add-bulk",
        parents=[connection],
        help="preview and add one customer and engagement per CSV row",
        description=ADD_BULK_HELP.format(
            columns=", ".join(f"{c}{'*' if c in bulk_add.REQUIRED else ''}" for c in bulk_add.COLUMNS)
        ),
        epilog="example:\n  mci customers add-bulk nominations.csv --results nominations-results.csv",
        formatter_class=_Formatter,
    )
    add_bulk.add_argument("file", metavar="FILE.csv", help="the rows to add")
    add_bulk.add_argument("--results", metavar="PATH", help="where to write the results CSV (default FILE.results.csv)")
    add_bulk.set_defaults(run=_add_bulk)

    export_parser = customer_commands.add_parser(
        "export",
        parents=[connection],
        help="one tab of an engagement's Customers page as CSV",
        description=EXPORT_HELP,
        epilog="example:\n  mci customers export e-azure-migrate --tab complete -o completed.csv",
        formatter_class=_Formatter,
    )
    export_parser.add_argument("engagement", metavar="ENGAGEMENT", help="engagement id, e.g. e-azure-migrate")
    export_parser.add_argument("--tab", required=True, choices=export.TABS, help="which tab")
    export_parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export_parser.add_argument(
        "--page-size",
        type=_page_size,
        default=export.MAX_PAGE,
        metavar="N",
        help=f"items per request, 1 to {export.MAX_PAGE} (default {export.MAX_PAGE})",
    )
    export_parser.set_defaults(run=_export)

    local_token = commands.add_parser(
        "local-token",
        parents=[connection],
        help="a token from the local stack (never a deployed stage)",
        description="Print a JWT issued by the local stack's POST /_local/tokens, for MCI_TOKEN.",
        epilog="example:\n  export MCI_TOKEN=$(mci local-token --partner p-contoso-partners --role incentives_user)",
        formatter_class=_Formatter,
    )
    local_token.add_argument("--partner", required=True, metavar="PARTNER_ID", help="partner_id claim")
    local_token.add_argument(
        "--role", dest="roles", action="append", required=True, metavar="ROLE", help="a role (repeatable)"
    )
    local_token.set_defaults(run=_local_token, needs_token=False)
    return root


# ---------------------------------------------------------------- commands


Command = Callable[[argparse.Namespace, ApiClient, TextIO, TextIO], int]


def _load(args: argparse.Namespace, api: ApiClient, out: TextIO, err: TextIO) -> int:
    result = reference_data.load(api, args.files, dry_run=args.dry_run, max_records=args.batch_size)
    counts = ", ".join(f"{count} {name}" for name, count in result.counts.items())
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    if args.dry_run:
        print(f"Valid: {counts} in {files}. Nothing was written (--dry-run).", file=out)
    else:
        print(f"Loaded {counts} from {files} in {result.batches} batch(es).", file=out)
    return OK


def _add_bulk(args: argparse.Namespace, api: ApiClient, out: TextIO, err: TextIO) -> int:
    results = args.results or bulk_add.default_results_path(args.file)
    if Path(results).resolve() == Path(args.file).resolve():
        print("mci: error: --results must not be the input file", file=err)
        return USAGE
    summary = bulk_add.add_bulk(api, args.file, results)
    print(
        f"{summary.rows} rows: {summary.added} added, {summary.ineligible} ineligible, {summary.refused} refused. "
        f"Results: {results}",
        file=out,
    )
    return OK


def _export(args: argparse.Namespace, api: ApiClient, out: TextIO, err: TextIO) -> int:
    if not args.output or args.output == "-":
        count = export.export(api, args.engagement, args.tab, out, page_size=args.page_size, notes=err)
        print(f"{count} rows exported", file=err)
        return OK
    target = Path(args.output)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            count = export.export(api, args.engagement, args.tab, stream, page_size=args.page_size, notes=err)
        partial.replace(target)  # a failed export never leaves a truncated file under the name asked for
    finally:
        partial.unlink(missing_ok=True)
    print(f"{count} rows exported to {target}", file=out)
    return OK


def _local_token(args: argparse.Namespace, api: ApiClient, out: TextIO, err: TextIO) -> int:
    answer = api.post("/_local/tokens", {"partner_id": args.partner, "roles": args.roles})
    if answer.status == 404:
        raise ApiError(f"{api.base_url} issues no local tokens: only the local stack (make run) does")
    if not answer.ok or not isinstance(answer.body, dict) or "token" not in answer.body:
        raise answer.failure()
    print(answer.body["token"], file=out)
    return OK


# ---------------------------------------------------------------- entry points


@contextlib.contextmanager
def _interruptible(err: TextIO) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        print("\nmci: interrupted; rerunning the same command is safe (nothing is added or loaded twice)", file=err)
        raise


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; the exit code. ``out`` and ``err`` default to stdout and stderr."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    root = parser()
    try:
        args = root.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed by argparse
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else USAGE
    if getattr(args, "needs_token", True) and not args.token:
        print(
            f"mci: error: no token: set {TOKEN_VARIABLE} or pass --token "
            "(on the local stack: export MCI_TOKEN=$(mci local-token --partner ... --role ...))",
            file=err,
        )
        return USAGE
    try:
        api = ApiClient(args.api_url, args.token)
    except ValueError as error:
        print(f"mci: error: {error}", file=err)
        return USAGE
    command: Command = args.run
    try:
        with _interruptible(err):
            return command(args, api, out, err)
    except InputRejected as rejected:
        print_issues(rejected.issues, err)
        print(f"mci: {len(rejected.issues)} problem(s) in the input; nothing was changed", file=err)
        return REJECTED
    except ApiError as error:
        print(f"mci: error: {error}", file=err)
        return API_FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:  # `mci customers export ... | head`: the reader has what it wanted
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return OK


def run() -> None:
    """The console script."""
    sys.exit(main())
