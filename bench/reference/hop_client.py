"""The measuring client of `bun run bench hop --client python`: a VoidPhone API client in Python asyncio, standard
library only, doing what bench/hop.ts's Bun client does against nodes that hop.ts started and configured. Issue 20's
figures were taken with a Python asyncio API client; this one lets ours be measured the same way.

  hop_client.py hop --pub PORT --sub PORT [--warm-items 2000 --hop-items 1000 --gap-ms 2 --size 64 --settle-ms 2000]
    A validating subscriber on --sub, items announced on --pub one at a time (the next --gap-ms after the previous
    arrived, lost after 2 s); the first --warm-items not counted. Prints {"latencies": [ms…], "lost": n}.
  hop_client.py network --pub PORT --subs P1,P2,… --pids PID,… [--items 40 --rate 10 --burst 1500 --size 64 …]
    A validating subscriber on each --subs node; a burst of --burst announcements at --pub, --items at --rate (time
    until the last subscriber has each), the burst again. CPU per delivery: the --pids processes' user + system time
    during a burst (/proc/PID/stat). Prints {"lastNode": {"latencies": […], "delivered", "expected"}, "firstBurst":
    {…}, "burst": {…}} with hop.ts's BurstRun fields (clientCpuUsPerDelivery: this process's CPU in the burst).

Items are hop.ts's probes (src/testnet/probe.ts): data type 0x7E57, seq u32 ‖ origin u16 ‖ sent-at f64 ‖ a filler
byte (seq + i) & 0xff at every offset i ≥ 14. Every NOTIFICATION is answered valid; a probe counts when its size and
filler are right. Times: time.perf_counter_ns(), taken once per read (every message in one read arrived together).
Hot path kept lean: one reader task per connection, no per-message output, TCP_NODELAY, the VALIDATIONs of one read
sent in one write. Any error, or a node closing a connection, ends the process with status 1 and a line on stderr.
"""
import argparse
import asyncio
import json
import os
import socket
import struct
import sys
from time import perf_counter_ns, process_time_ns

HOST = "127.0.0.1"
ANNOUNCE, NOTIFY, NOTIFICATION, VALIDATION = 500, 501, 502, 503
PROBE_DATA_TYPE = 0x7E57
PROBE_HEADER_BYTES = 14
PROBE_HEAD = struct.Struct(">IHd")  # seq, origin, sent-at (ms)
VALID_HEAD = struct.pack(">HH", 8, VALIDATION)  # then the message ID (2 bytes, as received) and flags 0x0001
VALID_FLAGS = b"\x00\x01"
FILL = bytes(i & 0xFF for i in range(256 + 65536))  # FILL[k + j] == (k + j) & 0xff
QUIET_NS = 3_000_000_000  # a phase ends once nothing arrived for 3 s (as hop.ts's waitQuiet)


def fail(message: str) -> None:
    print(f"hop_client: {message}", file=sys.stderr, flush=True)
    os._exit(1)  # also ends reader tasks and pending writes at once


