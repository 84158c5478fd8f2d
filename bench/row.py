"""One row of a benchmark table (bench/run.sh, bench/reference.sh) from a load tool's output file.

    row.py TOOL FILE TEST CONC CPU_TICKS_BEFORE CPU_TICKS_AFTER WALL_BEFORE WALL_AFTER RSS_KB STAT_BEFORE STAT_AFTER

TOOL is oha (its --output-format json) or wrk (the JSON line bench/wrk.lua prints). The server's CPU
share comes from its utime+stime ticks (1/100 s) over the wall-clock seconds of the run. STAT is
"steal,total" ticks of /proc/stat's cpu line: the share of the machine's time the hypervisor gave to
other guests during the run, one reason a point on a shared VM comes out low.
"""
import json
import sys

tool, path, name, conc, c0, c1, w0, w1, rss, stat0, stat1 = sys.argv[1:]
d = json.load(open(path))
if tool == "oha":
    codes = {int(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    bad = sum(codes.values()) - ok + sum(d.get("errorDistribution", {}).values())
    rate = ok / d["summary"]["total"]
    p50, p99 = d["metrics"]["latency_ms"]["p50"], d["metrics"]["latency_ms"]["p99"]
else:
    bad = d["non2xx"] + d["socket_errors"]
    rate = (d["requests"] - d["non2xx"]) / (d["duration_us"] / 1e6)
    p50, p99 = d["p50_us"] / 1000, d["p99_us"] / 1000
cpu = (int(c1) - int(c0)) / 100 / (float(w1) - float(w0)) * 100
(steal0, total0), (steal1, total1) = (map(int, s.split(",")) for s in (stat0, stat1))
steal = (steal1 - steal0) / max(total1 - total0, 1) * 100
print(f"{tool}\t{name}\t{conc}\t{rate:.0f}\t{p50:.2f}\t{p99:.2f}\t{bad}\t{cpu:.0f}\t{steal:.1f}\t{int(rss) / 1024:.1f}")
