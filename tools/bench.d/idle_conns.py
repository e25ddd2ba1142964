#!/usr/bin/env python3
"""Memory per idle keepalive connection, for tools/bench.

Usage: idle_conns.py PORT N PID [PID...]

Reads the summed VmRSS of the PIDs (the proxy's processes), opens N client connections to
127.0.0.1:PORT, reads RSS again (connected, no request yet), then sends one GET on every
connection and reads its answer so that each is an idle keepalive connection that has served a
request, and reads RSS a third time. Prints one line:
  conns=N rss0_kib=.. connected_kib=.. idle_kib=.. per_conn_connected_b=.. per_conn_idle_b=..
Exits 1 (with a message) when a connection fails or an answer is not a 200.
"""
import selectors
import socket
import sys
import time


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def settle(pids):
    """RSS after the proxy has had time to accept and process everything."""
    time.sleep(1.0)
    return rss_kib(pids)


def main():
    port, n, pids = int(sys.argv[1]), int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
    rss0 = settle(pids)
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            sys.exit(f"idle_conns: connection {i} failed: {e}")
        socks.append(s)
    rss1 = settle(pids)

    req = (b"GET /api/users/42 HTTP/1.1\r\nHost: bench.local\r\napikey: k-bench\r\n"
           b"Origin: http://app.example\r\n\r\n")
    sel = selectors.DefaultSelector()
    pending = {}
    batch = 500  # keep the proxy's upstream concurrency modest
    for start in range(0, n, batch):
        for s in socks[start:start + batch]:
            s.sendall(req)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        deadline = time.time() + 30
        while pending and time.time() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    sys.exit("idle_conns: the proxy closed a connection")
                buf = pending[s] + data
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    pending[s] = buf
                    continue
                head = buf[:head_end].decode("latin-1")
                if not head.startswith("HTTP/1.1 200"):
                    sys.exit(f"idle_conns: unexpected answer: {head.splitlines()[0]}")
                clen = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        clen = int(value)
                if len(buf) - head_end - 4 < clen:
                    pending[s] = buf
                    continue
                sel.unregister(s)
                del pending[s]
        if pending:
            sys.exit(f"idle_conns: {len(pending)} answers missing after 30 s")
    rss2 = settle(pids)
    print(f"conns={n} rss0_kib={rss0} connected_kib={rss1} idle_kib={rss2} "
          f"per_conn_connected_b={(rss1 - rss0) * 1024 // n} "
          f"per_conn_idle_b={(rss2 - rss0) * 1024 // n}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
