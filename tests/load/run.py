#!/usr/bin/env python3
"""Media load benchmark for hotline: sipp as N concurrent callers who each hear the
prompts, press 2 (Quechua) and 2 (leave a message), then speak for SECONDS while the
server records. A benchmark, not a test: CI never runs it. Use tests/load/run.sh, which
builds the release binary first.

    tests/load/run.sh N [SECONDS]          (SECONDS defaults to 60)
    python3 tests/load/run.py --help       (every option)

What it does, all on loopback:
  1. writes a config to a temp dir (free SIP/HTTP ports, rtp.port_range wide enough for N
     calls, sip.max_calls >= N, data dir in the temp dir) and starts
     `target/release/hotline serve`;
  2. generates the callers' speech capture (classic pcap, Ethernet/IPv4/UDP/RTP): PCMU
     from prompts/es/information.wav, looped, with two RFC 4733 "2" presses at the start;
  3. idle baseline: one call (same scenario), then reads /metrics (lateness p50/p99/max);
  4. load: sipp -l N -m N -r RATE with tests/load/caller.xml; every second samples the
     server's and sipp's /proc/<pid>/stat (utime+stime) and /proc/<pid>/status (VmRSS),
     /proc/stat, the server's active calls (/metrics) and its RTP sockets' drop counters
     (/proc/net/udp);
  5. reads /metrics again and reports: calls attempted/successful/failed (sipp's stats),
     server CPU per call-second and % of one core over the steady phase (all N calls up),
     sipp's CPU, RSS per call, RTP packets the server received vs the callers sent, the
     lateness of the server's RTP departures during the load vs the idle run, frames
     skipped, recordings written and their total duration vs the expected.
Prints a one-line summary and a markdown table row; --json FILE writes every figure, the
per-second timeline and (next to it, .server.log) the server's log.

--media rtpstream plays the speech with sipp's rtp_stream from ordinary UDP sockets and
sends the keys as SIP INFO (tests/load/caller_rtpstream.xml): sipp then costs a fifth of the
CPU and puts no raw-socket work on the server (see tests/load/README.md). Diagnostics:
--tmp-parent /dev/shm (recordings on tmpfs), --server-cpus/--sipp-cpus (pinning), --nice and
--server-nice, --perf S (CPU profile), --offcpu S (why the server's threads were off the CPU).

Needs root (sipp's play_pcap_audio sends from a raw socket; perf), sipp 3.6 with pcap and
rtpstream support, python3 >= 3.11 (stdlib only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

PTIME_S = 0.020
SAMPLES_PER_FRAME = 160
PT_PCMU = 0
PT_EVENT = 101
DIGIT = 2
# When the two key presses start, seconds after the capture starts. The first must reach
# the server after it has taken the ACK (the flow starts on the ACK), the second after the
# first has been acted on.
DIGIT_TIMES = (0.5, 1.2)
# Each press: updates every 20 ms for 100 ms, then the end packet three times (RFC 4733).
EVENT_UPDATES = 5
EVENT_ENDS = 3

# Prompts between the first key and the recording (Quechua, config/flow.toml).
LEAD_PROMPTS = ("recording-notice", "message-instructions", "beep")


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- audio and capture


def ulaw_encode(sample: int) -> int:
    """G.711 u-law of a 16-bit linear sample (the classic Sun/CCITT coder)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, 32635) + 0x84
    exponent = max(sample.bit_length() - 8, 0)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def read_wav_mono16(path: Path) -> list[int]:
    with wave.open(str(path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 8000):
            raise SystemExit(f"{path}: want 8000 Hz mono 16-bit PCM")
        raw = w.readframes(w.getnframes())
    return list(struct.unpack(f"<{len(raw) // 2}h", raw))


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def ip_checksum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_speech_ulaw(path: Path, seconds: float, wav: Path) -> dict:
    """The caller's speech for sipp's rtp_stream: raw G.711 u-law (no header), wav looped."""
    pcm = read_wav_mono16(wav)
    ulaw = bytes(ulaw_encode(x) for x in pcm)
    frames = int(round(seconds / PTIME_S))
    need = frames * SAMPLES_PER_FRAME
    data = (ulaw * (need // len(ulaw) + 1))[:need]
    path.write_bytes(data)
    return {"packets": frames, "audio": frames, "events": 0, "seconds": frames * PTIME_S}


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP around payload (sipp keeps only the UDP part and recomputes
    the checksum from the ports it substitutes)."""
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    pseudo = s + d + struct.pack("!BBH", 0, 17, udp_len)
    data = pseudo + udp + (b"\0" if udp_len % 2 else b"")
    csum = ip_checksum(data) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0x4000, 64, 17, 0, s, d)
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + ip + udp


def write_speech_pcap(path: Path, seconds: float, wav: Path) -> dict:
    """The caller's stream: PCMU speech (wav looped) for `seconds`, one 20 ms packet each,
    with an RFC 4733 press of DIGIT at each of DIGIT_TIMES (no speech packets meanwhile).
    Returns counts."""
    pcm = read_wav_mono16(wav)
    ulaw = bytes(ulaw_encode(x) for x in pcm)
    frames = int(round(seconds / PTIME_S))
    ssrc, seq, ts0 = 0x10AD10AD, 1000, 160_000
    # slot -> (event timestamp, index within the press)
    event_slots: dict[int, tuple[int, int]] = {}
    for t in DIGIT_TIMES:
        start = int(round(t / PTIME_S))
        for i in range(EVENT_UPDATES + EVENT_ENDS):
            event_slots[start + i] = (ts0 + start * SAMPLES_PER_FRAME, i)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    t0 = 1_700_000_000
    audio = events = 0
    pos = 0
    for k in range(frames):
        ts = ts0 + k * SAMPLES_PER_FRAME
        if k in event_slots:
            ev_ts, i = event_slots[k]
            end = i >= EVENT_UPDATES
            duration = min(i + 1, EVENT_UPDATES) * SAMPLES_PER_FRAME
            marker = 0x80 if i == 0 else 0
            payload = struct.pack("!BBH", DIGIT, (0x80 if end else 0) | 10, duration)
            rtp = struct.pack("!BBHII", 0x80, marker | PT_EVENT, seq & 0xFFFF, ev_ts, ssrc) + payload
            events += 1
        else:
            chunk = ulaw[pos : pos + SAMPLES_PER_FRAME]
            if len(chunk) < SAMPLES_PER_FRAME:
                chunk += ulaw[: SAMPLES_PER_FRAME - len(chunk)]
            pos = (pos + SAMPLES_PER_FRAME) % len(ulaw)
            rtp = struct.pack("!BBHII", 0x80, PT_PCMU, seq & 0xFFFF, ts, ssrc) + chunk
            audio += 1
        seq += 1
        frame = udp_frame("127.0.0.2", "127.0.0.1", 6000, 7000, rtp, k)
        usec = k * 20_000
        out += struct.pack("<IIII", t0 + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(out)
    return {"packets": frames, "audio": audio, "events": events, "seconds": frames * PTIME_S}


# ---------------------------------------------------------------- processes and /proc


def free_port(kind: int = socket.SOCK_DGRAM, ip: str = "127.0.0.1", both: bool = False) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        if not both:
            return port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind((ip, port))
            return port
        except OSError:
            continue
    raise SystemExit("no free port")


def free_even_pair(ip: str) -> int:
    """An even port P with P and P+2 free for UDP (sipp binds audio on P, video on P+2)."""
    for _ in range(500):
        p = free_port(ip=ip)
        p -= p % 2
        socks = []
        try:
            for q in (p, p + 1, p + 2):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, q))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free even port pair for sipp's media")


def rtp_range(n: int) -> tuple[int, int]:
    """A range with room for n calls and slack, all free now: above the default
    rtp.port_range (10000-20000, which other hotline instances on the machine, e.g. the
    end-to-end tests, use) and below the ephemeral ports (32768-)."""
    size = max(4 * n + 200, 400)
    for low in range(20002, 32768 - size, 1000):
        busy = set()
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            busy.add(int(line.split()[1].split(":")[1], 16))
        if not any(low <= p <= low + size for p in busy):
            return low, low + size - 1
    raise SystemExit("no free RTP port range below 32000")


def proc_cpu_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    total = sum(f[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def udp_drops(lo: int, hi: int) -> dict[tuple[int, int], int]:
    """Drop counters of UDP sockets bound to ports lo..hi, keyed by (port, inode)."""
    out = {}
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        port = int(f[1].split(":")[1], 16)
        if lo <= port <= hi:
            out[(port, int(f[9]))] = int(f[-1])
    return out


def task_states(pid: int) -> dict:
    """How many of the process's threads are running (R), blocked on I/O (D) and where."""
    out: dict = {"R": 0, "D": 0, "n": 0, "wchan": {}}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        state = stat[stat.rindex(")") + 2]
        out["n"] += 1
        if state in "RD":
            out[state] += 1
        if state == "D":
            try:
                w = Path(f"/proc/{pid}/task/{tid}/wchan").read_text().strip() or "?"
            except OSError:
                w = "?"
            out["wchan"][w] = out["wchan"].get(w, 0) + 1
    return out


def pressure() -> dict[str, int]:
    """Cumulative stall time (us) from /proc/pressure: cpu some, io some, io full."""
    out = {}
    for res in ("cpu", "io", "memory"):
        try:
            for line in Path(f"/proc/pressure/{res}").read_text().splitlines():
                kind, *fields = line.split()
                out[f"{res}_{kind}"] = int(fields[-1].split("=")[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def udp_snmp() -> dict[str, int]:
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def raw_socket_tax_us(n: int, packets: int = 30000) -> float:
    """Extra kernel time per UDP datagram sent over loopback to an address on which n raw UDP
    sockets are bound (sipp's pcap players: one per call, bound to sipp's media address, where
    the server's RTP goes). Linux offers every UDP datagram for that address to each raw UDP
    socket and clones it for each; the sender pays, on loopback. Measured here, now (us)."""
    addr = "127.0.0.3"

    def per_packet() -> float:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind((addr, 0))
        rx.setblocking(False)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dst, payload = rx.getsockname(), b"\x80" * 172
        best = float("inf")
        for _ in range(3):
            r0 = resource.getrusage(resource.RUSAGE_THREAD)
            for _ in range(packets // 3):
                tx.sendto(payload, dst)
                try:
                    rx.recv(2048)
                except BlockingIOError:
                    pass
            r1 = resource.getrusage(resource.RUSAGE_THREAD)
            best = min(best, (r1.ru_stime - r0.ru_stime + r1.ru_utime - r0.ru_utime) / (packets // 3))
        rx.close()
        tx.close()
        return best * 1e6

    base = per_packet()
    raws = []
    try:
        for _ in range(n):
            r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
            r.bind((addr, 0))
            raws.append(r)
        loaded = per_packet()
    finally:
        for r in raws:
            r.close()
    return max(loaded - base, 0.0)


# ---------------------------------------------------------------- /metrics


class Metrics:
    """One scrape of /metrics."""

    def __init__(self, text: str):
        self.values: dict[str, float] = {}
        self.buckets: dict[int, int] = {}  # upper bound in us -> cumulative count
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            m = re.fullmatch(r'hotline_rtp_departure_lateness_seconds_bucket\{le="([^"]+)"\}', name)
            if m:
                if m.group(1) != "+Inf":
                    self.buckets[round(float(m.group(1)) * 1e6)] = int(value)
                continue
            self.values[name] = float(value)

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)

    def counts(self) -> dict[int, int]:
        """Per-bucket (not cumulative) counts."""
        out, prev = {}, 0
        for le in sorted(self.buckets):
            out[le] = self.buckets[le] - prev
            prev = self.buckets[le]
        return out


def scrape(http: str, timeout: float = 5.0) -> Metrics:
    with urllib.request.urlopen(f"{http}/metrics", timeout=timeout) as r:
        return Metrics(r.read().decode())


def quantile_us(counts: dict[int, int], q: float, max_us: int) -> int:
    """As the server computes it: the upper bound of the bucket holding rank ceil(q*n),
    capped at the largest value seen."""
    n = sum(counts.values())
    if n == 0:
        return 0
    rank = min(max(math.ceil(q * n), 1), n)
    seen = 0
    for le in sorted(counts):
        seen += counts[le]
        if seen >= rank:
            return min(le, max_us) if max_us else le
    return max_us


def lateness(before: Metrics | None, after: Metrics) -> dict:
    """Lateness p50/p99/max of the departures between two scrapes (bucket differences)."""
    a = after.counts()
    b = before.counts() if before else {}
    diff = {le: a.get(le, 0) - b.get(le, 0) for le in a}
    diff = {le: n for le, n in diff.items() if n > 0}
    max_us = round(after.get("hotline_rtp_departure_lateness_max_seconds") * 1e6)
    top = max(diff) if diff else 0
    # The exposed max is the process's; if the load's own top bucket is lower, cap by it.
    load_max = min(max_us, top) if top else 0
    return {
        "ticks": sum(diff.values()),
        "p50_us": quantile_us(diff, 0.5, max_us),
        "p99_us": quantile_us(diff, 0.99, max_us),
        "p999_us": quantile_us(diff, 0.999, max_us),
        "max_us": load_max if top < max_us else max_us,
        "max_exact": top >= max_us,
        "buckets": diff,
    }


# ---------------------------------------------------------------- the run


class Run:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.n: int = args.calls
        self.seconds: float = args.seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="hotline-load-", dir=args.tmp_parent))
        self.server: subprocess.Popen | None = None
        self.sipp: subprocess.Popen | None = None
        self.http = ""
        self.sip = ""
        self.result: dict = {}
        self.samples: list[dict] = []
        self.perf: subprocess.Popen | None = None
        self.perf_secs = 0.0
        self.server_tids: set[int] = set()
        self.sampling = threading.Event()

    # -- lifecycle

    def cleanup(self) -> None:
        for proc, name in ((self.perf, "sipp"), (self.sipp, "sipp"), (self.server, "hotline")):
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL if name == "sipp" else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if self.server and self.server.poll() is None:
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=5)
        if self.sipp and self.sipp.poll() is None:
            self.sipp.wait(timeout=5)
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_server(self) -> None:
        lo, hi = rtp_range(self.n)
        data = self.tmp / "data"
        self.rtp_lo, self.rtp_hi = lo, hi
        max_secs = int(self.args.lead_guess + self.seconds + self.n / self.args.rate + 300)
        cfg = f"""# written by tests/load/run.py
[sip]
listen = "127.0.0.1:0"
max_calls = {self.n + 50}
[rtp]
port_range = "{lo}-{hi}"
[http]
listen = "127.0.0.1:0"
[storage]
data_dir = "{data}"
[ivr]
prompts_dir = "{ROOT / 'prompts'}"
flow = "{ROOT / 'config' / 'flow.toml'}"
[calls]
max_duration_secs = {max_secs}
[shutdown]
grace_secs = 5
[log]
format = "json"
filter = "info"
"""
        (self.tmp / "hotline.toml").write_text(cfg)
        self.server_out = self.tmp / "server.out"
        self.server_log = self.tmp / "server.log"
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        env.pop("DATABASE_URL", None)
        self.server = subprocess.Popen(
            [str(self.args.binary), "--config", str(self.tmp / "hotline.toml"), "serve"],
            cwd=self.tmp,
            stdin=subprocess.DEVNULL,
            stdout=open(self.server_out, "w"),
            stderr=open(self.server_log, "w"),
            start_new_session=True,
            env=env,
            preexec_fn=self.prep_server,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.server_out.read_text()
            m_sip = re.search(r"^sip udp (\S+)$", text, re.M)
            m_http = re.search(r"^http (http://\S+)$", text, re.M)
            if m_sip and m_http:
                self.sip, self.http = m_sip.group(1), m_http.group(1)
                break
            if self.server.poll() is not None:
                raise SystemExit(f"hotline exited at start:\n{self.server_log.read_text()[-4000:]}")
            time.sleep(0.05)
        else:
            raise SystemExit("hotline did not print its listeners within 30 s")
        log(f"hotline pid {self.server.pid}: sip {self.sip}, {self.http}, rtp {lo}-{hi}")

    def sipp_run(self, name: str, calls: int, seconds: float) -> dict:
        """One sipp run of caller.xml: `calls` callers, each speaking for lead + seconds."""
        d = self.tmp / name
        d.mkdir()
        if self.args.media == "rtpstream":
            shutil.copy(HERE / "caller_rtpstream.xml", d / "caller.xml")
            cap = write_speech_ulaw(d / "caller-speech.ulaw", self.lead + seconds, self.args.speech)
            # The scenario pauses 1.2 s for its two INFOs before its -d pause.
            pause_ms = int(cap["seconds"] * 1000) + self.args.tail_ms - 1200
            call_ms = pause_ms + 1200
        else:
            shutil.copy(HERE / "caller.xml", d / "caller.xml")
            cap = write_speech_pcap(d / "caller-speech.pcap", self.lead + seconds, self.args.speech)
            pause_ms = int(cap["seconds"] * 1000) + self.args.tail_ms
            call_ms = pause_ms
        ramp = calls / self.args.rate
        # Every call: answer within 15 s, stays pause_ms, BYE answered within 15 s.
        budget = int(ramp + pause_ms / 1000 + 60)
        media_ip = self.args.media_ip
        cmd = [
            self.args.sipp, self.sip,
            "-sf", "caller.xml", "-s", "08002323",
            "-i", "127.0.0.1", "-p", str(free_port(both=True)),
            "-mi", media_ip, "-mp", str(free_even_pair(media_ip)),
            "-l", str(calls), "-m", str(calls), "-r", str(self.args.rate), "-rp", "1000",
            "-d", str(pause_ms),
            "-nostdin", "-trace_stat", "-stf", "stats.csv", "-fd", "1",
            "-trace_err", "-error_file", "errors.log",
            "-timeout", f"{budget}s", "-timeout_error",
        ]
        log(f"{name}: {calls} call(s), {cap['seconds']:.1f} s of speech each "
            f"({cap['packets']} packets), sipp timeout {budget} s")
        t_start = time.monotonic()
        self.sipp = subprocess.Popen(
            cmd, cwd=d, stdin=subprocess.DEVNULL,
            stdout=open(d / "sipp.out", "w"), stderr=open(d / "sipp.err", "w"),
            start_new_session=True, preexec_fn=self.prep_sipp,
        )
        try:
            rc = self.sipp.wait(timeout=budget + 30)
        except subprocess.TimeoutExpired:
            log(f"{name}: sipp outlived its own timeout; killed")
            os.killpg(self.sipp.pid, signal.SIGKILL)
            rc = self.sipp.wait(timeout=10)
        elapsed = time.monotonic() - t_start
        stats = parse_sipp_stats(d / "stats.csv")
        errors = (d / "errors.log").read_text(errors="replace") if (d / "errors.log").exists() else ""
        err = (d / "sipp.err").read_text(errors="replace")
        return {"rc": rc, "elapsed_s": elapsed, "capture": cap, "pause_ms": call_ms,
                "stats": stats, "errors_tail": errors[-3000:], "stderr_tail": err[-2000:],
                "dir": str(d)}

    def wait_idle(self, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        active = -1.0
        while time.monotonic() < deadline:
            active = scrape(self.http).get("hotline_active_calls")
            if active == 0:
                break
            time.sleep(0.25)
        return active

    def renice(self) -> None:
        if self.args.nice:
            os.nice(self.args.nice)

    def prep_server(self) -> None:
        if self.args.server_nice is not None:
            os.nice(self.args.server_nice)
        else:
            self.renice()
        if self.args.server_cpus:
            os.sched_setaffinity(0, self.args.server_cpus)

    def prep_sipp(self) -> None:
        self.renice()
        if self.args.sipp_cpus:
            os.sched_setaffinity(0, self.args.sipp_cpus)

    def server_log_exists(self) -> bool:
        return hasattr(self, "server_log") and self.server_log.exists()

    # -- sampling

    def sampler(self, lo: int, hi: int) -> None:
        drops: dict[tuple[int, int], int] = {}
        next_t = time.monotonic()
        while not self.sampling.is_set():
            t = time.monotonic()
            s = {"t": t}
            s["server_ticks"] = proc_cpu_ticks(self.server.pid)
            st = proc_status(self.server.pid)
            s["rss_kib"] = st.get("VmRSS")
            s["threads"] = st.get("Threads")
            if self.sipp:
                s["sipp_ticks"] = proc_cpu_ticks(self.sipp.pid)
                s["sipp_rss_kib"] = proc_status(self.sipp.pid).get("VmRSS")
            s["machine"] = machine_ticks()
            s["self_ticks"] = proc_cpu_ticks(os.getpid())
            try:
                m = scrape(self.http, timeout=2)
                s["active"] = m.get("hotline_active_calls")
                s["skipped"] = int(m.get("hotline_rtp_frames_skipped_total"))
                s["received"] = int(m.get("hotline_rtp_packets_received_total"))
                s["sent"] = int(m.get("hotline_rtp_packets_sent_total"))
                s["ticks"] = int(m.get("hotline_rtp_departure_lateness_seconds_count"))
                s["late_20ms"] = sum(n for le, n in m.counts().items() if le >= 20_000)
                s["lat_counts"] = m.counts()
                s["lat_max_us"] = round(m.get("hotline_rtp_departure_lateness_max_seconds") * 1e6)
                s["store_backlog"] = int(m.get("hotline_store_backlog"))
            except OSError:
                s["active"] = None
            s["tasks"] = task_states(self.server.pid)
            try:
                self.server_tids.update(int(t) for t in os.listdir(f"/proc/{self.server.pid}/task"))
            except OSError:
                pass
            s["psi"] = pressure()
            if ((self.args.perf or self.args.offcpu) and self.perf is None
                    and s.get("active") is not None and s["active"] >= self.n):
                if self.args.offcpu:
                    # Every context switch on the machine, with kernel stacks: when and why
                    # the server's threads left the CPU, and how long until they ran again.
                    what = ["-e", "sched:sched_switch", "-e", "sched:sched_wakeup", "-a", "-g"]
                    secs = self.args.offcpu
                else:
                    what = ["-F", "499", "-g", "-p", str(self.server.pid)]
                    secs = self.args.perf
                self.perf_secs = secs
                self.perf = subprocess.Popen(
                    ["perf", "record", *what,
                     "-o", str(self.tmp / "perf.data"), "--", "sleep", str(secs)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=open(self.tmp / "perf.err", "w"), start_new_session=True)
                log(f"perf record ({'off-CPU' if self.args.offcpu else 'CPU'}) for {secs:g} s")
            for k, v in udp_drops(lo, hi).items():
                drops[k] = max(drops.get(k, 0), v)
            s["rtp_socket_drops"] = sum(drops.values())
            self.samples.append(s)
            next_t += 1.0
            self.sampling.wait(max(0.0, next_t - time.monotonic()))

    def wait_quiet(self, what: str) -> float:
        """Waits (at most --wait-quiet seconds) until the machine is below --quiet-pct busy
        over 5 s, not counting the server. Returns the last busy figure (% of all CPUs)."""
        deadline = time.monotonic() + self.args.wait_quiet
        busy = 100.0
        waited = False
        while True:
            m0, s0 = machine_ticks(), proc_cpu_ticks(self.server.pid) or 0
            time.sleep(5)
            m1, s1 = machine_ticks(), proc_cpu_ticks(self.server.pid) or 0
            busy = (m1[0] - m0[0] - (s1 - s0)) / max(m1[1] - m0[1], 1) * 100
            if busy <= self.args.quiet_pct or time.monotonic() >= deadline:
                break
            if not waited:
                log(f"{what}: machine {busy:.0f}% busy with other work; waiting up to "
                    f"{self.args.wait_quiet:.0f} s for <= {self.args.quiet_pct:.0f}%")
                waited = True
        if busy > self.args.quiet_pct:
            log(f"{what}: machine still {busy:.0f}% busy with other work; going on (figures will show it)")
        return busy

    # -- main

    def run(self) -> dict:
        a = self.args
        qu = ROOT / "prompts" / "qu"
        self.lead = DIGIT_TIMES[0] + sum(wav_seconds(qu / f"{p}.wav") for p in LEAD_PROMPTS)
        self.start_server()
        time.sleep(1.0)
        rss_start = proc_status(self.server.pid).get("VmRSS")

        # Idle baseline: one call alone.
        self.quiet = {"idle": self.wait_quiet("idle")}
        m0 = scrape(self.http)
        idle = self.sipp_run("idle", 1, a.idle_seconds)
        self.sipp = None
        self.wait_idle()
        m1 = scrape(self.http)
        idle_lat = lateness(m0, m1)
        log(f"idle: p50 {idle_lat['p50_us']} us, p99 {idle_lat['p99_us']} us, max {idle_lat['max_us']} us "
            f"over {idle_lat['ticks']} ticks; sipp rc {idle['rc']}")
        time.sleep(1.0)
        rss_idle = proc_status(self.server.pid).get("VmRSS")
        recs_before = set(self.recordings())
        snmp0 = udp_snmp()

        # Load.
        self.quiet["load"] = self.wait_quiet("load")
        sampler = threading.Thread(target=self.sampler, args=(self.rtp_lo, self.rtp_hi), daemon=True)
        self.samples = []
        m_load0 = scrape(self.http)
        self.load_wall_start = time.time()
        self.sipp = None
        self.sampling.clear()
        sampler.start()
        load = self.sipp_run("load", self.n, self.seconds)
        active_left = self.wait_idle()
        time.sleep(1.5)  # the last housekeeping merge
        self.sampling.set()
        sampler.join(timeout=5)
        m2 = scrape(self.http)
        snmp1 = udp_snmp()

        if self.perf is not None:
            self.perf.wait(timeout=self.perf_secs + 60)
            if self.args.offcpu:
                self.offcpu_report()
            else:
                self.perf_report()
        load_lat = lateness(m_load0, m2)
        res = self.analyse(load, idle, idle_lat, load_lat, m_load0, m2, rss_start, rss_idle,
                           recs_before, snmp0, snmp1, active_left)
        return res

    def perf_report(self) -> None:
        """Where the server's CPU went during the steady phase: flat profile by symbol and by
        thread, written next to --json (or printed)."""
        data = self.tmp / "perf.data"
        out = []
        for sort in ("comm", "dso,sym"):
            r = subprocess.run(
                ["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                 "--sort", sort, "--percent-limit", "0.7"],
                capture_output=True, text=True, timeout=300)
            out.append(f"### perf report --sort {sort}\n" +
                       "\n".join(l for l in r.stdout.splitlines() if l and not l.startswith("#")))
        text = "\n\n".join(out)
        dest = self.args.json.with_suffix(".perf.txt") if self.args.json else None
        if dest:
            dest.write_text(text)
            log(f"profile: {dest}")
        else:
            print(text, file=sys.stderr)

    def offcpu_report(self) -> None:
        """From sched_switch/sched_wakeup: for each server thread, the time it spent off the
        CPU, split by why it left (S sleeping: waiting for work, the normal case; D blocked in
        the kernel, e.g. on the file system; R preempted, i.e. waiting for a CPU), the
        kernel stacks of its D waits, and its wake-up-to-run delays (scheduling latency)."""
        r = subprocess.run(["perf", "script", "-i", str(self.tmp / "perf.data"), "-F",
                            "comm,tid,cpu,time,event,trace,ip,sym"],
                           capture_output=True, text=True, timeout=600)
        tids = set(os.listdir(f"/proc/{self.server.pid}/task")) if self.server.poll() is None else set()
        events = parse_perf_script(r.stdout)
        text = offcpu_summary(events, {int(t) for t in tids} | self.server_tids, self.server.pid)
        dest = self.args.json.with_suffix(".offcpu.txt") if self.args.json else None
        if dest:
            dest.write_text(text)
            log(f"off-CPU report: {dest}")
        else:
            print(text, file=sys.stderr)

    def recordings(self) -> list[Path]:
        root = self.tmp / "data" / "recordings"
        return sorted(root.rglob("*.wav")) if root.exists() else []

    def server_log_records(self) -> list[dict]:
        out = []
        for line in self.server_log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"level": "RAW", "fields": {"message": line}})
        return out

    def analyse(self, load, idle, idle_lat, load_lat, m_before, m_after, rss_start, rss_idle,
                recs_before, snmp0, snmp1, active_left) -> dict:
        n = self.n
        st = load["stats"]
        attempted = int(st.get("TotalCallCreated", 0))
        ok = int(st.get("SuccessfulCall(C)", 0))
        failed = int(st.get("FailedCall(C)", 0))
        failed_why = {k: int(v) for k, v in st.items() if k.startswith("Failed") and k.endswith("(C)")
                      and k != "FailedCall(C)" and v not in ("", "0")}

        # Steady phase: every sample with all calls up (or the plateau, if never all up).
        samples = [s for s in self.samples if s.get("active") is not None and s.get("server_ticks") is not None]
        peak = max((s["active"] for s in samples), default=0)
        target = n if peak >= n else peak
        steady = [s for s in samples if s["active"] >= target] if target else []
        if len(steady) >= 2:
            i0 = samples.index(steady[0])
            i1 = samples.index(steady[-1])
            window = samples[i0 : i1 + 1]
        else:
            window = []
        steady_res = {}
        if len(window) >= 2:
            t = window[-1]["t"] - window[0]["t"]
            cpu = (window[-1]["server_ticks"] - window[0]["server_ticks"]) / CLK_TCK
            call_s = sum((b["t"] - a["t"]) * (a["active"] + b["active"]) / 2 for a, b in zip(window, window[1:]))
            sipp_cpu = None
            if window[0].get("sipp_ticks") is not None and window[-1].get("sipp_ticks") is not None:
                sipp_cpu = (window[-1]["sipp_ticks"] - window[0]["sipp_ticks"]) / CLK_TCK
            mb = window[-1]["machine"][0] - window[0]["machine"][0]
            mt = window[-1]["machine"][1] - window[0]["machine"][1]
            own = (window[-1]["server_ticks"] - window[0]["server_ticks"]
                   + (window[-1]["self_ticks"] - window[0]["self_ticks"])
                   + ((window[-1].get("sipp_ticks") or 0) - (window[0].get("sipp_ticks") or 0)))
            rss_load = max(s["rss_kib"] for s in window if s.get("rss_kib"))
            steady_res = {
                "seconds": t,
                "calls": target,
                "call_seconds": call_s,
                "server_cpu_s": cpu,
                "server_us_per_call_s": cpu / call_s * 1e6 if call_s else None,
                "server_core_pct": cpu / t * 100,
                "sipp_cpu_s": sipp_cpu,
                "sipp_core_pct": sipp_cpu / t * 100 if sipp_cpu is not None else None,
                "machine_busy_pct_of_2": mb / mt * 100 if mt else None,
                # Everything else on the machine (other users' builds, ksoftirqd, kernel
                # threads), in % of one core: what competed with the server and sipp.
                "other_core_pct": (mb - own) / CLK_TCK / t * 100,
                "rss_load_kib": rss_load,
                "rss_per_call_kib": (rss_load - rss_idle) / target if target else None,
                "threads_max": max(s.get("threads") or 0 for s in window),
            }
            # The server's datagrams to sipp's media address are offered to each of sipp's
            # raw sockets (one per call) on the server's CPU time: estimate that share.
            sent = (window[-1].get("sent") or 0) - (window[0].get("sent") or 0)
            rtcp = call_s / 5.0
            tax_us = raw_socket_tax_us(n) if self.args.raw_tax and self.args.media == "pcap" else None
            if tax_us is not None:
                tax_s = (sent + rtcp) * tax_us / 1e6
                steady_res.update({
                    "server_rtp_sent": sent,
                    "raw_tax_us_per_datagram": tax_us,
                    "raw_tax_cpu_s": tax_s,
                    "server_us_per_call_s_net": (cpu - tax_s) / call_s * 1e6 if call_s else None,
                    "server_core_pct_net": (cpu - tax_s) / t * 100,
                })
        # Whole load phase (ramp up and down included).
        whole = {}
        if len(samples) >= 2:
            call_s = sum((b["t"] - a["t"]) * (a["active"] + b["active"]) / 2 for a, b in zip(samples, samples[1:]))
            cpu = (samples[-1]["server_ticks"] - samples[0]["server_ticks"]) / CLK_TCK
            whole = {"seconds": samples[-1]["t"] - samples[0]["t"], "call_seconds": call_s, "server_cpu_s": cpu,
                     "server_us_per_call_s": cpu / call_s * 1e6 if call_s else None,
                     "rss_peak_kib": max(s["rss_kib"] or 0 for s in samples),
                     "threads_max": max(s.get("threads") or 0 for s in samples),
                     "rtp_socket_drops": samples[-1]["rtp_socket_drops"]}

        # Per-second timeline: where the late ticks and skipped frames were, and what the
        # machine was doing then (CPU and I/O pressure, threads blocked on I/O).
        timeline = []
        for a, b in zip(samples, samples[1:]):
            dt_s = b["t"] - a["t"]
            if "skipped" not in a or "skipped" not in b:
                continue
            row = {
                "t": round(b["t"] - samples[0]["t"], 1),
                "active": b["active"],
                "skipped": b["skipped"] - a["skipped"],
                "late_20ms": b["late_20ms"] - a["late_20ms"],
                "server_cpu_pct": (b["server_ticks"] - a["server_ticks"]) / CLK_TCK / dt_s * 100,
                "sipp_cpu_pct": ((b.get("sipp_ticks") or 0) - (a.get("sipp_ticks") or 0)) / CLK_TCK / dt_s * 100
                if b.get("sipp_ticks") is not None and a.get("sipp_ticks") is not None else None,
                "other_cpu_pct": ((b["machine"][0] - a["machine"][0]) - (b["server_ticks"] - a["server_ticks"])
                                  - ((b.get("sipp_ticks") or 0) - (a.get("sipp_ticks") or 0))
                                  - ((b.get("self_ticks") or 0) - (a.get("self_ticks") or 0))) / CLK_TCK / dt_s * 100,
                "sent": (b.get("sent") or 0) - (a.get("sent") or 0),
                "threads": b.get("threads"),
                "blocked_io_threads": b.get("tasks", {}).get("D"),
                "wchan": b.get("tasks", {}).get("wchan"),
            }
            if "lat_counts" in a and "lat_counts" in b:
                d = {le: b["lat_counts"].get(le, 0) - a["lat_counts"].get(le, 0) for le in b["lat_counts"]}
                d = {le: n for le, n in d.items() if n > 0}
                row["lat_ticks"] = sum(d.values())
                row["lat_p50_us"] = quantile_us(d, 0.5, b["lat_max_us"])
                row["lat_p99_us"] = quantile_us(d, 0.99, b["lat_max_us"])
            for k in ("cpu_some", "io_some", "io_full", "memory_some"):
                if k in a.get("psi", {}) and k in b.get("psi", {}):
                    row[f"psi_{k}_pct"] = (b["psi"][k] - a["psi"][k]) / 1e6 / dt_s * 100
            timeline.append(row)
        bad = [r for r in timeline if r["skipped"] or r["late_20ms"]]
        good = [r for r in timeline if not (r["skipped"] or r["late_20ms"])]

        def mean(rows, k):
            v = [r[k] for r in rows if r.get(k) is not None]
            return sum(v) / len(v) if v else None

        stalls = {
            "seconds_with_late_ticks": len(bad),
            "of_seconds": len(timeline),
            "mean_when_late": {k: mean(bad, k) for k in ("other_cpu_pct", "server_cpu_pct", "sipp_cpu_pct",
                                                         "psi_cpu_some_pct", "psi_io_some_pct", "psi_io_full_pct")},
            "mean_otherwise": {k: mean(good, k) for k in ("other_cpu_pct", "server_cpu_pct", "sipp_cpu_pct",
                                                          "psi_cpu_some_pct", "psi_io_some_pct", "psi_io_full_pct")},
            "max_blocked_io_threads": max((r["blocked_io_threads"] or 0 for r in timeline), default=0),
        }

        def delta(name: str) -> int:
            return int(m_after.get(name) - m_before.get(name))

        cap = load["capture"]
        sent = ok * cap["packets"]
        received = delta("hotline_rtp_packets_received_total")
        recs = [p for p in self.recordings() if p not in recs_before]
        rec_seconds = sum(wav_seconds(p) for p in recs)
        parts = list((self.tmp / "data" / "recordings").rglob("*.part")) if (self.tmp / "data").exists() else []
        expected_rec = load["pause_ms"] / 1000 - self.lead
        logs = self.server_log_records()
        levels: dict[str, int] = {}
        messages: dict[str, int] = {}
        for r in logs:
            lv = r.get("level", "?")
            levels[lv] = levels.get(lv, 0) + 1
            if lv in ("WARN", "ERROR", "RAW"):
                msg = str(r.get("fields", {}).get("message", ""))[:120]
                messages[msg] = messages.get(msg, 0) + 1
        # Per call, from the log: when the recording started after the call came in, and
        # how long it was (a late start or an early end shows here).
        calls_log: dict[int, dict] = {}
        for r in logs:
            f = r.get("fields", {})
            span = r.get("span") or {}
            cid = span.get("id")
            if cid is None or "timestamp" not in r:
                continue
            try:
                ts = dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            c = calls_log.setdefault(cid, {})
            msg = f.get("message")
            if msg == "incoming call":
                c = calls_log[cid] = {"in": ts}  # span ids are reused: a new call starts afresh
            elif msg == "recording a message":
                c["rec"] = ts
            elif msg == "recording saved":
                c["dur"] = f.get("duration_ms", 0) / 1000
        load_calls = [c for c in calls_log.values() if c.get("in", 0) >= self.load_wall_start]
        starts = sorted(c["rec"] - c["in"] for c in load_calls if "rec" in c)
        durs = sorted(c["dur"] for c in load_calls if "dur" in c)

        def pick(v, q):
            return v[min(len(v) - 1, int(q * len(v)))] if v else None

        rec_timing = {
            "start_after_invite_s": {"expected": self.lead, "p50": pick(starts, 0.5),
                                     "p99": pick(starts, 0.99), "max": starts[-1] if starts else None},
            "duration_s": {"min": durs[0] if durs else None, "p50": pick(durs, 0.5),
                           "max": durs[-1] if durs else None},
        }
        outcomes: dict[str, int] = {}
        for r in logs:
            f = r.get("fields", {})
            if f.get("message") == "call outcome":
                key = f"{f.get('disposition')}:{f.get('path')}"
                outcomes[key] = outcomes.get(key, 0) + 1

        res = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_description(),
            # The tree's state now; the binary may be older (see binary_built).
            "commit": git_describe(),
            "binary_built": dt.datetime.fromtimestamp(self.args.binary.stat().st_mtime,
                                                      dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "calls": n,
            "seconds": self.seconds,
            "rate": self.args.rate,
            "lead_s": self.lead,
            "media": self.args.media,
            "nice": self.args.nice,
            "server_nice": self.args.server_nice,
            "data_fs": fs_type(self.tmp),
            "server_cpus": sorted(self.args.server_cpus or []),
            "sipp_cpus": sorted(self.args.sipp_cpus or []),
            "sipp": {"rc": load["rc"], "attempted": attempted, "successful": ok, "failed": failed,
                     "failed_why": failed_why, "elapsed_s": load["elapsed_s"],
                     "errors_tail": load["errors_tail"][-1500:], "stderr_tail": load["stderr_tail"][-800:]},
            "idle": {"sipp_rc": idle["rc"], "successful": int(idle["stats"].get("SuccessfulCall(C)", 0)),
                     "lateness": {k: v for k, v in idle_lat.items() if k != "buckets"}},
            "other_busy_pct_before": self.quiet,
            "rss_start_kib": rss_start,
            "rss_idle_kib": rss_idle,
            "steady": steady_res,
            "whole": whole,
            "rtp": {"capture_packets_per_call": cap["packets"], "sent_by_callers": sent,
                    "received_by_server": received,
                    "loss": sent - received, "loss_pct": (sent - received) / sent * 100 if sent else None,
                    "server_sent": delta("hotline_rtp_packets_sent_total"),
                    "foreign_dropped": delta("hotline_rtp_foreign_dropped_total"),
                    "send_errors": delta("hotline_rtp_send_errors_total"),
                    "frames_skipped": delta("hotline_rtp_frames_skipped_total"),
                    "server_socket_drops": whole.get("rtp_socket_drops"),
                    "udp_snmp_delta": {k: snmp1[k] - snmp0.get(k, 0) for k in snmp1}},
            "lateness": {k: v for k, v in load_lat.items() if k != "buckets"},
            "lateness_buckets": load_lat["buckets"],
            "recordings": {"files": len(recs), "parts_left": len(parts), "seconds": rec_seconds,
                           "expected_per_call_s": expected_rec, "expected_s": ok * expected_rec,
                           "metric": delta("hotline_recordings_total"), "timing": rec_timing},
            "server_calls_total": delta("hotline_calls_total"),
            "store": {"committed": delta("hotline_store_committed_total"),
                      "rejected": delta("hotline_store_rejected_total"),
                      "spooled_after": int(m_after.get("hotline_store_spooled")),
                      "backlog_max": max((s.get("store_backlog") or 0 for s in samples), default=0),
                      "backlog_after": int(m_after.get("hotline_store_backlog")),
                      "database_up": int(m_after.get("hotline_store_database_up"))},
            "active_after": active_left,
            "stalls": stalls,
            "timeline": timeline,
            "log_levels": levels,
            "log_problems": dict(sorted(messages.items(), key=lambda kv: -kv[1])[:15]),
            "outcomes": outcomes,
            "samples": [{k: v for k, v in s.items() if k not in ("machine", "lat_counts")} for s in self.samples],
        }
        return res


def parse_perf_script(text: str) -> list[dict]:
    """perf script output (comm,tid,cpu,time,event,trace + callchain) into events."""
    events: list[dict] = []
    head = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(sched:\w+):\s*(.*)$")
    cur = None
    for line in text.splitlines():
        m = head.match(line)
        if m:
            cur = {"comm": m.group(1), "tid": int(m.group(2)), "cpu": int(m.group(3)),
                   "time": float(m.group(4)), "event": m.group(5), "trace": m.group(6), "stack": []}
            events.append(cur)
        elif cur is not None and line.strip():
            parts = line.split(None, 1)
            if len(parts) == 2:
                cur["stack"].append(parts[1].strip())
    return events


def offcpu_summary(events: list[dict], tids: set[int], pid: int) -> str:
    switch = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")
    wake = re.compile(r"comm=(.*?) pid=(\d+)")
    if not events:
        return "no events"
    span = events[-1]["time"] - events[0]["time"]
    out_at: dict[int, tuple[float, str, list[str]]] = {}
    woken_at: dict[int, float] = {}
    off: dict[tuple[int, str], float] = {}
    dstacks: dict[str, float] = {}
    latency: list[float] = []
    oncpu_next: dict[int, float] = {}
    for e in events:
        if e["event"] == "sched:sched_wakeup":
            m = wake.search(e["trace"])
            if m and int(m.group(2)) in tids:
                woken_at.setdefault(int(m.group(2)), e["time"])
            continue
        m = switch.search(e["trace"])
        if not m:
            continue
        prev, state, nxt = int(m.group(2)), m.group(3), int(m.group(5))
        if prev in tids:
            out_at[prev] = (e["time"], state, e["stack"])
            woken_at.pop(prev, None)
        if nxt in tids:
            if nxt in out_at:
                t0, st, stack = out_at.pop(nxt)
                key = "R (preempted, waiting for a CPU)" if st.startswith("R") else (
                    "D (blocked in the kernel)" if st.startswith("D") else f"{st} (sleeping)")
                off[(nxt, key)] = off.get((nxt, key), 0.0) + e["time"] - t0
                if st.startswith("D"):
                    frames = [f for f in stack if f and not f.startswith("[unknown]")
                              and not re.match(r"(__)?(io_)?schedule|preempt_schedule", f)][:6]
                    k = " <- ".join(x.split("+")[0] for x in frames)
                    dstacks[k] = dstacks.get(k, 0.0) + e["time"] - t0
            if nxt in woken_at:
                latency.append(e["time"] - woken_at.pop(nxt))
    lines = [f"off-CPU time of the server's threads over {span:.1f} s (ms per second of wall time)"]
    for (tid, key), v in sorted(off.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        lines.append(f"  tid {tid}{' (main)' if tid == pid else ''}: {key}: {v / span * 1000:.1f}")
    lines.append("kernel stacks of D waits (ms per second):")
    for k, v in sorted(dstacks.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"  {v / span * 1000:8.2f}  {k}")
    if latency:
        latency.sort()
        q = lambda p: latency[min(len(latency) - 1, int(p * len(latency)))] * 1000
        lines.append(f"wake-up to running (scheduling delay) of the server's threads: n={len(latency)} "
                     f"p50 {q(0.5):.3f} ms, p99 {q(0.99):.3f} ms, max {latency[-1] * 1000:.3f} ms")
    return "\n".join(lines)


def parse_sipp_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    if len(lines) < 2:
        return {}
    head = lines[0].rstrip(";").split(";")
    last = lines[-1].rstrip(";").split(";")
    return dict(zip(head, last))


def cpu_list(text: str) -> set[int]:
    return {int(x) for x in text.split(",") if x.strip()}


def fs_type(path: Path) -> str:
    """The file system type of the mount holding path (from /proc/mounts)."""
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        f = line.split()
        if len(f) > 2 and str(path).startswith(f[1]) and len(f[1]) > len(best):
            best, kind = f[1], f[2]
    return kind


def git_describe() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_description() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return f"{os.cpu_count()} vCPU {model}, {mem} GiB, Linux {platform.release()}"


# ---------------------------------------------------------------- report


def fmt_ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def report(r: dict) -> tuple[str, str, list[str]]:
    s, st, rtp, lat, idl = r["sipp"], r["steady"], r["rtp"], r["lateness"], r["idle"]["lateness"]
    rec = r["recordings"]
    us = st.get("server_us_per_call_s")
    core = st.get("server_core_pct")
    sipp_core = st.get("sipp_core_pct")
    rss = st.get("rss_per_call_kib")
    loss_pct = rtp["loss_pct"]
    net = st.get("server_us_per_call_s_net")
    tax = (f" [{net:.0f} us/call-s = {st['server_core_pct_net']:.1f}% without the est. "
           f"{st['raw_tax_us_per_datagram']:.1f} us/datagram raw-socket tax]") if net is not None else ""
    line = (
        f"hotline media load: N={r['calls']} x {r['seconds']:g} s: calls {s['successful']}/{s['attempted']} ok, "
        f"{s['failed']} failed; server CPU {us:.0f} us/call-s = {core:.1f}% of a core{tax} (sipp {sipp_core:.0f}%, "
        f"other processes {st.get('other_core_pct', 0):.0f}%); "
        f"RSS {rss:.1f} KiB/call; RTP rx {rtp['received_by_server']}/{rtp['sent_by_callers']} "
        f"(loss {rtp['loss']}, {loss_pct:.3f}%); lateness p50/p99/max {fmt_ms(lat['p50_us'])}/"
        f"{fmt_ms(lat['p99_us'])}/{fmt_ms(lat['max_us'])} ms (idle {fmt_ms(idl['p50_us'])}/"
        f"{fmt_ms(idl['p99_us'])}/{fmt_ms(idl['max_us'])}); skipped {rtp['frames_skipped']}; "
        f"recordings {rec['files']} = {rec['seconds'] / 60:.1f} min of {rec['expected_s'] / 60:.1f} min expected"
        if us is not None and rss is not None and loss_pct is not None else
        f"hotline media load: N={r['calls']}: incomplete run (steady phase {bool(st)}, "
        f"calls {s['successful']}/{s['attempted']} ok, {s['failed']} failed)"
    )
    def f(x, spec):
        return "-" if x is None else format(x, spec)
    row = (
        f"| {r['calls']} | {r['seconds']:g} | {s['attempted']} | {s['successful']} | {s['failed']} "
        f"| {f(us, '.0f')} ({f(net, '.0f')}) | {f(core, '.1f')} ({f(st.get('server_core_pct_net'), '.1f')}) | {f(sipp_core, '.0f')} | {f(st.get('other_core_pct'), '.0f')} "
        f"| {f(rss, '.1f')} | {rtp['sent_by_callers']} | {rtp['received_by_server']} | {f(loss_pct, '.3f')} "
        f"| {fmt_ms(lat['p50_us'])} / {fmt_ms(lat['p99_us'])} / {fmt_ms(lat['max_us'])} "
        f"| {fmt_ms(idl['p50_us'])} / {fmt_ms(idl['p99_us'])} / {fmt_ms(idl['max_us'])} "
        f"| {rtp['frames_skipped']} | {rec['files']} | {rec['seconds'] / 60:.1f} / {rec['expected_s'] / 60:.1f} |"
    )
    checks = []
    if us is not None:
        d99 = (lat["p99_us"] - idl["p99_us"]) / 1000
        checks.append(f"failed calls 0: {'yes' if s['failed'] == 0 and s['successful'] == r['calls'] else 'NO'}")
        checks.append(f"server CPU <= one core: {'yes' if core <= 100 else 'NO'} ({core:.1f}%)")
        checks.append(f"loss 0: {'yes' if rtp['loss'] == 0 else 'NO'} ({rtp['loss']} packets)")
        checks.append(f"p99 lateness within 2 ms of idle: {'yes' if d99 <= 2 else 'NO'} ({d99:+.2f} ms)")
        checks.append(f"stretch <= 300 us/call-s: {'yes' if us <= 300 else 'no'} ({us:.0f})")
        checks.append(f"stretch <= 64 KiB/call: {'yes' if rss <= 64 else 'no'} ({rss:.1f})")
    return line, row, checks


TABLE_HEAD = (
    "| calls | s | attempted | ok | failed | server µs CPU / call-s (net of raw-socket tax) | server % of a core (net) | sipp % of a core "
    "| other processes % of a core | RSS KiB / call | RTP sent by callers | received by server | loss % "
    "| lateness p50 / p99 / max ms | idle p50 / p99 / max ms | frames skipped | recordings | recorded / expected min |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---|"
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("calls", type=int, help="concurrent calls (N)")
    p.add_argument("seconds", type=float, nargs="?", default=60.0,
                   help="seconds each caller speaks while the message records (default 60)")
    p.add_argument("--rate", type=float, default=50.0, help="new calls per second during the ramp (default 50)")
    p.add_argument("--idle-seconds", type=float, default=20.0,
                   help="seconds of speech in the one-call idle baseline (default 20)")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "hotline",
                   help="the hotline binary (default target/release/hotline)")
    p.add_argument("--sipp", default=shutil.which("sipp") or "/usr/bin/sipp", help="the sipp binary")
    p.add_argument("--speech", type=Path, default=ROOT / "prompts" / "es" / "information.wav",
                   help="8 kHz mono 16-bit WAV the callers say (looped)")
    p.add_argument("--media-ip", default="127.0.0.2",
                   help="sipp's media address (loopback; default 127.0.0.2, see tests/load/README.md)")
    p.add_argument("--media", choices=("pcap", "rtpstream"), default="pcap",
                   help="pcap (default): caller.xml, speech and RFC 4733 keys from a generated pcap "
                        "(play_pcap_audio: one raw socket per call); rtpstream: "
                        "caller_rtpstream.xml, speech from rtp_stream (ordinary UDP sockets) and "
                        "the keys as SIP INFO, so no raw-socket overhead lands on the server")
    p.add_argument("--tail-ms", type=int, default=300,
                   help="the call stays up this long after the speech capture ends (default 300)")
    p.add_argument("--wait-quiet", type=float, default=600.0,
                   help="before the idle and the load run, wait up to this many seconds for the "
                        "machine to be quiet (default 600; 0: do not wait)")
    p.add_argument("--quiet-pct", type=float, default=20.0,
                   help="quiet: other processes use at most this %% of all CPUs over 5 s (default 20)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the server and sipp at this nice value (e.g. -10 on a machine shared "
                        "with builds; default 0)")
    p.add_argument("--no-raw-tax", dest="raw_tax", action="store_false",
                   help="do not measure the kernel's per-datagram cost of sipp's raw sockets")
    p.add_argument("--perf", type=float, default=0.0,
                   help="profile the server with perf record for this many seconds once all "
                        "calls are up (a diagnostic run: perf costs CPU too); the report goes "
                        "next to --json as .perf.txt")
    p.add_argument("--tmp-parent", default=None,
                   help="where the temp dir (and so the data dir and recordings) goes; default "
                        "the system's temp dir. /dev/shm (tmpfs: fsync costs nothing) separates "
                        "disk effects from the rest")
    p.add_argument("--server-nice", type=int, default=None,
                   help="nice value of the server alone (default: --nice); e.g. --nice -5 "
                        "--server-nice -19 shows what the server does when sipp cannot preempt it")
    p.add_argument("--server-cpus", type=cpu_list, default=None,
                   help="pin the server to these CPUs, e.g. 0 (tokio then starts one worker per CPU)")
    p.add_argument("--sipp-cpus", type=cpu_list, default=None, help="pin sipp to these CPUs, e.g. 1")
    p.add_argument("--offcpu", type=float, default=0.0,
                   help="record every context switch (perf, system-wide) for this many seconds "
                        "once all calls are up, and report why and how long the server's threads "
                        "were off the CPU (a diagnostic run); the report goes next to --json")
    p.add_argument("--json", type=Path, help="write every figure (and the per-second samples) here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, logs, recordings)")
    args = p.parse_args()
    args.lead_guess = 15.0
    if args.calls < 1:
        p.error("N must be at least 1")
    if not args.media_ip.startswith("127."):
        p.error("--media-ip must be a loopback address")
    if os.geteuid() != 0:
        p.error("run as root: sipp's play_pcap_audio sends from a raw socket")
    if not args.binary.exists():
        p.error(f"{args.binary} missing: build it (tests/load/run.sh does)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 8 * args.calls + 1024)) if hard != resource.RLIM_INFINITY else max(soft, 8 * args.calls + 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    run = Run(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        res = run.run()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        run.cleanup()
        return 130
    except BaseException:
        if run.server_log_exists():
            log("server log tail:\n" + run.server_log.read_text(errors="replace")[-3000:])
        run.cleanup()
        raise
    if args.json and run.server_log_exists():
        shutil.copy(run.server_log, args.json.with_suffix(".server.log"))
    run.cleanup()
    line, row, checks = report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    print(line)
    print()
    print(TABLE_HEAD)
    print(row)
    print()
    for c in checks:
        print(f"- {c}")
    extra = []
    if res["sipp"]["failed_why"]:
        extra.append(f"sipp failures: {res['sipp']['failed_why']}")
    if res["log_problems"]:
        extra.append(f"server warnings/errors: {res['log_problems']}")
    if res["rtp"]["server_socket_drops"]:
        extra.append(f"server RTP sockets dropped {res['rtp']['server_socket_drops']} datagrams (receive buffer full)")
    rt = res["recordings"].get("timing", {})
    st_ = rt.get("start_after_invite_s", {})
    du = rt.get("duration_s", {})
    if st_.get("p50") is not None:
        extra.append(f"recording started {st_['p50']:.1f} s (p50) / {st_['p99']:.1f} s (p99) / "
                     f"{st_['max']:.1f} s (max) after the INVITE (expected {st_['expected']:.1f} s); "
                     f"durations min {du['min']:.1f} s, p50 {du['p50']:.1f} s, max {du['max']:.1f} s")
    stl = res["stalls"]
    if stl["seconds_with_late_ticks"]:
        def pct(d):
            return ", ".join(f"{k.replace('_pct', '')} {v:.0f}%" for k, v in d.items() if v is not None)
        extra.append(f"ticks >= 20 ms late or frames skipped in {stl['seconds_with_late_ticks']} of "
                     f"{stl['of_seconds']} s; those seconds: {pct(stl['mean_when_late'])}; "
                     f"the others: {pct(stl['mean_otherwise'])}; "
                     f"most server threads blocked on I/O at once: {stl['max_blocked_io_threads']}")
    for e in extra:
        print(f"- {e}")
    ok = res["sipp"]["failed"] == 0 and res["sipp"]["successful"] == args.calls
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
