"""``compare``: XMPP versus the native protocol, measured (see docs/protocols.md).

xmlchat compare                       start two servers, measure, print tables (~4 min)
xmlchat compare --quick               smaller sizes (~1 min), for CI
xmlchat compare --json F --out DIR    also JSON, results.md, PNG plots, transcripts
xmlchat compare --doc docs/protocols.md   also refresh the results block of the doc
xmlchat compare --server-config F     measure a running server instead
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from xmlchat.config import Config


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    compare = sub.add_parser(
        "compare", parents=[common], help="measure XMPP against the native protocol on the wire"
    )
    compare.add_argument("--quick", action="store_true", help="small sizes, about a minute (for CI)")
    compare.add_argument("--pairs", type=int, metavar="N", help="sender/recipient pairs (default 10)")
    compare.add_argument(
        "--messages", type=int, metavar="N", help="messages per pair in the throughput run (default 300)"
    )
    compare.add_argument("--json", metavar="FILE", help="write every result as JSON")
    compare.add_argument("--out", metavar="DIR", help="write results.md, PNG plots and transcripts here")
    compare.add_argument(
        "--doc", metavar="FILE", help="refresh the results block of this markdown file (needs --out)"
    )
    compare.add_argument(
        "--server-config",
        metavar="FILE",
        help="measure the running server this configuration describes (users compare creates: a0, b0, ...)",
    )
    compare.add_argument("--server-pid", type=int, metavar="PID", help="its process, for CPU (else found)")
    compare.set_defaults(run=_compare)


def _compare(args: argparse.Namespace, config: Config) -> int:
    from xmlchat.compare import report
    from xmlchat.compare.run import Options, run

    if args.doc and not args.out:
        print("xmlchat compare: --doc needs --out (the plots live there)", file=sys.stderr)
        return 2
    if (args.pairs is not None and args.pairs < 1) or (args.messages is not None and args.messages < 1):
        print("xmlchat compare: --pairs and --messages must be at least 1", file=sys.stderr)
        return 2
    options = Options.make(args.quick, args.pairs, args.messages)
    try:
        results = asyncio.run(run(options, args.server_config, args.server_pid))
    except RuntimeError as e:
        print(f"xmlchat compare: {e}", file=sys.stderr)
        return 1
    command = report.command_line()
    print(report.terminal(results), end="")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report.to_json(results, command), indent=1, ensure_ascii=False))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        _, files = report.write_outputs(results, out, command)
        for name in files:
            print(f"wrote {name}", file=sys.stderr)
        if args.doc:
            doc = Path(args.doc)
            prefix = os.path.relpath(out, doc.parent).replace(os.sep, "/") + "/"
            pngs = [f for f in files if f.endswith(".png")]
            if report.update_doc(doc, report.markdown(results, command, pngs, prefix)):
                print(f"updated {doc}", file=sys.stderr)
            else:
                print(f"xmlchat compare: {doc} has no {report.DOC_BEGIN!r} marker", file=sys.stderr)
                return 1
    return 1 if results.errors else 0
