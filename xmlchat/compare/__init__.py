"""``xmlchat compare``: XMPP and the native protocol, measured on the wire.

The same scenarios run over both protocols, with the project's clients
(the native client library, slixmpp, and small WebSocket and BOSH clients),
through a byte-counting TCP proxy: connect to first message (round trips,
bytes, time), bytes per message, latency, throughput and server CPU,
reconnect cost, what an idle client costs per minute. Beside them, chat
messages as UDP datagrams over an impaired path. ``docs/protocols.md``
shows the results of one run and discusses them.

    proxy.py      the byte-counting, optionally delaying TCP proxy
    servers.py    the servers under test: started here, or one already running
    clients.py    one interface over NativeClient and slixmpp
    web_drivers.py  the same interface over RFC 7395 WebSocket and BOSH (XEP-0206)
    targets.py    the protocol variants, bound to the servers offering them
    wire.py       the measurements read on the wire: bytes, round trips
    timing.py     the measurements read on the clock: latency, throughput, CPU
    idle.py       what an idle client costs: requests and bytes per minute
    datagrams.py  TCP against UDP: chat messages over an impaired datagram path
    records.py    the records the measurements return
    scenarios.py  all the measurements' public names in one place
    run.py        every scenario over every variant, with progress
    summary.py    the headlines and tables computed from the records
    tradeoffs.py  the HTTP and UDP tables and headlines
    charts.py     the PNG plots
    report.py     results out: terminal, JSON, markdown, plots, transcripts
"""

from xmlchat.compare.proxy import Chunk, CountingProxy, Flow, round_trips
from xmlchat.compare.run import Options, Results, run

__all__ = ["Chunk", "CountingProxy", "Flow", "Options", "Results", "round_trips", "run"]