class Client:
    """One API connection. As a subscriber, its reader task answers every NOTIFICATION valid and calls
    on_probe(seq, at_ns) for each well-formed probe of `size` bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader, self.writer, self.port = reader, writer, port
        self.on_probe = None
        self.size = 0
        self.task = None

    @staticmethod
    async def connect(port: int) -> "Client":
        reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Client(reader, writer, port)

    def subscribe(self, size: int, on_probe) -> None:
        self.size, self.on_probe = size, on_probe
        self.writer.write(struct.pack(">HHHH", 8, NOTIFY, 0, PROBE_DATA_TYPE))
        self.task = asyncio.create_task(self.read_loop())

    async def read_loop(self) -> None:
        read, write, on_probe, size = self.reader.read, self.writer.write, self.on_probe, self.size
        filler = size - PROBE_HEADER_BYTES
        seq_of = struct.Struct(">I").unpack_from
        buf = b""
        while True:
            chunk = await read(1 << 16)
            if not chunk:
                fail(f"the node at port {self.port} closed the API connection")
            at = perf_counter_ns()
            buf = buf + chunk if buf else chunk
            n, pos, answers = len(buf), 0, []
            while n - pos >= 4:
                msize = (buf[pos] << 8) | buf[pos + 1]
                if msize < 4:
                    fail(f"a message of size {msize} from port {self.port}")
                if n - pos < msize:
                    break
                if (buf[pos + 2] << 8) | buf[pos + 3] == NOTIFICATION and msize >= 8:
                    answers.append(VALID_HEAD + buf[pos + 4 : pos + 6] + VALID_FLAGS)
                    if msize == 8 + size and (buf[pos + 6] << 8) | buf[pos + 7] == PROBE_DATA_TYPE:
                        (seq,) = seq_of(buf, pos + 8)
                        k = (seq + PROBE_HEADER_BYTES) & 0xFF
                        if buf[pos + 8 + PROBE_HEADER_BYTES : pos + msize] == FILL[k : k + filler]:
                            on_probe(seq, at)
                pos += msize
            buf = buf[pos:] if pos < n else b""
            if answers:
                write(answers[0] if len(answers) == 1 else b"".join(answers))


class Publisher:
    """Announces probes (TTL 0) on one connection; sequence numbers unique within this process."""

    def __init__(self, client: Client, size: int):
        if size < PROBE_HEADER_BYTES:
            fail(f"--size must be ≥ {PROBE_HEADER_BYTES}")
        self.write = client.writer.write
        self.head = struct.pack(">HHBBH", 8 + size, ANNOUNCE, 0, 0, PROBE_DATA_TYPE)
        self.filler = size - PROBE_HEADER_BYTES
        self.next_seq = 1

    def announce(self) -> tuple[int, int]:
        seq = self.next_seq
        self.next_seq = seq + 1
        k = (seq + PROBE_HEADER_BYTES) & 0xFF
        at = perf_counter_ns()
        self.write(self.head + PROBE_HEAD.pack(seq, 0, at / 1e6) + FILL[k : k + self.filler])
        return seq, at


async def warm_up(pub: Publisher, reached, settle_ms: int) -> None:
    """Announces a probe every 100 ms until one reaches every subscriber (reached(seq)), then waits settle_ms."""
    deadline = perf_counter_ns() + 30_000_000_000
    sent: list[int] = []
    while not any(reached(s) for s in sent):
        if perf_counter_ns() > deadline:
            fail("the network did not deliver a warm-up item within 30 s")
        sent.append(pub.announce()[0])
        await asyncio.sleep(0.1)
    await asyncio.sleep(settle_ms / 1000)


async def wait_quiet(done, last_at, quiet_ns: int = QUIET_NS) -> None:
    """Until done(), or nothing was delivered for quiet_ns (at most 60 s); polls every 10 ms as hop.ts does."""
    start = perf_counter_ns()
    while not done():
        now = perf_counter_ns()
        if now - max(last_at(), start) > quiet_ns or now - start > 60_000_000_000:
            return
        await asyncio.sleep(0.01)


async def one_hop(a: argparse.Namespace) -> dict:
    loop = asyncio.get_running_loop()
    arrived: set[int] = set()
    waiting: list = [0, None]  # [seq, future] of the item in flight

    def on_probe(seq: int, at: int) -> None:
        arrived.add(seq)
        fut = waiting[1]
        if waiting[0] == seq and fut is not None and not fut.done():
            fut.set_result(at)

    sub = await Client.connect(a.sub)
    sub.subscribe(a.size, on_probe)
    pub = Publisher(await Client.connect(a.pub), a.size)
    await warm_up(pub, arrived.__contains__, a.settle_ms)
    latencies: list[float] = []
    lost = 0
    gap = a.gap_ms / 1000
    for i in range(a.warm_items + a.hop_items):
        fut = loop.create_future()
        waiting[0], waiting[1] = pub.next_seq, fut
        timer = loop.call_later(2.0, lambda f=fut: f.done() or f.set_result(None))
        _, sent_at = pub.announce()
        at = await fut
        timer.cancel()
        if i >= a.warm_items:
            if at is None:
                lost += 1
            else:
                latencies.append((at - sent_at) / 1e6)
        await asyncio.sleep(gap)
    return {"latencies": latencies, "lost": lost}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the node processes used so far (NaN where /proc has none)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            return float("nan")
        fields = stat[stat.rindex(")") + 2 :].split(" ")  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def network(a: argparse.Namespace) -> dict:
    others = len(a.subs)
    count: dict[int, int] = {}
    sent_at: dict[int, int] = {}
    last_node: list[float] = []
    state = [0, 0]  # deliveries, last delivery (ns)

    def on_probe(seq: int, at: int) -> None:
        state[0] += 1
        state[1] = at
        c = count.get(seq, 0) + 1
        count[seq] = c
        if c == others:
            t = sent_at.get(seq)
            if t is not None:
                last_node.append((at - t) / 1e6)

    subs = [await Client.connect(p) for p in a.subs]
    for s in subs:
        s.subscribe(a.size, on_probe)
    pub = Publisher(await Client.connect(a.pub), a.size)
    await warm_up(pub, lambda seq: count.get(seq) == others, a.settle_ms)

    async def burst() -> dict:
        before = state[0]
        cpu_before = cpu_seconds(a.pids)
        client_before = process_time_ns()
        start = perf_counter_ns()
        for _ in range(a.burst):
            pub.announce()
        expected = a.burst * others
        await wait_quiet(lambda: state[0] - before == expected, lambda: state[1])
        delivered = state[0] - before
        seconds = (state[1] - start) / 1e9
        cpu = cpu_seconds(a.pids) - cpu_before
        client = (process_time_ns() - client_before) / 1e3
        return {
            "deliveriesPerSec": delivered / seconds if seconds > 0 else float("nan"),
            "delivered": delivered,
            "expected": expected,
            "lost": expected - delivered,
            "seconds": seconds,
            "cpuUsPerDelivery": cpu * 1e6 / delivered if delivered else float("nan"),
            "clientCpuUsPerDelivery": client / delivered if delivered else float("nan"),
        }

    first = await burst()
    await asyncio.sleep(a.settle_ms / 1000)

    t0 = perf_counter_ns()
    for i in range(a.items):
        delay = (t0 + i * 1_000_000_000 // a.rate - perf_counter_ns()) / 1e9
        await asyncio.sleep(max(0.0, delay))
        seq, at = pub.announce()
        sent_at[seq] = at
    await wait_quiet(lambda: len(last_node) == a.items, lambda: state[1])
    latency = {"latencies": list(last_node), "delivered": len(last_node), "expected": a.items}

    nxt = await burst()
    return {"lastNode": latency, "firstBurst": first, "burst": nxt}


def main() -> None:
    ports = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="phase", required=True)
    for name in ("hop", "network"):
        q = sub.add_parser(name)
        q.add_argument("--pub", type=int, required=True)
        q.add_argument("--size", type=int, default=64)
        q.add_argument("--settle-ms", type=float, default=2000)
        if name == "hop":
            q.add_argument("--sub", type=int, required=True)
            q.add_argument("--warm-items", type=int, default=2000)
            q.add_argument("--hop-items", type=int, default=1000)
            q.add_argument("--gap-ms", type=float, default=2)
        else:
            q.add_argument("--subs", type=ports, required=True)
            q.add_argument("--pids", type=ports, default=[])
            q.add_argument("--items", type=int, default=40)
            q.add_argument("--rate", type=float, default=10)
            q.add_argument("--burst", type=int, default=1500)
    a = p.parse_args()
    try:
        result = asyncio.run(one_hop(a) if a.phase == "hop" else network(a))
    except OSError as e:
        fail(f"{type(e).__name__}: {e}")
    print(json.dumps(scrub(result), allow_nan=False), flush=True)


def scrub(x):
    """NaN (no /proc, nothing delivered) goes out as null: JSON has no NaN."""
    if isinstance(x, float):
        return x if x - x == 0 else None
    if isinstance(x, dict):
        return {k: scrub(v) for k, v in x.items()}
    if isinstance(x, list):
        return [scrub(v) for v in x]
    return x


if __name__ == "__main__":
    main()
