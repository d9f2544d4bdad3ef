"""The `feagi-burst` program: the typer app the commands register on, its global --version, the
consoles the commands print to, and main(), the console entry point (errors: one line, an exit code)."""
from __future__ import annotations

import sys

import typer
from typer.exceptions import Abort, TyperException
from rich.console import Console

from feagi_burst.backends.base import BackendError
from feagi_burst.errors import InputError
from feagi_burst.files import printable

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, context_settings=HELP,
                  help="A fast, exact burst engine for FEAGI spiking neural networks.")
genome_app = typer.Typer(no_args_is_help=True, context_settings=HELP, help="Inspect FEAGI genomes.")
app.add_typer(genome_app, name="genome")
out = Console()
err = Console(stderr=True)


def version_callback(value: bool) -> None:
    """--version: print the version and exit."""
    if value:
        from feagi_burst import __version__

        print(f"feagi-burst {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """A fast, exact burst engine for FEAGI spiking neural networks."""


def fail(message: str, code: int) -> None:
    """The one error line (control characters escaped: it stays one line and cannot drive the terminal)."""
    print(f"feagi-burst: error: {printable(message)}", file=sys.stderr, flush=True)
    sys.exit(code)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except InputError as e:
        fail(str(e), 2)
    except BackendError as e:  # a device failure with fallback off, or a brain the chosen backend cannot hold
        fail(str(e), 1)
    except Abort as e:
        if isinstance(e.__cause__, EOFError):  # click turns an EOFError from any reader into a silent abort
            fail(f"a file ended early ({e.__cause__ or 'EOFError'}): it is empty or truncated; check the inputs", 2)
        sys.exit(130)
    except TyperException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message(), file=sys.stderr)
        else:
            fail(e.format_message(), e.exit_code)
        sys.exit(e.exit_code)
    # Safety nets: the readers and writers above turn these into precise InputErrors; one reaching
    # here still gets one line rather than a traceback.
    except MemoryError:
        fail("out of memory; the input is too large for this machine (use a smaller brain or record)", 2)
    except RecursionError:
        fail("an input is nested too deeply to process; check the genome, schedule or record", 2)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        fail(f"{where}{e.strerror or e}", 2)
    except ValueError as e:
        if "null byte" not in str(e):
            raise
        fail("a path contains a NUL byte; paths cannot hold one", 2)
    sys.exit(code if isinstance(code, int) else 0)
