#!/usr/bin/env python3
"""The "levels" load benchmark for hotline: a classic IVR call (tests/load/flow_ivr.toml:
a 6.8 s welcome heard to its end, one key, a beep, a 12 s message ended with #, a short
thanks, hang-up) at several levels of concurrent calls, the server on one core and sipp
on the other. A benchmark, not a test: CI never runs it.

    python3 tests/load/levels.py --binary target/release/hotline \\
        --levels 400,800,1200,1600 --json /tmp/levels.json
    python3 tests/load/levels.py --help       (every option)

For each level N, on loopback, with a fresh server (new temp dir and data dir):
  1. writes a prompts dir (prompts/ copied; welcome cut to 6.8 s, the menu's prompt
     0.2 s of silence), the callers' speech (raw PCMU) and key captures (RFC 4733 "1" and
     "#"), and a config (sip.max_calls 5000, rtp.port_range wide enough, --set extras);
     runs `hotline check`, starts `taskset -c 0 hotline serve`;
  2. one warm-up call, then the idle RSS;
  3. `taskset -c 1 sipp -r N/20 -l N -m 2.5N` with tests/load/caller_levels.xml: every
     second it samples the server's and sipp's /proc/<pid>/stat and VmRSS, /proc/stat and
     hotline_active_calls; during the steady phase dumpcap captures the server's RTP to
     a sample of its ports (BPF on those source ports);
  4. reports calls placed / answered / completed / failed (sipp: -trace_stat and
     -trace_counts), 503s received (refused calls, ACKed by the scenario), the server's
     CPU per call-second and % of its core over the steady phase (every sample with N calls
     up), RSS per call, the max jitter (tshark -z rtp,streams) and the inter-packet gaps
     (p50/p99/max) of the sampled server streams, the messages saved (.wav under the data
     dir, lengths from the WAV headers) against the expected 12.0 s, and every
     hotline_media_* / hotline_overload* / hotline_recording_gap* metric the server has.
Prints a markdown table (one row per level); --json FILE writes every figure.

It stops by itself: sipp runs with -timeout and every recv has a timeout, sipp and dumpcap
are killed if they outlive their own limits, and the server gets SIGTERM (SIGKILL 10 s
later) on every exit path, Ctrl-C included.

Needs root (sipp's play_pcap_audio sends from a raw socket; dumpcap), sipp 3.6 with pcap
and rtpstream support, tshark (dumpcap), taskset, python3 >= 3.11 (stdlib only). Helpers
come from tests/load/run.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import resource
import shutil
import signal
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
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the tree
import run as base  # noqa: E402  (tests/load/run.py: its helpers; its main() is not run)

ROOT = base.ROOT
CLK_TCK = base.CLK_TCK
log = base.log

PT_EVENT = 101
EVENT_HASH = 11
EVENT_ONE = 1
# A key press in the key captures: updates every 20 ms for 100 ms, then the end packet
# three times (RFC 4733 2.5.1.4): 8 packets, 140 ms from the first to the last.
EVENT_UPDATES = 5
EVENT_ENDS = 3
PRESS_MS = (EVENT_UPDATES + EVENT_ENDS) * 20
EXPECTED_OUTCOME = "message: welcome>menu>message>thanks"
METRIC_PREFIXES = ("hotline_media_", "hotline_overload", "hotline_recording_gap")


# ---------------------------------------------------------------- generated files


def write_wav(path: Path, pcm: list[int]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack(f"<{len(pcm)}h", *pcm))


def make_prompts(dst: Path, welcome_s: float, menu_s: float) -> dict:
    """prompts/ copied into dst (every language dir and prompts.toml, as they are), with
    welcome.wav = the first welcome_s of prompts/es/welcome.wav (faded out over 50 ms) and
    main-menu.wav = menu_s of silence, in every language. Returns the lengths used."""
    src = ROOT / "prompts"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, dst / f.name)
    langs = [d.name for d in src.iterdir() if d.is_dir()]
    for lang in langs:
        shutil.copytree(src / lang, dst / lang)
    pcm = base.read_wav_mono16(src / "es" / "welcome.wav")
    n = int(round(welcome_s * 8000))
    if len(pcm) < n:
        pcm = pcm + [0] * (n - len(pcm))
    pcm = pcm[:n]
    fade = min(400, n)
    for i in range(fade):
        pcm[n - fade + i] = int(pcm[n - fade + i] * (fade - 1 - i) / fade)
    silence = [0] * int(round(menu_s * 8000))
    for lang in langs:
        write_wav(dst / lang / "welcome.wav", pcm)
        write_wav(dst / lang / "main-menu.wav", silence)
    return {p: base.wav_seconds(dst / "es" / f"{p}.wav")
            for p in ("welcome", "main-menu", "beep", "thank-you")}


def write_key_pcap(path: Path, event: int, ts: int, seq0: int) -> dict:
    """One RFC 4733 key press as a classic pcap for sipp's play_pcap_audio (Ethernet/IPv4/
    UDP/RTP; sipp substitutes the addresses and ports): EVENT_UPDATES updates 20 ms apart
    (the first with the marker bit), then the end packet EVENT_ENDS times, every packet
    with the event's timestamp `ts`."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    t0 = 1_700_000_000
    ssrc = 0x4B455953
    for i in range(EVENT_UPDATES + EVENT_ENDS):
        end = i >= EVENT_UPDATES
        duration = min(i + 1, EVENT_UPDATES) * 160
        marker = 0x80 if i == 0 else 0
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        rtp = struct.pack("!BBHII", 0x80, marker | PT_EVENT, (seq0 + i) & 0xFFFF, ts, ssrc) + payload
        frame = base.udp_frame("127.0.0.2", "127.0.0.1", 6000, 7000, rtp, i)
        usec = i * 20_000
        out += struct.pack("<IIII", t0 + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(out)
    return {"event": event, "packets": EVENT_UPDATES + EVENT_ENDS, "ms": PRESS_MS}


def wav_header_seconds(path: Path) -> float | None:
    """Length of a WAV file from its header (fmt byte rate, data chunk size); any codec."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            byte_rate = None
            while True:
                ch = f.read(8)
                if len(ch) < 8:
                    return None
                cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size)
                    byte_rate = struct.unpack("<I", fmt[8:12])[0]
                    if size % 2:
                        f.read(1)
                elif cid == b"data":
                    if not byte_rate:
                        return None
                    if size in (0, 0xFFFFFFFF):  # unfinished header: use the file's size
                        size = path.stat().st_size - f.tell()
                    return size / byte_rate
                else:
                    f.seek(size + (size % 2), 1)
    except OSError:
        return None


def rtp_range(size: int) -> tuple[int, int]:
    """`size` ports, all free now: above the default rtp.port_range (10000-20000, which
    other hotline instances on the machine may use) and below the ephemeral ports."""
    for low in range(20002, 32768 - size, 500):
        busy = set()
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            busy.add(int(line.split()[1].split(":")[1], 16))
        if not any(low <= p <= low + size for p in busy):
            return low, low + size - 1
    raise SystemExit(f"no free range of {size} RTP ports below 32768")


def config_text(sections: dict[str, dict[str, str]]) -> str:
    out = ["# written by tests/load/levels.py"]
    for sec, kv in sections.items():
        out.append(f"[{sec}]")
        out.extend(f"{k} = {v}" for k, v in kv.items())
    return "\n".join(out) + "\n"


def toml_str(p: Path | str) -> str:
    return json.dumps(str(p))


# ---------------------------------------------------------------- reading results


def pick(v: list[float], q: float) -> float | None:
    """Nearest-rank quantile of a sorted list."""
    if not v:
        return None
    return v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]


def parse_counts(d: Path) -> dict[str, int]:
    """The last line of sipp's -trace_counts file (<scenario>_<pid>_counts.csv)."""
    files = sorted(d.glob("*_counts.csv"))
    if not files:
        return {}
    lines = [l for l in files[-1].read_text(errors="replace").splitlines() if l.strip()]
    if len(lines) < 2:
        return {}
    head = lines[0].rstrip(";").split(";")
    last = lines[-1].rstrip(";").split(";")
    out = {}
    for k, v in zip(head, last):
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def count_of(counts: dict[str, int], pattern: str) -> int:
    return sum(v for k, v in counts.items() if re.fullmatch(pattern, k))


def scrape_text(http: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(f"{http}/metrics", timeout=timeout) as r:
        return r.read().decode()


def metric_values(text: str, prefixes=METRIC_PREFIXES) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith(prefixes):
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def tshark_streams(pcap: Path, media_port: int) -> dict:
    """tshark -z rtp,streams: per stream packets, lost, max delta and jitter."""
    r = subprocess.run(["tshark", "-r", str(pcap), "-q", "-d", f"udp.port=={media_port},rtp",
                        "-z", "rtp,streams"], capture_output=True, text=True, timeout=600)
    streams = []
    num = r"(-?[\d.]+)"
    # ... Src IP  Port  Dst IP  Port  SSRC  Payload  Pkts  Lost (pct)  MinDelta MeanDelta
    # MaxDelta MinJitter MeanJitter MaxJitter Problem?
    pat = re.compile(rf"(\d+\.\d+\.\d+\.\d+)\s+(\d+)\s+(\d+\.\d+\.\d+\.\d+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.+?)\s+"
                     rf"(\d+)\s+(-?\d+)\s+\(([-\d.]+)%\)\s+{num}\s+{num}\s+{num}\s+{num}\s+{num}\s+{num}")
    for line in r.stdout.splitlines():
        m = pat.search(line)
        if not m:
            continue
        streams.append({
            "src": f"{m.group(1)}:{m.group(2)}", "dst": f"{m.group(3)}:{m.group(4)}",
            "ssrc": m.group(5), "payload": m.group(6).strip(), "packets": int(m.group(7)),
            "lost": int(m.group(8)), "max_delta_ms": float(m.group(12)),
            "mean_jitter_ms": float(m.group(14)), "max_jitter_ms": float(m.group(15)),
            "problem": line.rstrip().endswith("X"),
        })
    return {"streams": streams, "stderr": r.stderr[-500:] if r.returncode else "",
            "raw": r.stdout[-4000:]}


def tshark_gaps(pcap: Path, media_port: int) -> dict:
    """Arrival gaps between consecutive packets of each sampled server stream (same
    source port and SSRC, next sequence number), except before a packet with the marker
    bit (the first of a talkspurt: a pause between prompts is not a gap)."""
    r = subprocess.run(["tshark", "-r", str(pcap), "-d", f"udp.port=={media_port},rtp", "-Y", "rtp",
                        "-T", "fields", "-E", "separator=,", "-e", "frame.time_epoch", "-e", "udp.srcport",
                        "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.timestamp", "-e", "rtp.marker"],
                       capture_output=True, text=True, timeout=600)
    last: dict[tuple[str, str], tuple[float, int]] = {}
    gaps: list[float] = []
    packets = talkspurts = seq_breaks = 0
    for line in r.stdout.splitlines():
        f = line.split(",")
        if len(f) < 6 or not f[3]:
            continue
        try:
            t, seq = float(f[0]), int(f[3])
        except ValueError:
            continue
        packets += 1
        key = (f[1], f[2])
        marker = f[5].strip().lower() in ("1", "true")
        prev = last.get(key)
        last[key] = (t, seq)
        if prev is None:
            continue
        if marker:
            talkspurts += 1
            continue
        if seq != (prev[1] + 1) & 0xFFFF:
            seq_breaks += 1
            continue
        gaps.append((t - prev[0]) * 1000)
    gaps.sort()
    return {
        "packets": packets, "streams": len(last), "gaps": len(gaps), "talkspurt_starts": talkspurts,
        "seq_breaks": seq_breaks,
        "p50_ms": pick(gaps, 0.5), "p99_ms": pick(gaps, 0.99), "p999_ms": pick(gaps, 0.999),
        "max_ms": gaps[-1] if gaps else None,
        "over_30ms": sum(1 for g in gaps if g > 30), "over_40ms": sum(1 for g in gaps if g > 40),
    }


# ---------------------------------------------------------------- one level


class Level:
    def __init__(self, args: argparse.Namespace, n: int):
        self.args = args
        self.n = n
        self.calls = int(round(args.calls_factor * n))
        self.rate = n / args.rate_divisor
        self.tmp = Path(tempfile.mkdtemp(prefix=f"hotline-levels-{n}-", dir=args.tmp_parent))
        self.server: subprocess.Popen | None = None
        self.sipp: subprocess.Popen | None = None
        self.capture: subprocess.Popen | None = None
        self.samples: list[dict] = []
        self.stop_sampling = threading.Event()
        self.http = self.sip = ""

    # -- processes

    def cleanup(self) -> None:
        self.stop_sampling.set()
        for proc in (self.capture, self.sipp):
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        self.stop_server()
        if self.args.keep:
            log(f"N={self.n}: kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_server(self) -> None:
        if self.server and self.server.poll() is None:
            try:
                os.killpg(self.server.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=10)

    def pinned(self, cpus: str, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", cpus, *cmd] if cpus else cmd

    def prepare(self) -> None:
        a = self.args
        self.prompt_s = make_prompts(self.tmp / "prompts", a.welcome_seconds, a.menu_seconds)
        self.speech = base.write_speech_ulaw(
            self.tmp / "caller-speech.ulaw",
            math.floor(base.wav_seconds(a.speech) / 0.02) * 0.02, a.speech)
        # Distinct event timestamps: two presses, never taken for one.
        write_key_pcap(self.tmp / "key-1.pcap", EVENT_ONE, 80_000, 40_000)
        write_key_pcap(self.tmp / "key-hash.pcap", EVENT_HASH, 80_000 + 160 * 1000, 41_000)
        key_ms = int(round(a.key_at * 1000))
        hash_ms = int(round((self.prompt_s["beep"] + a.message_seconds) * 1000)) + a.hash_offset_ms
        self.timing = {"key_ms": key_ms, "hash_after_key_ms": hash_ms, "press_ms": PRESS_MS,
                       "welcome_and_menu_end_ms": int((self.prompt_s["welcome"] + self.prompt_s["main-menu"]) * 1000)}
        if key_ms < self.timing["welcome_and_menu_end_ms"]:
            log(f"warning: --key-at {a.key_at} s is before the welcome and menu prompt end")
        xml = (HERE / "caller_levels.xml").read_text()
        for k, v in {"KEY_MS": key_ms, "PRESS_MS": PRESS_MS, "HASH_REST_MS": hash_ms - PRESS_MS,
                     "BYE_TIMEOUT_MS": int(a.bye_timeout * 1000)}.items():
            xml = xml.replace(f"@{k}@", str(v))
        if re.search(r"@[A-Z_]+@", xml):
            raise SystemExit("caller_levels.xml: a placeholder was left unreplaced")
        self.scenario = xml
        # One call lasts about this long after the ACK (the thanks, then BYE).
        self.call_s = (key_ms + hash_ms + PRESS_MS) / 1000 + self.prompt_s["thank-you"] + 0.3

        # Ports: with the server's least-recently-used pool, every call of the level gets
        # a port of its own (call k: low + 2k), so a port names a call.
        size = max(2 * (self.calls + 1) + 200, 2 * self.n + 200)
        self.rtp_lo, self.rtp_hi = rtp_range(size)
        data = self.tmp / "data"
        sections: dict[str, dict[str, str]] = {
            "sip": {"listen": '"127.0.0.1:0"', "max_calls": str(a.max_calls)},
            "rtp": {"port_range": f'"{self.rtp_lo}-{self.rtp_hi}"'},
            "http": {"listen": '"127.0.0.1:0"'},
            "storage": {"data_dir": toml_str(data)},
            "ivr": {"prompts_dir": toml_str(self.tmp / "prompts"), "flow": toml_str(a.flow)},
            "calls": {"max_duration_secs": "300"},
            "shutdown": {"grace_secs": "5"},
            "log": {"format": '"json"', "filter": '"info"'},
        }
        for item in a.set:
            key, _, value = item.partition("=")
            sec, _, k = key.strip().rpartition(".")
            if not sec or not k or not value:
                raise SystemExit(f"--set {item!r}: want SECTION.KEY=VALUE (VALUE as TOML)")
            sections.setdefault(sec, {})[k] = value.strip()
        self.cfg = self.tmp / "hotline.toml"
        self.cfg.write_text(config_text(sections))
        self.max_calls_cfg = sections["sip"].get("max_calls")

    def check(self) -> str:
        r = subprocess.run([str(self.args.binary), "--config", str(self.cfg), "check"],
                           capture_output=True, text=True, timeout=60, cwd=self.tmp)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            raise SystemExit(f"hotline check failed (rc {r.returncode}):\n{out}")
        return out

    def start_server(self) -> None:
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        env.pop("DATABASE_URL", None)
        self.server_out = self.tmp / "server.out"
        self.server_log = self.tmp / "server.log"
        self.server = subprocess.Popen(
            self.pinned(self.args.server_cpus, [str(self.args.binary), "--config", str(self.cfg), "serve"]),
            cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=open(self.server_out, "w"),
            stderr=open(self.server_log, "w"), start_new_session=True, env=env)
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
        log(f"N={self.n}: hotline pid {self.server.pid} on CPU {self.args.server_cpus}: sip {self.sip}, "
            f"{self.http}, rtp {self.rtp_lo}-{self.rtp_hi}")

    def sipp_run(self, name: str, calls: int, limit: int, rate: float) -> dict:
        d = self.tmp / name
        d.mkdir()
        (d / "caller.xml").write_text(self.scenario)
        for f in ("caller-speech.ulaw", "key-1.pcap", "key-hash.pcap"):
            os.link(self.tmp / f, d / f)
        media_ip = self.args.media_ip
        budget = int(calls / rate + self.call_s + 60 + self.args.bye_timeout)
        cmd = self.pinned(self.args.sipp_cpus, [
            self.args.sipp, self.sip,
            "-sf", "caller.xml", "-s", "08002323",
            "-i", "127.0.0.1", "-p", str(base.free_port(both=True)),
            "-mi", media_ip, "-mp", str(base.free_even_pair(media_ip)),
            "-l", str(limit), "-m", str(calls), "-r", f"{rate:g}", "-rp", "1000",
            "-nostdin", "-trace_stat", "-stf", "stats.csv", "-fd", "1", "-trace_counts",
            "-trace_err", "-error_file", "errors.log",
            "-timeout", f"{budget}s", "-timeout_error",
        ])
        self.media_port = int(cmd[cmd.index("-mp") + 1])
        log(f"N={self.n} {name}: {calls} call(s), at most {limit} at once, {rate:g}/s, sipp timeout {budget} s")
        t0 = time.monotonic()
        self.sipp_t0 = t0
        self.sipp = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL,
                                     stdout=open(d / "sipp.out", "w"), stderr=open(d / "sipp.err", "w"),
                                     start_new_session=True)
        try:
            rc = self.sipp.wait(timeout=budget + 30)
        except subprocess.TimeoutExpired:
            log(f"N={self.n} {name}: sipp outlived its own timeout; killed")
            os.killpg(self.sipp.pid, signal.SIGKILL)
            rc = self.sipp.wait(timeout=10)
        elapsed = time.monotonic() - t0
        stats = base.parse_sipp_stats(d / "stats.csv")
        counts = parse_counts(d)
        errors = (d / "errors.log").read_text(errors="replace") if (d / "errors.log").exists() else ""
        err = (d / "sipp.err").read_text(errors="replace")
        placed = int(stats.get("TotalCallCreated", 0) or 0)
        successful = int(stats.get("SuccessfulCall(C)", 0) or 0)
        refused = count_of(counts, r"\d+_503_Recv")
        res = {
            "rc": rc, "elapsed_s": elapsed,
            "placed": placed,
            "answered": count_of(counts, r"\d+_200_Recv"),
            "refused_503": refused,
            # A refused call ends the scenario normally (ACK, end): sipp counts it as
            # successful, so the completed calls are the others.
            "completed": successful - refused,
            "successful_sipp": successful,
            "failed": int(stats.get("FailedCall(C)", 0) or 0),
            "failed_why": {k: int(v) for k, v in stats.items() if k.startswith("Failed") and k.endswith("(C)")
                           and k != "FailedCall(C)" and v not in ("", "0")},
            "bye_received": count_of(counts, r"\d+_BYE_Recv"),
            "counts": counts,
            "errors_tail": errors[-1500:], "stderr_tail": err[-800:],
        }
        self.sipp = None
        return res

    def wait_idle(self, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        active = -1.0
        while time.monotonic() < deadline:
            try:
                active = base.scrape(self.http).get("hotline_active_calls")
            except OSError:
                active = -1.0
            if active == 0:
                break
            time.sleep(0.25)
        return active

    def wait_quiet(self) -> float:
        """Up to --wait-quiet seconds until other processes use at most --quiet-pct of all
        CPUs over 5 s (the server not counted). Returns that figure."""
        deadline = time.monotonic() + self.args.wait_quiet
        said = False
        while True:
            m0, s0 = base.machine_ticks(), base.proc_cpu_ticks(self.server.pid) or 0
            time.sleep(5)
            m1, s1 = base.machine_ticks(), base.proc_cpu_ticks(self.server.pid) or 0
            busy = (m1[0] - m0[0] - (s1 - s0)) / max(m1[1] - m0[1], 1) * 100
            if busy <= self.args.quiet_pct or time.monotonic() >= deadline:
                break
            if not said:
                log(f"N={self.n}: machine {busy:.0f}% busy with other work; waiting up to "
                    f"{self.args.wait_quiet:.0f} s for <= {self.args.quiet_pct:.0f}%")
                said = True
        if busy > self.args.quiet_pct:
            log(f"N={self.n}: machine still {busy:.0f}% busy with other work; going on")
        return busy

    # -- sampling and capture

    def sampler(self) -> None:
        next_t = time.monotonic()
        while not self.stop_sampling.is_set():
            s = {"t": time.monotonic(), "server_ticks": base.proc_cpu_ticks(self.server.pid),
                 "rss_kib": base.proc_status(self.server.pid).get("VmRSS"),
                 "machine": base.machine_ticks(), "self_ticks": base.proc_cpu_ticks(os.getpid())}
            sipp = self.sipp
            if sipp is not None:
                s["sipp_ticks"] = base.proc_cpu_ticks(sipp.pid)
            cap = self.capture
            if cap is not None:
                s["capture_ticks"] = base.proc_cpu_ticks(cap.pid)
            try:
                s["active"] = base.scrape(self.http, timeout=2).get("hotline_active_calls")
            except OSError:
                s["active"] = None
            self.samples.append(s)
            next_t += 1.0
            self.stop_sampling.wait(max(0.0, next_t - time.monotonic()))

    def sample_ports(self, first_call: int) -> list[int]:
        """Server RTP ports to capture: the ports the least-recently-used pool gives the
        calls placed during the capture's first part (their welcome is in the capture).
        With another allocation they are still ports some calls use."""
        a = self.args
        start = self.n / self.rate + a.capture_delay
        span = max(a.capture_seconds - self.prompt_s["welcome"] - 1, a.capture_seconds / 2)
        k = max(1, a.capture_streams)
        ports = []
        for j in range(k):
            call = first_call + int(self.rate * (start + span * j / k))
            port = self.rtp_lo + 2 * call
            if port > self.rtp_hi - 1:
                port = self.rtp_lo + (port - self.rtp_lo) % (self.rtp_hi - self.rtp_lo - 1)
                port -= (port - self.rtp_lo) % 2
            ports.append(port)
        return sorted(set(ports))

    def capture_thread(self, ports: list[int], t_start: float) -> None:
        a = self.args
        delay = t_start - time.monotonic()
        if self.stop_sampling.wait(max(0.0, delay)):
            return
        bpf = (f"udp and src host 127.0.0.1 and dst host {a.media_ip} and dst port {self.media_port} and ("
               + " or ".join(f"src port {p}" for p in ports) + ")")
        max_packets = int(len(ports) * 50 * a.capture_seconds * 1.5) + 100
        self.capture_file = self.tmp / "server-rtp.pcapng"
        self.capture_info = {"bpf": bpf, "ports": ports, "seconds": a.capture_seconds,
                             "max_packets": max_packets,
                             "started_after_sipp_s": time.monotonic() - self.sipp_t0}
        cmd = self.pinned(a.sipp_cpus, [
            a.dumpcap, "-q", "-i", "lo", "-f", bpf, "-s", "128", "-B", "16",
            "-a", f"duration:{a.capture_seconds:g}", "-c", str(max_packets), "-w", str(self.capture_file)])
        log(f"N={self.n}: capturing the server's RTP from {len(ports)} ports for {a.capture_seconds:g} s")
        self.capture = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(self.tmp / "dumpcap.err", "w"), start_new_session=True)
        try:
            self.capture.wait(timeout=a.capture_seconds + 20)
        except subprocess.TimeoutExpired:
            os.killpg(self.capture.pid, signal.SIGKILL)
            self.capture.wait(timeout=10)
        self.capture_info["rc"] = self.capture.returncode

    # -- main

    def run(self) -> dict:
        a = self.args
        self.prepare()
        check = self.check()
        self.start_server()
        time.sleep(1.0)
        rss_start = base.proc_status(self.server.pid).get("VmRSS")
        warm = None
        first_call = 0
        if a.warmup:
            warm = self.sipp_run("warmup", 1, 1, 1.0)
            self.wait_idle()
            first_call = 1
            if warm["completed"] != 1:
                log(f"N={self.n}: the warm-up call did not complete: {warm['failed_why']} "
                    f"{warm['errors_tail'][-300:]}")
        time.sleep(2.0)
        rss_idle = base.proc_status(self.server.pid).get("VmRSS")
        recs_before = set(self.recordings())
        quiet = self.wait_quiet() if a.wait_quiet > 0 else None
        m0_text = scrape_text(self.http)
        m0 = base.Metrics(m0_text)

        self.media_port = base.free_even_pair(a.media_ip)  # replaced by sipp_run's choice
        sampler = threading.Thread(target=self.sampler, daemon=True)
        self.sipp_t0 = time.monotonic()
        self.capture_info: dict = {}
        self.capture_file = None
        ports = self.sample_ports(first_call)
        cap_thread = None
        sampler.start()
        load_start_wall = time.time()

        def start_capture_when_sipp_runs():
            # sipp_run sets media_port and sipp_t0 just before it starts sipp.
            while self.sipp is None and not self.stop_sampling.is_set():
                time.sleep(0.05)
            self.capture_thread(ports, self.sipp_t0 + self.n / self.rate + a.capture_delay)

        if a.capture_seconds > 0 and shutil.which(a.dumpcap):
            cap_thread = threading.Thread(target=start_capture_when_sipp_runs, daemon=True)
            cap_thread.start()
        elif a.capture_seconds > 0:
            log(f"{a.dumpcap} missing: no RTP capture (apt-get install tshark)")
        load = self.sipp_run("load", self.calls, self.n, self.rate)
        active_left = self.wait_idle()
        time.sleep(1.5)
        self.stop_sampling.set()
        sampler.join(timeout=5)
        if cap_thread:
            cap_thread.join(timeout=a.capture_seconds + 40)
        m1_text = scrape_text(self.http)
        m1 = base.Metrics(m1_text)
        self.stop_server()
        return self.analyse(check, warm, load, rss_start, rss_idle, recs_before, quiet, m0, m1,
                            m0_text, m1_text, active_left, load_start_wall)

    def recordings(self) -> list[Path]:
        root = self.tmp / "data"
        return sorted(root.rglob("*.wav")) if root.exists() else []

    def analyse(self, check, warm, load, rss_start, rss_idle, recs_before, quiet, m0, m1,
                m0_text, m1_text, active_left, load_start_wall) -> dict:
        a, n = self.args, self.n
        samples = [s for s in self.samples if s.get("active") is not None and s.get("server_ticks") is not None]
        peak = max((s["active"] for s in samples), default=0)
        target = min(n, peak)
        thr = target - max(1, round(0.02 * target)) if target > 1 else target
        idx = [i for i, s in enumerate(samples) if target and s["active"] >= thr]
        steady = {}
        if len(idx) >= 2:
            w = samples[idx[0] : idx[-1] + 1]
            t = w[-1]["t"] - w[0]["t"]
            cpu = (w[-1]["server_ticks"] - w[0]["server_ticks"]) / CLK_TCK
            call_s = sum((y["t"] - x["t"]) * (x["active"] + y["active"]) / 2 for x, y in zip(w, w[1:]))
            sipp_cpu = None
            if w[0].get("sipp_ticks") is not None and w[-1].get("sipp_ticks") is not None:
                sipp_cpu = (w[-1]["sipp_ticks"] - w[0]["sipp_ticks"]) / CLK_TCK
            mb = w[-1]["machine"][0] - w[0]["machine"][0]
            own = (w[-1]["server_ticks"] - w[0]["server_ticks"] + (w[-1]["self_ticks"] - w[0]["self_ticks"])
                   + ((w[-1].get("sipp_ticks") or 0) - (w[0].get("sipp_ticks") or 0)))
            steady = {
                "seconds": t, "calls_target": target, "threshold": thr,
                "mean_active": call_s / t if t else None, "call_seconds": call_s, "server_cpu_s": cpu,
                "server_us_per_call_s": cpu / call_s * 1e6 if call_s else None,
                "server_core_pct": cpu / t * 100 if t else None,
                "sipp_core_pct": sipp_cpu / t * 100 if sipp_cpu is not None and t else None,
                # Everything else (other users' builds, kernel threads, dumpcap): % of one core.
                "other_core_pct": (mb - own) / CLK_TCK / t * 100 if t else None,
            }
        rss_peak = max((s["rss_kib"] or 0 for s in samples), default=None)
        # Per call: N, or fewer if fewer were ever up at once (calls refused).
        rss = {"start_kib": rss_start, "idle_kib": rss_idle, "peak_kib": rss_peak, "calls": target,
               "per_call_kib": (rss_peak - rss_idle) / target if rss_peak and rss_idle and target else None}

        # RTP sample.
        rtp: dict = {"capture": self.capture_info}
        if self.capture_file and self.capture_file.exists():
            st = tshark_streams(self.capture_file, self.media_port)
            gaps = tshark_gaps(self.capture_file, self.media_port)
            ss = [s for s in st["streams"] if s["packets"] >= 10]
            rtp.update({
                "streams": len(ss), "packets": sum(s["packets"] for s in ss),
                "lost": sum(max(s["lost"], 0) for s in ss),
                "max_jitter_ms": max((s["max_jitter_ms"] for s in ss), default=None),
                "mean_jitter_ms": (sum(s["mean_jitter_ms"] for s in ss) / len(ss)) if ss else None,
                "tshark_max_delta_ms": max((s["max_delta_ms"] for s in ss), default=None),
                "gaps": gaps, "per_stream": st["streams"],
            })
            if not ss:
                rtp["tshark_output"] = st["raw"] + st["stderr"]
            if a.json and a.keep_capture:
                dest = a.json.with_name(f"{a.json.stem}.{n}.pcapng")
                shutil.copy(self.capture_file, dest)
                rtp["capture_copy"] = str(dest)

        # Messages.
        recs = [p for p in self.recordings() if p not in recs_before]
        lengths = sorted(x for x in (wav_header_seconds(p) for p in recs) if x is not None)
        exp, tol = a.message_seconds, a.tolerance
        parts = list((self.tmp / "data").rglob("*.part")) if (self.tmp / "data").exists() else []
        messages = {
            "files": len(recs), "unreadable": len(recs) - len(lengths), "parts_left": len(parts),
            "expected_s": exp, "tolerance_s": tol,
            "min_s": lengths[0] if lengths else None, "p1_s": pick(lengths, 0.01),
            "p50_s": pick(lengths, 0.5), "max_s": lengths[-1] if lengths else None,
            "within": sum(1 for x in lengths if abs(x - exp) <= tol),
            "short": sum(1 for x in lengths if x < exp - tol),
            "long": sum(1 for x in lengths if x > exp + tol),
        }

        # Metrics: what the engine exposes under the prefixes, before/after the load.
        v0, v1 = metric_values(m0_text), metric_values(m1_text)
        media_metrics = {k: {"after": v, "delta": v - v0.get(k, 0.0)} for k, v in v1.items()}

        log_levels: dict[str, int] = {}
        problems: dict[str, int] = {}
        paths: dict[str, int] = {}
        for line in self.server_log.read_text(errors="replace").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                r = {"level": "RAW", "fields": {"message": line}}
            fl = r.get("fields", {})
            if fl.get("message") == "call outcome":
                k = f"{fl.get('disposition')}: {fl.get('path')}"
                paths[k] = paths.get(k, 0) + 1
            lv = r.get("level", "?")
            log_levels[lv] = log_levels.get(lv, 0) + 1
            if lv in ("WARN", "ERROR", "RAW"):
                msg = str(r.get("fields", {}).get("message", ""))[:120]
                problems[msg] = problems.get(msg, 0) + 1

        def delta(name):
            return int(m1.get(name) - m0.get(name))

        return {
            "calls": n, "placed_target": self.calls, "rate_per_s": self.rate,
            "max_calls": self.max_calls_cfg, "extra_config": a.set,
            "timing": self.timing, "prompts_s": self.prompt_s, "call_s": self.call_s,
            "check": check, "warmup": {k: warm[k] for k in ("completed", "failed", "failed_why")} if warm else None,
            "other_busy_pct_before": quiet,
            "sipp": {k: v for k, v in load.items() if k != "counts"}, "sipp_counts": load["counts"],
            "steady": steady, "rss": rss, "rtp": rtp, "messages": messages,
            "message_lengths_s": [round(x, 3) for x in lengths],
            "metrics": media_metrics,
            "server": {"calls_total": delta("hotline_calls_total"),
                       "recordings_total": delta("hotline_recordings_total"),
                       "rtp_sent": delta("hotline_rtp_packets_sent_total"),
                       "rtp_received": delta("hotline_rtp_packets_received_total"),
                       "frames_skipped": delta("hotline_rtp_frames_skipped_total"),
                       "foreign_dropped": delta("hotline_rtp_foreign_dropped_total"),
                       "active_after": active_left},
            # From the log's "call outcome" lines (warm-up call included): a call that took
            # the key goes welcome>menu>message>thanks.
            "outcomes": paths,
            "log_levels": log_levels,
            "log_problems": dict(sorted(problems.items(), key=lambda kv: -kv[1])[:15]),
            "samples": [{"t": round(s["t"] - samples[0]["t"], 2), "active": s.get("active"),
                         "server_ticks": s.get("server_ticks"), "rss_kib": s.get("rss_kib"),
                         "sipp_ticks": s.get("sipp_ticks")} for s in samples] if samples else [],
            "load_start": dt.datetime.fromtimestamp(load_start_wall, dt.timezone.utc).isoformat(),
        }


# ---------------------------------------------------------------- report


def f(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


TABLE_HEAD = (
    "| N | placed | answered | completed | failed | 503 | server µs CPU / call-s | server % of its core "
    "| sipp % | other % | RSS KiB / call | RTP streams / packets | max jitter ms | gap p50 / p99 / max ms "
    "| messages | length min / p1 / p50 / max s | within ±0.3 s | short > 0.3 s | engine metrics |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|---:|---:|---|"
)


def row(r: dict) -> str:
    s, st, rtp, msg = r["sipp"], r["steady"], r["rtp"], r["messages"]
    g = rtp.get("gaps", {})
    metrics = ", ".join(
        f"{k} {v['after']:g}" + (f" (+{v['delta']:g})" if v["delta"] and v["delta"] != v["after"] else "")
        for k, v in sorted(r["metrics"].items()) if "_bucket{" not in k) or "-"
    return (
        f"| {r['calls']} | {s['placed']} | {s['answered']} | {s['completed']} | {s['failed']} | {s['refused_503']} "
        f"| {f(st.get('server_us_per_call_s'), '.0f')} | {f(st.get('server_core_pct'), '.1f')} "
        f"| {f(st.get('sipp_core_pct'), '.0f')} | {f(st.get('other_core_pct'), '.0f')} "
        f"| {f(r['rss']['per_call_kib'], '.1f')} | {f(rtp.get('streams'), 'd')} / {f(rtp.get('packets'), 'd')} "
        f"| {f(rtp.get('max_jitter_ms'), '.2f')} "
        f"| {f(g.get('p50_ms'), '.1f')} / {f(g.get('p99_ms'), '.1f')} / {f(g.get('max_ms'), '.1f')} "
        f"| {msg['files']} | {f(msg['min_s'], '.2f')} / {f(msg['p1_s'], '.2f')} / {f(msg['p50_s'], '.2f')} / "
        f"{f(msg['max_s'], '.2f')} | {msg['within']} | {msg['short']} | {metrics} |"
    )


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want N,N,... (e.g. 400,800,1200,1600)")
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels must be at least 1")
    return levels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", type=parse_levels, default=[400, 800, 1200, 1600],
                   help="concurrent calls of each level, in order (default 400,800,1200,1600)")
    p.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "hotline",
                   help="the hotline binary (default target/release/hotline; built by nothing here)")
    p.add_argument("--calls-factor", type=float, default=2.5,
                   help="calls placed per level = this x N (default 2.5)")
    p.add_argument("--rate-divisor", type=float, default=20.0,
                   help="new calls per second = N / this (default 20: N calls up after 20 s)")
    p.add_argument("--max-calls", type=int, default=5000,
                   help="sip.max_calls of the server (default 5000: not what refuses calls)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="an extra config key (VALUE as TOML, e.g. --set sip.max_calls=30 or "
                        "--set 'log.filter=\"warn\"'); may be repeated; wins over the defaults")
    p.add_argument("--flow", type=Path, default=HERE / "flow_ivr.toml", help="the call flow (default tests/load/flow_ivr.toml)")
    p.add_argument("--welcome-seconds", type=float, default=6.8, help="length of the generated welcome (default 6.8)")
    p.add_argument("--menu-seconds", type=float, default=0.2,
                   help="length of the menu's own prompt, silence (default 0.2)")
    p.add_argument("--key-at", type=float, default=7.5,
                   help="seconds after the ACK the caller presses 1 (default 7.5: after the welcome and "
                        "the menu prompt)")
    p.add_argument("--message-seconds", type=float, default=12.0,
                   help="the caller presses # this long after the beep ended: the expected message "
                        "length (default 12.0)")
    p.add_argument("--hash-offset-ms", type=int, default=0,
                   help="moves the # by this many ms (calibration; default 0)")
    p.add_argument("--tolerance", type=float, default=0.3,
                   help="a message within this many seconds of the expected length is right (default 0.3)")
    p.add_argument("--bye-timeout", type=float, default=30.0,
                   help="after #, the caller waits this long for the server's BYE (default 30)")
    p.add_argument("--speech", type=Path, default=ROOT / "prompts" / "es" / "information.wav",
                   help="8 kHz mono 16-bit WAV the callers say (looped for the whole call)")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list of the server (default 0; '' no pinning)")
    p.add_argument("--sipp-cpus", default="1",
                   help="taskset CPU list of sipp and dumpcap (default 1; '' no pinning)")
    p.add_argument("--media-ip", default="127.0.0.2", help="sipp's media address (loopback; default 127.0.0.2)")
    p.add_argument("--capture-streams", type=int, default=12,
                   help="server RTP ports captured (default 12)")
    p.add_argument("--capture-seconds", type=float, default=20.0,
                   help="length of the capture in the steady phase (default 20; 0: no capture)")
    p.add_argument("--capture-delay", type=float, default=2.0,
                   help="the capture starts this long after N calls should be up (N / rate; default 2)")
    p.add_argument("--keep-capture", action="store_true", help="copy each level's capture next to --json")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="no warm-up call before the idle RSS is read")
    p.add_argument("--wait-quiet", type=float, default=120.0,
                   help="before each level, wait up to this many seconds for the machine to be quiet "
                        "(default 120; 0: do not wait)")
    p.add_argument("--quiet-pct", type=float, default=20.0,
                   help="quiet: other processes use at most this %% of all CPUs over 5 s (default 20)")
    p.add_argument("--pause", type=float, default=5.0, help="seconds between levels (default 5)")
    p.add_argument("--sipp", default=shutil.which("sipp") or "/usr/bin/sipp", help="the sipp binary")
    p.add_argument("--dumpcap", default=shutil.which("dumpcap") or "/usr/bin/dumpcap", help="the dumpcap binary")
    p.add_argument("--tmp-parent", default=None, help="where the per-level temp dirs go (default the system's)")
    p.add_argument("--json", type=Path, help="write every figure here")
    p.add_argument("--keep", action="store_true", help="keep each level's temp dir")
    args = p.parse_args()
    if os.geteuid() != 0:
        p.error("run as root: sipp's play_pcap_audio sends from a raw socket, dumpcap captures")
    if not args.binary.exists():
        p.error(f"{args.binary} missing: build it (cargo build --release -p hotline)")
    if not args.media_ip.startswith("127."):
        p.error("--media-ip must be a loopback address")
    for tool in (args.sipp, "taskset", "tshark"):
        if not shutil.which(tool):
            p.error(f"{tool} missing (apt-get install sip-tester util-linux tshark)")
    args.binary = args.binary.resolve()
    args.flow = args.flow.resolve()
    top = max(args.levels)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, 8 * top + 1024)
    if hard != resource.RLIM_INFINITY:
        want = min(hard, want)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    out = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": base.machine_description(),
        "commit": base.git_describe(),
        "binary": str(args.binary),
        "binary_built": dt.datetime.fromtimestamp(args.binary.stat().st_mtime, dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "sipp": next((l.strip() for l in subprocess.run([args.sipp, "-v"], capture_output=True, text=True,
                                                         timeout=10).stdout.splitlines() if "SIPp v" in l), "?"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "levels": [],
    }
    rc = 0
    rows = []
    try:
        for i, n in enumerate(args.levels):
            if i:
                time.sleep(args.pause)
            level = Level(args, n)
            try:
                res = level.run()
            except (Exception, SystemExit) as e:
                # This level is lost (the server died, a tool failed): say why, go on.
                if hasattr(level, "server_log") and level.server_log.exists():
                    log("server log tail:\n" + level.server_log.read_text(errors="replace")[-2000:])
                log(f"N={n}: level failed: {e!r}")
                level.cleanup()
                out["levels"].append({"calls": n, "error": repr(e)})
                rows.append(f"| {n} | level failed: {str(e)[:200]!r} |")
                rc = 1
                continue
            except BaseException:
                level.cleanup()
                raise
            level.cleanup()
            out["levels"].append(res)
            rows.append(row(res))
            log(f"N={n} done:\n{TABLE_HEAD}\n{rows[-1]}")
            if args.json:
                args.json.write_text(json.dumps(out, indent=1, default=str))
            if res["sipp"]["failed"] or res["sipp"]["completed"] + res["sipp"]["refused_503"] != res["sipp"]["placed"]:
                rc = 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        rc = 130
    print(f"hotline levels: {out['binary']} (built {out['binary_built']}), tree {out['commit']}; {out['machine']}")
    print()
    print(TABLE_HEAD)
    for r in rows:
        print(r)
    for res in out["levels"]:
        if "error" in res:
            continue
        extra = []
        if res["sipp"]["failed_why"]:
            extra.append(f"sipp failures: {res['sipp']['failed_why']}")
        odd = {k: v for k, v in res.get("outcomes", {}).items() if k != EXPECTED_OUTCOME}
        if odd:
            extra.append(f"calls not on the expected path ({EXPECTED_OUTCOME}): {odd}")
        if res["log_problems"]:
            extra.append(f"server warnings/errors: {res['log_problems']}")
        if res["messages"]["parts_left"] or res["messages"]["unreadable"]:
            extra.append(f"{res['messages']['parts_left']} .part files left, "
                         f"{res['messages']['unreadable']} unreadable .wav")
        for e in extra:
            print(f"- N={res['calls']}: {e}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
        print(f"\nevery figure: {args.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
