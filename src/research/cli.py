"""Command line: ``research synth | validate | prepare | run | new-study``.

Every expected failure (bad config, bad data, failing notebook) prints one line on stderr and exits with
status 1 (2 for usage errors); a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys

from .errors import ResearchError


def _cmd_synth(args: argparse.Namespace) -> int:
    from .config import load_study
    from .synthetic import generate_study

    written = generate_study(load_study(args.study))
    for path in written:
        print(path)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .checklist import checklist_text, missing_items
    from .config import load_study
    from .data import validate_study

    cfg = load_study(args.study)
    missing = missing_items(cfg)
    if missing:  # a study still being filled in: every gap at once, not just the first
        print(checklist_text(cfg, missing))
        print(f"research: error: study {cfg.study.id}: {len(missing)} thing(s) still missing (listed above)",
              file=sys.stderr)
        return 1
    print(validate_study(cfg))
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .config import load_study
    from .data import prepare_study

    for path in prepare_study(load_study(args.study)):
        print(path)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import run_from_cli

    return run_from_cli(args)


def _cmd_new_study(args: argparse.Namespace) -> int:
    from .scaffold import new_study

    for path in new_study(args.name, force=args.force):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="research", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def study_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--study", default=None, help="study config YAML (default studies/demo/study.yaml)")

    p = sub.add_parser("synth", help="regenerate the synthetic demo data of a study (deterministic)")
    study_arg(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("validate", help="check config, codebook and raw data; print what is still missing, "
                                        "or a summary")
    study_arg(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("prepare", help="validate the raw data and write the processed tables")
    study_arg(p)
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("run", help="run the study's notebooks (incremental) and render the reports")
    study_arg(p)
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run this notebook (short name, NN_name or number; repeatable); the notebooks it "
                        "needs run only when their outputs are missing or stale")
    p.add_argument("--force", action="store_true", help="rerun even when nothing changed")
    p.add_argument("-j", "--jobs", type=int, default=None, help="notebooks run at once (default: cores)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="set a notebook parameter (repeatable; VALUE read as a YAML scalar, e.g. alpha=0.01, "
                        "language=lt); notebooks without that parameter ignore it")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per notebook, no progress bars (CI logs)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("new-study", help="create a study folder with a config, codebook and data templates")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="overwrite an existing study folder")
    p.set_defaults(func=_cmd_new_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ResearchError as e:
        if args.debug:
            raise
        print(f"research: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("research: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
