"""Benchmark harness: xmlchat against Prosody and ejabberd, over plain XMPP (and native).

Run with ``python -m benchmarks.run --help``; see ``benchmarks/README.md``.
Not part of the default test run.
"""
