#!/usr/bin/env python3
"""Tables for tools/bench.

report.py runs FILE        one row per measured run (every round), then the medians with the
                           ratio of each median to nginx's (or to BASE with --base BASE)
report.py scaling FILE NCPU
                           the 1-worker / 2-worker table and the scaling factor; FILE lines carry
                           three more fields: origin_cpu_seconds machine_busy_fraction
                           wrk_cpu_seconds
report.py wrk FILE         parses one wrk --latency output: prints
                           "requests seconds rps p50_us p99_us errors"

The runs file has one tab-separated line per run:
  round scenario requests seconds rps p50_us p99_us cpu_seconds errors noise_cores sys_seconds
(noise_cores: CPU used by other processes than the proxy, the origin and wrk, in cores;
sys_seconds: the kernel's part of cpu_seconds.)
"""
import re
import statistics
import sys

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"bad latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    text = open(path).read()
    m = re.search(r"(\d+) requests in ([0-9.]+)(us|ms|s|m),", text)
    if not m:
        sys.exit(f"report.py: no request count in {path}:\n{text}")
    requests = int(m.group(1))
    seconds = float(m.group(2)) * UNITS[m.group(3)] / 1e6
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)  # only with wrk --latency
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    p50 = to_us(p50.group(1)) if p50 else 0.0
    p99 = to_us(p99.group(1)) if p99 else 0.0
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    print(f"{requests} {seconds:.3f} {rps:.1f} {p50:.1f} {p99:.1f} {errors}")


def load(path):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 9:
            continue
        rows.append({
            "round": int(f[0]), "name": f[1], "requests": int(f[2]), "seconds": float(f[3]),
            "rps": float(f[4]), "p50": float(f[5]), "p99": float(f[6]),
            "cpu_s": float(f[7]), "errors": int(f[8]),
            "noise": float(f[9]) if len(f) > 9 else 0.0,
            "sys_s": float(f[10]) if len(f) > 10 else float("nan"),
        })
    for r in rows:
        r["cpu_us"] = r["cpu_s"] * 1e6 / r["requests"] if r["requests"] else float("nan")
        r["sys_us"] = r["sys_s"] * 1e6 / r["requests"] if r["requests"] else float("nan")
        r["cores"] = r["cpu_s"] / r["seconds"] if r["seconds"] else float("nan")
    return rows


def fmt_us(us):
    return f"{us / 1e3:.2f}ms" if us >= 1000 else f"{us:.0f}us"


