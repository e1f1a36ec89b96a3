#!/usr/bin/env python3
"""Test tones and their analysis (stdlib only: wave, math, struct, json).

  tone.py gen OUT.wav --freq 1000 [--duration 2.0] [--amplitude 0.3] [--rate 8000]
      A mono 16-bit PCM WAV of a sine. --format ulaw|alaw writes raw G.711
      instead (no header: what sipp's rtp_stream plays).

  tone.py analyse FILE.wav --freq 400 --freq 1000 [--skip-s S] [--length-s S]
      JSON on stdout: per channel (mono or stereo, 8- or 16-bit PCM), the RMS
      and, per frequency, the Goertzel estimate of that sine's amplitude, its
      power and the share of the channel's power it holds, over the whole
      (skipped, limited) signal and in 100 ms blocks.

  tone.py check FILE.wav [--channel N] --present 400 --absent 1000 [--min-share 0.5] [--max-share 0.02]
      The same analysis, then exit 0 if every --present frequency holds at least
      --min-share of the channel's power and every --absent one at most
      --max-share; else exit 1. Prints the analysis and the verdict.

Levels are in full-scale units: a sine of amplitude A (1.0 = full scale) has
amplitude ~A, power A^2/2 and, alone in the signal, share ~1.0.
"""

import argparse
import json
import math
import struct
import sys
import wave

BLOCK_S = 0.1


# ---------------------------------------------------------------- G.711 encoders


def ulaw(sample):
    """16-bit linear -> G.711 u-law byte (the reference g711.c algorithm)."""
    pcm = sample >> 2  # 14-bit
    mask = 0xFF
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    pcm = min(pcm, 8159) + 0x21  # clip, bias
    seg = 0
    while seg < 8 and pcm > (0x40 << seg) - 1:
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def alaw(sample):
    """16-bit linear -> G.711 A-law byte."""
    sign = 0x80 if sample >= 0 else 0
    mag = min(-sample - 1 if sample < 0 else sample, 32767) >> 3  # 13-bit magnitude
    if mag < 32:
        code = mag >> 1
    else:
        exp = 1
        while exp < 7 and mag >= (64 << (exp - 1)):
            exp += 1
        code = (exp << 4) | ((mag >> exp) & 0x0F)
    return (sign | code) ^ 0x55


