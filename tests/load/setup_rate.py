#!/usr/bin/env python3
"""Call setup rate benchmark: sipp places short IVR calls (answer, 1 s of the welcome prompt,
BYE) at RATE calls/s; the script reports the success ratio, the answer time (INVITE -> 200)
p50/p99, the server's CPU, and checks that every call's metadata reached the database
(a row per call with its end written). A benchmark, not a test: CI never runs it.

    python3 tests/load/setup_rate.py --rate 100 --calls 6000            # SQLite (default)
    python3 tests/load/setup_rate.py --rate 100 --calls 6000 --postgres # PostgreSQL on 127.0.0.1:5432

Builds nothing: run `cargo build --release -p hotline` first (tests/load/run.sh does).
Loopback only; stdlib only; stops by itself (every wait is bounded).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=100, help="calls per second")
    ap.add_argument("--calls", type=int, default=6000, help="calls in all")
    ap.add_argument("--postgres", action="store_true", help="use a fresh database on 127.0.0.1:5432")
    ap.add_argument("--binary", default=str(ROOT / "target/release/hotline"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, sipp traces)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hotline-setup-"))
    data = tmp / "data"
    sip_port, http_port = free_port(), free_port()
    conf = tmp / "hotline.toml"
    conf.write_text(
        f'[sip]\nlisten = "127.0.0.1:{sip_port}"\nmax_calls = 5000\n'
        f'[rtp]\nport_range = "20000-39999"\n'
        f'[http]\nlisten = "127.0.0.1:{http_port}"\n'
        f'[storage]\ndata_dir = "{data}"\n'
        f'[ivr]\nprompts_dir = "{ROOT / "prompts"}"\nflow = "{ROOT / "config/flow.toml"}"\n'
        f'[log]\nfilter = "warn"\n'
    )
    env = dict(os.environ)
    dbname = None
    if args.postgres:
        dbname = f"hotline_setup_{os.getpid()}"
        psql(f"CREATE DATABASE {dbname}")
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{dbname}"
    else:
        env.pop("DATABASE_URL", None)
    server = subprocess.Popen(
        [args.binary, "--config", str(conf), "serve"], stdout=subprocess.PIPE, stderr=open(tmp / "server.log", "w"),
        text=True, env=env,
    )
    try:
        deadline = time.time() + 30
        ready = 0
        while ready < 3 and time.time() < deadline:
            line = server.stdout.readline()
            if line.startswith(("sip ", "http ")):
                ready += 1
        if ready < 3:
            print("server did not start; see", tmp / "server.log", file=sys.stderr)
            return 1
        cpu0, t0 = cpu_ticks(server.pid), time.time()
        sipp = subprocess.run(
            ["sipp", "-sf", str(HERE / "setup.xml"), "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()),
             "-r", str(args.rate), "-m", str(args.calls), "-l", str(args.rate * 5),
             "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1",
             "-timeout", str(args.calls // args.rate + 60) + "s", "-timeout_error", "-nostdin",
             f"127.0.0.1:{sip_port}"],
            cwd=tmp, capture_output=True, text=True, timeout=args.calls // args.rate + 120,
        )
        elapsed = time.time() - t0
        cpu_s = (cpu_ticks(server.pid) - cpu0) / CLK_TCK
        out = sipp.stdout + sipp.stderr
        ok = int(re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)[-1])
        failed = int(re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)[-1])
        rtts = []
        for f in tmp.glob("*_rtt.csv"):
            for row in f.read_text().splitlines()[1:]:
                parts = row.split(";")
                # Date_ms;response_time_ms;rtd_no (whole milliseconds)
                if len(parts) >= 2 and parts[1].strip():
                    try:
                        rtts.append(float(parts[1]))
                    except ValueError:
                        pass
        rtts.sort()
        # Let the writer commit, then count rows with their end written.
        time.sleep(2)
        if args.postgres:
            rows = int(psql("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL", dbname))
        else:
            con = sqlite3.connect(data / "hotline.db")
            rows = con.execute("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL").fetchone()[0]
            con.close()
        p = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")  # noqa: E731
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(
            f"{backend}: {args.calls} calls at {args.rate}/s: {ok} ok, {failed} failed "
            f"({100 * ok / max(1, args.calls):.3f} %), achieved {ok / elapsed:.1f} calls/s over {elapsed:.1f} s; "
            f"answer time p50 {p(0.5):.1f} ms p99 {p(0.99):.1f} ms max {rtts[-1] if rtts else float('nan'):.1f} ms; "
            f"server CPU {cpu_s:.1f} s ({100 * cpu_s / elapsed:.0f} % of a core); rows ended {rows}/{ok}"
        )
        print(f"| {backend} | {args.rate} | {args.calls} | {100 * ok / max(1, args.calls):.3f} % | "
              f"{p(0.5):.1f} | {p(0.99):.1f} | {100 * cpu_s / elapsed:.0f} % | {rows}/{ok} |")
        return 0 if failed == 0 and rows == ok else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        if dbname:
            try:
                psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
