"""A floor for `bun run bench hop`: a minimal VoidPhone Gossip module, NOT a real one (plain TCP, no crypto, no PoW).
It speaks the VoidPhone API (ANNOUNCE/NOTIFY/NOTIFICATION/VALIDATION) and floods items over unauthenticated TCP links
to its bootstrapper and inbound peers, so the bench measures what API + one socket hop cost with nothing else on top.
Python 3.11, standard library only. Run:
  node_modules/.bin/bun run bench hop --node "python3 $PWD/bench/reference/plain_gossip.py -c {config}"
(an absolute path: bench hop starts its nodes in a temporary directory)
"""
import argparse
import asyncio
import configparser
import hashlib
import struct
import sys
from collections import OrderedDict

ANNOUNCE, NOTIFY, NOTIFICATION, VALIDATION = 500, 501, 502, 503
SEEN_MAX = 100_000  # items remembered for de-duplication (oldest forgotten first)
PEER_HEADER = struct.Struct(">IHB")  # peer frame: u32 length of what follows, u16 data type, u8 TTL, then data


def log(*args: object) -> None:
    print("plain_gossip:", *args, file=sys.stderr, flush=True)


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    return host.strip("[]"), int(port)


def read_config(path: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    with open(path) as f:
        parser.read_string("[global]\n" + f.read())  # the `hostkey = …` line comes before any section
    return parser["gossip"]


class Pending:
    """An item from a peer, waiting for every local subscriber's VALIDATION before it is forwarded."""

    def __init__(self, dtype: int, ttl: int, data: bytes, sender: "Peer", waiting: int):
        self.dtype, self.ttl, self.data, self.sender, self.waiting = dtype, ttl, data, sender, waiting
        self.done = False


class Peer:
    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer

    def send(self, dtype: int, ttl: int, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(PEER_HEADER.pack(3 + len(data), dtype, ttl) + data)


class Node:
    def __init__(self) -> None:
        self.peers: set[Peer] = set()
        self.subscribers: dict[int, set[asyncio.StreamWriter]] = {}  # data type → API connections
        self.seen: OrderedDict[bytes, None] = OrderedDict()
        self.pending: dict[int, tuple[asyncio.StreamWriter, Pending | None]] = {}  # message ID → (module, item)
        self.next_id = 0

    def first_sight(self, dtype: int, data: bytes) -> bool:
        key = hashlib.blake2b(struct.pack(">H", dtype) + data, digest_size=16).digest()
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > SEEN_MAX:
            self.seen.popitem(last=False)
        return True

    def notify(self, module: asyncio.StreamWriter, dtype: int, data: bytes, item: Pending | None) -> None:
        while self.next_id in self.pending:  # skip IDs still waiting for an answer
            self.next_id = (self.next_id + 1) & 0xFFFF
        mid, self.next_id = self.next_id, (self.next_id + 1) & 0xFFFF
        self.pending[mid] = (module, item)
        module.write(struct.pack(">HHHH", 8 + len(data), NOTIFICATION, mid, dtype) + data)

    # --- local modules (VoidPhone API) ---

    async def api_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size, mtype = struct.unpack(">HH", await reader.readexactly(4))
                if size < 4:
                    break
                body = await reader.readexactly(size - 4)
                if mtype == ANNOUNCE and len(body) >= 4:
                    ttl, dtype, data = body[0], struct.unpack(">H", body[2:4])[0], body[4:]
                    self.announced(writer, ttl, dtype, data)
                elif mtype == NOTIFY and len(body) == 4:
                    self.subscribers.setdefault(struct.unpack(">H", body[2:4])[0], set()).add(writer)
                elif mtype == VALIDATION and len(body) == 4:
                    mid, flags = struct.unpack(">HH", body)
                    self.validated(writer, mid, flags & 1 == 1)
                else:
                    break  # a malformed or unexpected message ends the connection
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for subs in self.subscribers.values():
                subs.discard(writer)
            for mid, (module, item) in list(self.pending.items()):
                if module is writer:  # its items stay unanswered: never forwarded
                    del self.pending[mid]
                    if item is not None:
                        item.done = True
            writer.close()

    def announced(self, origin: asyncio.StreamWriter, ttl: int, dtype: int, data: bytes) -> None:
        """A local ANNOUNCE: other local subscribers get it (best effort, as our node does), and every peer."""
        self.first_sight(dtype, data)
        for module in self.subscribers.get(dtype, ()):
            if module is not origin:
                self.notify(module, dtype, data, None)
        for peer in self.peers:
            peer.send(dtype, ttl, data)

    def validated(self, module: asyncio.StreamWriter, mid: int, valid: bool) -> None:
        entry = self.pending.get(mid)
        if entry is None or entry[0] is not module:
            return
        del self.pending[mid]
        item = entry[1]
        if item is None or item.done:
            return
        if not valid:
            item.done = True  # one "invalid" drops the item
            return
        item.waiting -= 1
        if item.waiting == 0:
            item.done = True
            if item.ttl == 1:
                return  # delivered locally, must not travel further
            onward = 0 if item.ttl == 0 else item.ttl - 1
            for peer in self.peers:
                if peer is not item.sender:
                    peer.send(item.dtype, onward, item.data)

    # --- peers ---

    def received(self, sender: Peer, dtype: int, ttl: int, data: bytes) -> None:
        if not self.first_sight(dtype, data):
            return
        modules = list(self.subscribers.get(dtype, ()))
        if not modules:
            return  # nobody here subscribed to this type: it does not propagate through this node
        item = Pending(dtype, ttl, data, sender, len(modules))
        for module in modules:
            self.notify(module, dtype, data, item)

    async def peer_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(writer)
        self.peers.add(peer)
        try:
            while True:
                length, dtype, ttl = PEER_HEADER.unpack(await reader.readexactly(PEER_HEADER.size))
                if length < 3:
                    break
                self.received(peer, dtype, ttl, await reader.readexactly(length - 3))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.peers.discard(peer)
            writer.close()

    async def keep_link(self, host: str, port: int) -> None:
        """Dials the bootstrapper until it answers, and again whenever the link drops."""
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            log(f"linked to {host}:{port}")
            await self.peer_link(reader, writer)
            await asyncio.sleep(0.1)


async def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("-c", "--config", required=True)
    config = read_config(args.parse_args().config)
    node = Node()
    api_host, api_port = parse_address(config["api_address"])
    p2p_host, p2p_port = parse_address(config["p2p_address"])
    api = await asyncio.start_server(node.api_connection, api_host, api_port)
    p2p = await asyncio.start_server(node.peer_link, p2p_host, p2p_port)
    log(f"API on {api_host}:{api_port}, P2P on {p2p_host}:{p2p_port}")
    tasks = []
    if "bootstrapper" in config:
        tasks.append(asyncio.create_task(node.keep_link(*parse_address(config["bootstrapper"]))))
    async with api, p2p:
        await asyncio.gather(api.serve_forever(), p2p.serve_forever(), *tasks)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