def sine(freq, duration, amplitude, rate):
    n = int(round(duration * rate))
    a = amplitude * 32767.0
    return [int(round(a * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)]


def cmd_gen(args):
    samples = sine(args.freq, args.duration, args.amplitude, args.rate)
    if args.format == "wav":
        with wave.open(args.out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(args.rate)
            w.writeframes(struct.pack("<%dh" % len(samples), *samples))
    else:
        enc = ulaw if args.format == "ulaw" else alaw
        with open(args.out, "wb") as f:
            f.write(bytes(enc(s) for s in samples))
    print(json.dumps({"path": args.out, "format": args.format, "rate": args.rate,
                      "freq": args.freq, "samples": len(samples),
                      "duration_s": len(samples) / args.rate, "amplitude": args.amplitude}))
    return 0


# ---------------------------------------------------------------- analysis


def read_wav(path):
    """(rate, [channel samples as floats in -1..1])"""
    try:
        w = wave.open(path, "rb")
    except (wave.Error, EOFError) as e:
        raise SystemExit(f"tone.py: {path}: not a PCM WAV file ({e})")
    with w:
        ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        data = w.readframes(n)
    if width == 2:
        vals = struct.unpack("<%dh" % (len(data) // 2), data[: len(data) // 2 * 2])
        scale = 32768.0
        vals = [v / scale for v in vals]
    elif width == 1:
        vals = [(b - 128) / 128.0 for b in data]
    else:
        raise SystemExit(f"tone.py: {path}: {8 * width}-bit samples are not supported (8 or 16)")
    frames = len(vals) // ch
    return rate, [vals[c: frames * ch: ch] for c in range(ch)]


def goertzel(x, freq, rate):
    """Amplitude of the sine at freq in x (Hann window, any non-bin frequency)."""
    n = len(x)
    if n == 0:
        return 0.0
    w = 2 * math.pi * freq / rate
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    wsum = 0.0
    k = 2 * math.pi / (n - 1) if n > 1 else 0.0
    for i, v in enumerate(x):
        h = 0.5 - 0.5 * math.cos(k * i)
        wsum += h
        s0 = v * h + coeff * s1 - s2
        s2, s1 = s1, s0
    # |X(w)|^2 of the windowed block, phase-independent
    real = s1 - s2 * math.cos(w)
    imag = s2 * math.sin(w)
    mag = math.sqrt(real * real + imag * imag)
    return 2 * mag / wsum if wsum else 0.0


def rms(x):
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0


def db(v):
    return round(20 * math.log10(v), 2) if v > 0 else None


def level(x, freq, rate, total_power):
    amp = goertzel(x, freq, rate)
    power = amp * amp / 2
    return {
        "amplitude": round(amp, 6),
        "dbfs": db(amp),
        "power": round(power, 9),
        "share": round(power / total_power, 4) if total_power > 0 else 0.0,
    }


def analyse(path, freqs, skip_s=0.0, length_s=None):
    rate, chans = read_wav(path)
    start = int(skip_s * rate)
    end = None if length_s is None else start + int(length_s * rate)
    out = {"path": path, "rate": rate, "channels": len(chans),
           "frames": len(chans[0]) if chans else 0,
           "duration_s": round(len(chans[0]) / rate, 3) if chans else 0.0,
           "analysed_s": 0.0, "per_channel": []}
    blk = int(BLOCK_S * rate)
    for c, samples in enumerate(chans):
        x = samples[start:end]
        out["analysed_s"] = round(len(x) / rate, 3)
        r = rms(x)
        total = r * r
        ch = {"channel": c, "rms": round(r, 6), "rms_dbfs": db(r),
              "peak": round(max((abs(v) for v in x), default=0.0), 6), "freqs": {}}
        blocks = [x[i: i + blk] for i in range(0, len(x) - blk + 1, blk)]
        loud = [b for b in blocks if rms(b) > 10 ** (-50 / 20)]  # above -50 dBFS
        ch["blocks"] = len(blocks)
        ch["blocks_loud"] = len(loud)
        for f in freqs:
            d = level(x, f, rate, total)
            # blocks where this frequency holds most of the block's power
            d["blocks_dominant"] = sum(
                1 for b in loud if level(b, f, rate, rms(b) ** 2)["share"] > 0.5)
            ch["freqs"][fmt_freq(f)] = d
        out["per_channel"].append(ch)
    return out


def fmt_freq(f):
    return str(int(f)) if float(f).is_integer() else str(f)


def cmd_analyse(args):
    print(json.dumps(analyse(args.file, args.freq, args.skip_s, args.length_s), indent=1))
    return 0


def cmd_check(args):
    freqs = list(args.present) + list(args.absent)
    res = analyse(args.file, freqs, args.skip_s, args.length_s)
    if args.channel >= res["channels"]:
        print(f"tone.py: {args.file} has {res['channels']} channel(s), no channel {args.channel}",
              file=sys.stderr)
        return 1
    ch = res["per_channel"][args.channel]
    problems = []
    if ch["rms"] == 0.0:
        problems.append("silence")
    for f in args.present:
        s = ch["freqs"][fmt_freq(f)]["share"]
        if s < args.min_share:
            problems.append(f"{fmt_freq(f)} Hz holds {s:.4f} of the power (< {args.min_share})")
    for f in args.absent:
        s = ch["freqs"][fmt_freq(f)]["share"]
        if s > args.max_share:
            problems.append(f"{fmt_freq(f)} Hz holds {s:.4f} of the power (> {args.max_share})")
    res["check"] = {"channel": args.channel, "ok": not problems, "problems": problems}
    print(json.dumps(res, indent=1))
    if problems:
        print(f"tone.py check {args.file}: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="write a sine tone")
    g.add_argument("out")
    g.add_argument("--freq", type=float, required=True)
    g.add_argument("--duration", type=float, default=2.0, help="seconds (default 2.0)")
    g.add_argument("--amplitude", type=float, default=0.3, help="0..1 of full scale (default 0.3)")
    g.add_argument("--rate", type=int, default=8000)
    g.add_argument("--format", choices=["wav", "ulaw", "alaw"], default="wav")
    for name, fn in (("analyse", cmd_analyse), ("check", cmd_check)):
        a = sub.add_parser(name)
        a.add_argument("file")
        if name == "analyse":
            a.add_argument("--freq", type=float, action="append", required=True)
        else:
            a.add_argument("--present", type=float, action="append", default=[])
            a.add_argument("--absent", type=float, action="append", default=[])
            a.add_argument("--channel", type=int, default=0)
            a.add_argument("--min-share", type=float, default=0.5)
            a.add_argument("--max-share", type=float, default=0.02)
        a.add_argument("--skip-s", type=float, default=0.0, help="ignore the first S seconds")
        a.add_argument("--length-s", type=float, help="analyse at most S seconds")
        a.set_defaults(fn=fn)
    g.set_defaults(fn=cmd_gen)
    args = p.parse_args(argv)
    if args.cmd == "gen" and not (0 < args.amplitude <= 1):
        p.error("--amplitude must be in (0, 1]")
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
