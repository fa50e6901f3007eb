"""``python -m bceweights.audit [--strict] train.py [args...]``: run a script under audit, print the report.

The script runs as ``__main__`` (``runpy``) with ``sys.argv = ["train.py", args...]`` and its own
directory first on ``sys.path``, as ``python train.py args...`` would run it; ``-m package.module`` runs a
module instead. The report goes to stdout after the script ends (also when it raises or exits).

Exit status: 1 when there are findings (or, with ``--strict``, at the first one); otherwise the script's
own (0 when it ends normally).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence

from bceweights.audit.findings import AuditError
from bceweights.audit.session import audit


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bceweights.audit",
        description="Run a PyTorch training script under bw.audit() and print what its BCE calls get wrong.",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first finding (raise AuditError)")
    parser.add_argument("-m", dest="module", metavar="MODULE", help="run a module (like python -m MODULE)")
    parser.add_argument("script", nargs="?", help="the script to run, e.g. train.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


def _run(module: str | None, script: str | None, args: list[str]) -> None:
    if module is not None:
        sys.argv = [module] + ([script] if script else []) + args
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        assert script is not None
        sys.argv = [script] + args
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        runpy.run_path(script, run_name="__main__")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script or module under audit; print the report; return the exit status."""
    options = _parser().parse_args(argv)
    if options.script is None and options.module is None:
        _parser().error("give a script to run (train.py) or -m MODULE")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    status = 0
    session = audit(strict=options.strict)
    report = session.report
    try:
        with session:
            _run(options.module, options.script, list(options.args))
    except SystemExit as exit_:
        code = exit_.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
        if not isinstance(code, int) and code is not None:
            print(code, file=sys.stderr)
    except AuditError:
        status = 1
    finally:
        sys.argv[:], sys.path[:] = saved_argv, saved_path
        print(report, flush=True)
    return 1 if report.findings else status


if __name__ == "__main__":
    sys.exit(main())
