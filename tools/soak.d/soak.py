#!/usr/bin/env python3
"""Soak driver for tools/soak (see there for usage and docs/reliability.md for a recorded run).

Starts three test origins (A and B behind the upstream "pool", C behind "stable") and lintel with
three routes:
  /api/     pool, plugins cors + auth (key) + ratelimit (never reached) + logging (file) + tp-probe
  /stable/  stable, plugins cors + tp-probe
  /public/  pool, no plugins
Then, while THREADS client threads send keepalive requests round-robin over the routes, every
second it
  - kills one of A / B (SIGKILL) or restarts the one that is down, on the same port,
  - rewrites the configuration (a ratelimit and a tag value change) and sends SIGHUP,
  - installs the other build of tp-probe (1.0.0 <-> 2.0.0) into the plugin directory and reloads
    through POST /-/reload (which must answer 200),
and once a minute rotates the access log (rename + SIGUSR1). Every minute it prints one row:
requests, failures by cause, lintel's open descriptors (/proc/PID/fd) and RSS.

A failure is anything but a 200 with X-Probe-Version (on the plugin routes): a status (with the
"error" of lintel's JSON answer: "no healthy upstream target", "upstream connect refused"), or a
transport error (reset, timeout, closed). Only the routes to the pool, whose targets are killed,
may fail ("expected"); a failure on /stable/ is not expected. The verdict at the end: crashes
(lintel exited, or did not stop cleanly on SIGTERM), unexpected failures, and whether descriptors
and RSS stayed flat (last minute against the first full minute; runs of 3 minutes or more).
Exit status 0 only with no crash, no unexpected failure and, when measured, flat descriptors and
RSS.
"""
import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROUTES = [("api", "/api/users/42"), ("stable", "/stable/items/7"), ("public", "/public/x")]
EXPECTED_FAIL_ROUTES = {"api", "public"}  # routed to the pool whose targets are killed
HEADERS = {"apikey": "k-soak", "Origin": "http://app.example"}

