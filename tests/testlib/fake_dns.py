#!/usr/bin/python3
"""fake_dns: a small authoritative-looking DNS server on loopback for tests (python3-dnslib).

Runs only under Debian's /usr/bin/python3 (apt's python3-dnslib). Answers UDP and TCP on
127.0.0.1 at an ephemeral port from a zone given as a dict; every name not in the zone is
NXDOMAIN, a name in the zone without the asked type is NODATA (NOERROR, empty answer).

Zone: {name: {type: [values]}} with types "A", "AAAA", "MX" ([pref, "host"], "." for a
null MX), "TXT" (a string, or a list of strings for one record of several strings),
"PTR" (keyed by the reverse name, e.g. "1.2.0.192.in-addr.arpa"), "CNAME".
Behaviours: {name: "servfail" | "nxdomain" | "refused" | "drop"} override the zone for every
type of that name ("drop" never answers). Names are case-insensitive, trailing dot optional.
The query log (list of (name, type) in arrival order) is `dns.queries`.

In-process:
    with FakeDns({"example.test": {"MX": [[10, "mx.example.test"]]},
                  "mx.example.test": {"A": ["127.0.0.1"]}},
                 behaviours={"broken.test": "servfail"}) as dns:
        ...  # point the resolver at 127.0.0.1:dns.port
        assert ("example.test", "MX") in dns.queries

As a script (the zone as JSON: {"records": {...}, "behaviours": {...}}):
    /usr/bin/python3 fake_dns.py --zone zone.json --port-file port.txt
writes the port to port.txt once it is listening, and serves until SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord

_BUILD = {
    "A": lambda v: A(v),
    "AAAA": lambda v: AAAA(v),
    "MX": lambda v: MX(v[1] if v[1] != "." else ".", v[0]),
    "TXT": lambda v: TXT([s.encode() for s in v] if isinstance(v, list) else [v.encode()]),
    "PTR": lambda v: PTR(v),
    "CNAME": lambda v: CNAME(v),
}
_RCODES = {"servfail": RCODE.SERVFAIL, "nxdomain": RCODE.NXDOMAIN, "refused": RCODE.REFUSED}


def _norm(name):
    return str(name).rstrip(".").lower()


class FakeDns:
    def __init__(self, records=None, behaviours=None, ttl=60):
        self.records = {_norm(k): v for k, v in (records or {}).items()}
        self.behaviours = {_norm(k): v for k, v in (behaviours or {}).items()}
        self.ttl = ttl
        self.queries = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # UDP and TCP on one port: the kernel's free UDP port may be taken for TCP (another
        # test's server), so try a few.
        for attempt in range(50):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
                if attempt == 49:
                    raise
        self.tcp.listen(16)
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]

    # -- lifecycle
    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def queries_for(self, name, qtype=None):
        with self._lock:
            return [q for q in self.queries if q[0] == _norm(name) and (qtype is None or q[1] == qtype)]

    # -- answering
    def answer(self, data):
        """Reply bytes for a query packet, or None to stay silent."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - garbage in, silence out
            return None
        q = request.q
        name, qtype = _norm(q.qname), QTYPE.get(q.qtype, str(q.qtype))
        with self._lock:
            self.queries.append((name, qtype))
        reply = request.reply()  # QR, AA, RD copied, RA set
        behaviour = self.behaviours.get(name)
        if behaviour == "drop":
            return None
        if behaviour in _RCODES:
            reply.header.rcode = _RCODES[behaviour]
            return reply.pack()
        node = self.records.get(name)
        if node is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack()
        values = node.get(qtype)
        if values is None and "CNAME" in node:
            qtype, values = "CNAME", node["CNAME"]
        for v in values or []:
            reply.add_answer(RR(q.qname, getattr(QTYPE, qtype), rdata=_BUILD[qtype](v), ttl=self.ttl))
        return reply.pack()

    def _serve_udp(self):
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            out = self.answer(data)
            if out is not None:
                if len(out) > 512 and not DNSRecord.parse(data).ar:
                    r = DNSRecord.parse(out)
                    r.header.tc = 1
                    r.rr = []
                    out = r.pack()
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        conn.settimeout(10)
        with conn:
            for _ in range(100):  # bounded: at most 100 queries per connection
                try:
                    head = self._recv(conn, 2)
                    if head is None:
                        return
                    data = self._recv(conn, struct.unpack("!H", head)[0])
                    if data is None:
                        return
                except OSError:
                    return
                out = self.answer(data)
                if out is None:
                    continue
                try:
                    conn.sendall(struct.pack("!H", len(out)) + out)
                except OSError:
                    return

    @staticmethod
    def _recv(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zone", required=True, help='JSON file: {"records": {...}, "behaviours": {...}}')
    ap.add_argument("--port-file", required=True, help="written with the port once listening")
    args = ap.parse_args()
    with open(args.zone, encoding="utf-8") as f:
        zone = json.load(f)
    dns = FakeDns(zone.get("records", {}), zone.get("behaviours", {})).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{dns.port}\n")
    os.rename(tmp, args.port_file)  # readers never see a half-written port
    done.wait()
    dns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