def runs(path, base):
    rows = load(path)
    order = []
    for r in rows:
        if r["name"] not in order:
            order.append(r["name"])
    print("Every run:")
    print("| round | scenario | req/s | p50 | p99 | CPU µs/req | of which kernel | CPU (cores) "
          "| errors | noise (cores) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['round']} | {r['name']} | {r['rps']:.0f} | {fmt_us(r['p50'])} | "
              f"{fmt_us(r['p99'])} | {r['cpu_us']:.2f} | {r['sys_us']:.2f} | {r['cores']:.2f} | "
              f"{r['errors']} | {r['noise']:.2f} |")
    med = {}
    for name in order:
        rs = [r for r in rows if r["name"] == name]
        med[name] = {k: statistics.median(r[k] for r in rs)
                     for k in ("rps", "p50", "p99", "cpu_us", "sys_us", "cores")}
        med[name]["errors"] = sum(r["errors"] for r in rs)
        med[name]["n"] = len(rs)
    b = med.get(base)
    print()
    rounds = max(m["n"] for m in med.values())
    print(f"Medians over {rounds} round(s); ×{base} is the ratio to {base}'s median"
          f"{'' if b else ' (not measured: no ratios)'}:")
    x = f"×{base}"
    print(f"| scenario | req/s | {x} | p50 | {x} | p99 | {x} | CPU µs/req | {x} "
          "| of which kernel | CPU (cores) | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def ratio(name, k):
        return f"{med[name][k] / b[k]:.2f}" if b and b[k] else "-"

    for name in order:
        m = med[name]
        print(f"| {name} | {m['rps']:.0f} | {ratio(name, 'rps')} | {fmt_us(m['p50'])} | "
              f"{ratio(name, 'p50')} | {fmt_us(m['p99'])} | {ratio(name, 'p99')} | "
              f"{m['cpu_us']:.2f} | {ratio(name, 'cpu_us')} | {m['sys_us']:.2f} | "
              f"{m['cores']:.2f} | {m['errors']} |")
    # Rounds are interleaved, so a ratio within one round compares runs made minutes apart under
    # the same conditions; its spread over the rounds shows how steady the machine was.
    if b and rounds > 1:
        print()
        print(f"CPU µs/req ratio to {base} within each round (median, then each round):")
        for name in order:
            if name == base:
                continue
            ratios = []
            for rnd in sorted({r["round"] for r in rows}):
                a = [r for r in rows if r["round"] == rnd and r["name"] == name]
                c = [r for r in rows if r["round"] == rnd and r["name"] == base]
                if a and c and c[0]["cpu_us"]:
                    ratios.append(a[0]["cpu_us"] / c[0]["cpu_us"])
            if ratios:
                print(f"  {name}: {statistics.median(ratios):.2f} "
                      f"({' '.join(f'{x:.2f}' for x in ratios)})")
    # Machine-readable medians for tools/bench's target lines.
    with open(path + ".medians", "w") as f:
        for name in order:
            m = med[name]
            f.write(f"{name} {m['rps']:.1f} {m['p50']:.1f} {m['p99']:.1f} {m['cpu_us']:.3f} "
                    f"{m['cores']:.3f} {m['sys_us']:.3f}\n")


def scaling(path, ncpu):
    rows = []
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        rows.append({"name": f[1], "requests": int(f[2]), "seconds": float(f[3]),
                     "rps": float(f[4]), "p99": float(f[6]), "cpu_s": float(f[7]),
                     "errors": int(f[8]), "origin_s": float(f[9]), "busy": float(f[10]),
                     "wrk_s": float(f[11])})
    med = {}
    for name in ("lintel-1w", "lintel-2w"):
        rs = [r for r in rows if r["name"] == name]
        if not rs:
            return
        m = {
            "rps": statistics.median(r["rps"] for r in rs),
            "p99": statistics.median(r["p99"] for r in rs),
            "cpu_us": statistics.median(r["cpu_s"] * 1e6 / r["requests"] for r in rs),
            "cores": statistics.median(r["cpu_s"] / r["seconds"] for r in rs),
            "origin": statistics.median(r["origin_s"] / r["seconds"] for r in rs),
            "busy": statistics.median(r["busy"] for r in rs),
            "wrk": statistics.median(r["wrk_s"] / r["seconds"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
        }
        m["rest"] = max(0.0, m["busy"] * ncpu - m["cores"] - m["origin"] - m["wrk"])
        med[name] = m
    print("| lintel workers | req/s | p99 | lintel CPU µs/req | lintel cores | origin cores "
          "| wrk cores | other (cores) | machine busy | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in med.items():
        print(f"| {name.replace('lintel-', '').replace('w', '')} | {m['rps']:.0f} | "
              f"{fmt_us(m['p99'])} | {m['cpu_us']:.2f} | {m['cores']:.2f} | {m['origin']:.2f} | "
              f"{m['wrk']:.2f} | {m['rest']:.2f} | {m['busy'] * 100:.0f}% | {m['errors']} |")
    one, two = med["lintel-1w"], med["lintel-2w"]
    factor = two["rps"] / one["rps"]
    print(f"\nscaling factor (req/s, 2 workers / 1 worker): {factor:.2f} (target >= 1.8 when the "
          f"load generator is not the bottleneck)")
    if two["busy"] >= 0.9:
        print(f"the load generator is the bottleneck: the machine is {two['busy'] * 100:.0f}% busy "
              f"with 2 workers, and wrk + the origin take {two['wrk'] + two['origin']:.2f} of the "
              f"{ncpu} cores against lintel's {two['cores']:.2f}; on {ncpu} cores wrk must share a "
              f"core with lintel, so this factor does not measure lintel's scaling. What it does "
              f"show: CPU per request with 2 workers is {two['cpu_us'] / one['cpu_us']:.2f}x that "
              f"of 1 worker.")
    else:
        print(f"the machine is {two['busy'] * 100:.0f}% busy with 2 workers: the load generator "
              f"is not saturating it.")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "wrk":
        parse_wrk(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "runs":
        base = "nginx"
        if len(sys.argv) == 5 and sys.argv[3] == "--base":
            base = sys.argv[4]
        runs(sys.argv[2], base)
    elif len(sys.argv) == 4 and sys.argv[1] == "scaling":
        scaling(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