CONFIG = """\
listen:
  - address: 127.0.0.1:{port}
admin: {{ address: "127.0.0.1:{admin}" }}
workers: 2
timeouts: {{ client_header: 10s, keepalive: 60s, drain: 5s }}
plugin_paths: [{plugin_dir}]
consumers:
  - name: soak
    id: "1"
    credentials:
      keys: [k-soak]
upstreams:
  pool:
    targets:
      - address: 127.0.0.1:{a}
      - address: 127.0.0.1:{b}
    keepalive: 64
    retries: 1
    timeouts: {{ connect: 1s, read: 5s }}
    health:
      passive: {{ failures: 1, cooldown: 1s }}
  stable:
    targets:
      - address: 127.0.0.1:{c}
    keepalive: 64
routes:
  - name: api
    match: {{ paths: ["/api/"] }}
    upstream: pool
    plugins:
      - name: cors
        config: {{ origins: ["http://app.example"] }}
      - name: auth
        config: {{ methods: [key] }}
      - name: ratelimit
        config: {{ second: {rate}, key: consumer }}
      - name: logging
        config:
          format: json
          sink: {{ type: file, path: {access_log} }}
      - name: tp-probe
        config: {{ tag: {tag} }}
  - name: stable
    match: {{ paths: ["/stable/"] }}
    upstream: stable
    plugins:
      - name: cors
        config: {{ origins: ["http://app.example"] }}
      - name: tp-probe
        config: {{ tag: {tag} }}
  - name: public
    match: {{ paths: ["/public/"] }}
    upstream: pool
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Origin:
    def __init__(self, binary, name, log_dir):
        self.binary, self.name, self.log_dir = binary, name, log_dir
        self.port = 0
        self.proc = None

    def start(self):
        for attempt in range(50):
            log = open(os.path.join(self.log_dir, "origin-%s.log" % self.name), "ab")
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--name", self.name],
                stdout=subprocess.PIPE, stderr=log)
            log.close()
            line = self.proc.stdout.readline().decode().split()
            if len(line) == 2 and line[0] == "ready":
                self.port = int(line[1])
                return
            self.proc.wait()
            time.sleep(0.1)  # the port may still be held for a moment after a kill
        raise RuntimeError("origin %s did not start on port %d" % (self.name, self.port))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.failures = collections.Counter()  # (route, cause) -> n
        self.versions = collections.Counter()

    def ok(self, version):
        with self.lock:
            self.requests += 1
            if version:
                self.versions[version] += 1

    def fail(self, route, cause):
        with self.lock:
            self.requests += 1
            self.failures[(route, cause)] += 1

    def take(self):
        with self.lock:
            out = (self.requests, self.failures, self.versions)
            self.requests, self.failures, self.versions = 0, collections.Counter(), collections.Counter()
            return out


def error_text(body):
    """The "error" of the JSON body lintel gives its own answers, as " (text)", else ""."""
    try:
        return " (%s)" % json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return ""


def client(port, stats, stop, index):
    conn = None
    i = index
    while not stop.is_set():
        route, path = ROUTES[i % len(ROUTES)]
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers=HEADERS)
            resp = conn.getresponse()
            body = resp.read()
            version = resp.getheader("X-Probe-Version")
            if resp.status == 200 and (route == "public" or version):
                stats.ok(version)
            else:
                stats.fail(route, "status %d%s" % (resp.status, error_text(body)))
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            cause = type(e).__name__
            if isinstance(e, socket.timeout):
                cause = "timeout"
            stats.fail(route, cause)
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def proc_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--build", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--report", help="also write the table (markdown) here")
    a = ap.parse_args()

    lintel_bin = os.path.join(a.build, "lintel")
    origin_bin = os.path.join(a.build, "lintel-test-origin")
    plugin_dir = os.path.join(a.work, "plugins")
    os.makedirs(plugin_dir, exist_ok=True)
    for p in ("auth", "cors", "ratelimit", "logging"):
        shutil.copy(os.path.join(a.build, "plugins", p + ".so"), plugin_dir)
    probes = [os.path.join(a.build, "tests", "host-plugins", "v" + v, "tp-probe.so")
              for v in ("1.0.0", "2.0.0")]

    def install_probe(k):
        dst = os.path.join(plugin_dir, "tp-probe.so")
        shutil.copy(probes[k], dst + ".new")
        os.rename(dst + ".new", dst)  # a scan sees the old file or the new one, never half

    install_probe(0)
    origins = {n: Origin(origin_bin, n, a.work) for n in "ABC"}
    for o in origins.values():
        o.start()
    port, admin = free_port(), free_port()
    conf = os.path.join(a.work, "soak.yaml")
    access_log = os.path.join(a.work, "access.log")

    def write_config(variant):
        text = CONFIG.format(port=port, admin=admin, plugin_dir=plugin_dir, a=origins["A"].port,
                             b=origins["B"].port, c=origins["C"].port, access_log=access_log,
                             rate=1000000000 - variant % 2, tag="v%d" % (variant % 2))
        with open(conf + ".new", "w") as f:
            f.write(text)
        os.rename(conf + ".new", conf)

    write_config(0)
    lintel_log = open(os.path.join(a.work, "lintel.log"), "ab")
    env = dict(os.environ, LINTEL_RUN_DIR=a.work)
    gw = subprocess.Popen([lintel_bin, "-c", conf], stdout=lintel_log, stderr=lintel_log, env=env)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        print("soak: lintel did not start; see %s/lintel.log" % a.work, file=sys.stderr)
        gw.kill()
        return 1

    stats, stop = Stats(), threading.Event()
    threads = [threading.Thread(target=client, args=(port, stats, stop, i), daemon=True)
               for i in range(a.threads)]
    for t in threads:
        t.start()

    counts = collections.Counter()
    rows = []
    crashed = None
    total_fail = collections.Counter()
    total_requests = 0
    versions_all = collections.Counter()

    def take():
        """The requests, failures and versions since the last call, also added to the totals."""
        nonlocal total_requests
        n, fails, versions = stats.take()
        total_requests += n
        total_fail.update(fails)
        versions_all.update(versions)
        return n, fails, versions

    header = "| minute | requests | req/s | failures (route: cause) | lintel fds | lintel RSS (MiB) | kills / restarts | reloads (SIGHUP / admin) | probe versions seen |"
    print(header)
    print("|---|---|---|---|---|---|---|---|---|")
    sys.stdout.flush()
    start = time.monotonic()
    next_row = start + 60
    tick = 0
    victim_cycle = ["A", "B"]
    try:
        while time.monotonic() - start < a.minutes * 60:
            time.sleep(max(0.0, start + tick + 1 - time.monotonic()))
            tick += 1
            if gw.poll() is not None:
                crashed = "lintel exited with %s" % gw.returncode
                break
            # 1. an upstream target: kill the live one of the pair, or restart the dead one
            name = victim_cycle[((tick - 1) // 2) % 2]  # kill A, restart A, kill B, restart B
            o = origins[name]
            if o.alive():
                o.kill()
                counts["kills"] += 1
            else:
                o.start()
                counts["restarts"] += 1
            # 2. the configuration changes and is reloaded by SIGHUP
            write_config(tick)
            gw.send_signal(signal.SIGHUP)
            counts["sighup"] += 1
            # 3. the other build of tp-probe, then a reload through the admin API
            install_probe(tick % 2)
            try:
                req = urllib.request.Request("http://127.0.0.1:%d/-/reload" % admin, method="POST")
                with urllib.request.urlopen(req, timeout=10) as r:
                    counts["admin_ok" if r.status == 200 else "admin_failed"] += 1
            except Exception as e:  # a refused reload answers 400: counted, shown in the table
                counts["admin_failed"] += 1
                print("soak: admin reload failed: %s" % e, file=sys.stderr)
            if time.monotonic() >= next_row:
                minute = len(rows) + 1
                n, fails, versions = take()
                fd, rss = proc_fds(gw.pid), proc_rss_kb(gw.pid)
                ftxt = ", ".join("%s: %s %d" % (r, c, k) for (r, c), k in sorted(fails.items())) or "0"
                row = (minute, n, n / 60.0, ftxt, fd, rss / 1024.0,
                       "%d / %d" % (counts["kills"], counts["restarts"]),
                       "%d / %d%s" % (counts["sighup"], counts["admin_ok"],
                                      " (%d refused)" % counts["admin_failed"] if counts["admin_failed"] else ""),
                       ", ".join("%s: %d" % kv for kv in sorted(versions.items())))
                rows.append(row)
                print("| %d | %d | %.0f | %s | %d | %.1f | %s | %s | %s |" % row)
                sys.stdout.flush()
                # rotate the access log: rename, SIGUSR1 makes the logging plugin reopen it
                if os.path.exists(access_log):
                    os.replace(access_log, access_log + ".1")
                    gw.send_signal(signal.SIGUSR1)
                    os.unlink(access_log + ".1")
                next_row += 60
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
        take()
        exit_code = None
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            try:
                exit_code = gw.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gw.kill()
                exit_code = "hung on SIGTERM"
        else:
            exit_code = gw.returncode
        for o in origins.values():
            o.kill()
    if crashed is None and exit_code != 0:
        crashed = "lintel stopped with %s on SIGTERM" % exit_code

    unexpected = {k: v for k, v in total_fail.items() if k[0] not in EXPECTED_FAIL_ROUTES}
    print()
    print("totals: %d requests, %d failed (%d on routes with killed targets, %d elsewhere)" % (
        total_requests, sum(total_fail.values()),
        sum(v for k, v in total_fail.items() if k[0] in EXPECTED_FAIL_ROUTES),
        sum(unexpected.values())))
    for (r, c), k in sorted(total_fail.items()):
        print("  %s: %s: %d" % (r, c, k))
    print("kills %d, restarts %d, SIGHUP reloads %d, admin reloads %d ok / %d refused" % (
        counts["kills"], counts["restarts"], counts["sighup"], counts["admin_ok"], counts["admin_failed"]))
    print("probe versions served: %s" % dict(versions_all))
    flat, growing = "", False
    if len(rows) >= 3:
        fd0, fd1 = rows[0][4], rows[-1][4]
        rss0, rss1 = rows[0][5], rows[-1][5]
        fd_max = max(r[4] for r in rows)
        rss_max = max(r[5] for r in rows)
        fd_flat = fd1 - fd0 <= 16
        rss_flat = rss1 <= rss0 * 1.10 + 2
        flat = "fds %d -> %d (max %d): %s; RSS %.1f -> %.1f MiB (max %.1f): %s" % (
            fd0, fd1, fd_max, "flat" if fd_flat else "GROWING",
            rss0, rss1, rss_max, "flat" if rss_flat else "GROWING")
        print(flat)
        growing = not (fd_flat and rss_flat)
    verdict = "PASS" if crashed is None and not unexpected and not growing else "FAIL"
    print("crashes: %s" % (crashed or "0"))
    print("verdict: %s" % verdict)
    if a.report:
        with open(a.report, "w") as f:
            f.write(header + "\n|---|---|---|---|---|---|---|---|---|\n")
            for row in rows:
                f.write("| %d | %d | %.0f | %s | %d | %.1f | %s | %s | %s |\n" % row)
            f.write("\n%d requests, failures: %s; crashes: %s; %s; verdict %s\n" % (
                total_requests, dict(total_fail) or 0, crashed or 0, flat, verdict))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
