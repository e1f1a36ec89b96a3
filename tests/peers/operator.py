#!/usr/bin/env python3
"""A headless operator softphone for the hotline's end-to-end tests.

Built on PJSIP's Python binding (`pjsua2-python`, see tests/peers/README.md):
it REGISTERs to the hotline with digest auth as an ordinary softphone would,
takes the calls the hotline places to its contact, rings, answers or declines,
plays a WAV into the call, records what it hears, and hangs up or waits for
the BYE. No sound hardware: the conference bridge runs on pjsip's null device.

Every event is one JSON object per line on stdout (flushed). Everything pjsip
itself prints goes to stderr (or to --log-file). Optional commands on stdin,
one per line: hangup, answer, decline CODE, dtmf DIGITS, quit.

Caller mode (--call URI, no REGISTER): it places one call to URI instead,
offering G.711 and RFC 4733 telephone-event, plays/records as above, sends
digits on a --dtmf-script schedule from the call's confirmation, and hangs up
after --hangup-after-ms or waits for the far end's BYE.

Exit status: 0 after --calls calls ended (or "quit"), having unregistered
(Expires: 0) and shut the library down; 1 bad arguments or a setup error;
2 --timeout-s elapsed; 3 registration failed and --exit-on-registration-failure;
130/143 SIGINT/SIGTERM (after the same clean shutdown).
"""

import os
import sys

# This file is named operator.py, like the standard library's `operator`
# module, which argparse/re/enum import: drop this script's own directory from
# the import path before importing anything else, or Python imports this file
# as `operator` and fails with a circular import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

# pjsip writes its own lines (and, before libInit applies the log settings, its
# start-up lines) to file descriptor 1. Keep the real stdout for the JSON events
# only and point fd 1 at stderr before pjsua2 is even imported.
_EVENTS = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

try:
    import pjsua2 as pj
except ImportError as e:  # pragma: no cover - depends on the venv
    sys.stderr.write(
        f"operator.py: cannot import pjsua2 ({e}); run tests/peers/setup.sh and use "
        "the venv's python (PJSUA2_PYTHON or target/pjsua2-venv/bin/python)\n"
    )
    sys.exit(1)

T0 = time.monotonic()


def now_ms():
    return int((time.monotonic() - T0) * 1000)


_held = None  # events of callbacks that run inside our own pjsua2 calls


def emit(event, **fields):
    obj = {"event": event}
    obj.update(fields)
    obj["t_ms"] = now_ms()
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    if _held is not None:
        _held.append(line)
        return
    _EVENTS.write(line)
    _EVENTS.flush()


def act(fn, ok_event, err_event, **fields):
    """Run one pjsua2 action (answer, hangup, ...), then emit ok_event, or
    err_event with the error. Events of callbacks that pjsip runs synchronously
    inside the action (media state, disconnected) are printed after ours, so
    the events come in causal order ("answered" before "media_active")."""
    global _held
    _held = []
    err = None
    try:
        fn()
    except pj.Error as e:
        err = e.info()
    finally:
        held, _held = _held, None
    if err is None:
        emit(ok_event, **fields)
    else:
        emit(err_event, message=err, **fields)
    for line in held:
        _EVENTS.write(line)
    _EVENTS.flush()
    return err is None


def die(msg, code=1):
    """A set-up error: report it and leave at once (os._exit: no interpreter
    teardown deleting pjsua2 objects of a half-made library)."""
    sys.stderr.write(f"operator.py: {msg}\n")
    emit("error", message=msg)
    _EVENTS.flush()
    sys.stderr.flush()
    os._exit(code)


# --------------------------------------------------------------------------
# SIP header helpers (the INVITE as received, for the "incoming" event)

_HDR_ALIASES = {"f": "from", "t": "to", "i": "call-id", "m": "contact"}


def parse_headers(raw):
    """Header name (lower case, compact forms expanded) -> list of values."""
    head = raw.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    lines = head.split("\n")
    out = {}
    start = lines[0] if lines else ""
    cur = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and cur is not None:  # folded line
            out[cur][-1] += " " + line.strip()
            continue
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        name = name.strip().lower()
        name = _HDR_ALIASES.get(name, name)
        out.setdefault(name, []).append(value.strip())
        cur = name
    return start, out


def display_name(name_addr):
    """The display name of a name-addr ('"QU 4821" <sip:..>' -> 'QU 4821')."""
    s = name_addr.strip()
    if s.startswith('"'):
        m = re.match(r'"((?:[^"\\]|\\.)*)"', s)
        if m:
            return re.sub(r"\\(.)", r"\1", m.group(1))
    if "<" in s:
        return s.split("<", 1)[0].strip()
    return ""


def addr_uri(name_addr):
    """The URI of a name-addr or addr-spec, without header parameters."""
    s = name_addr.strip()
    m = re.search(r"<([^>]*)>", s)
    if m:
        return m.group(1)
    return s.split(";", 1)[0].strip()


# --------------------------------------------------------------------------


class OpCall(pj.Call):
    """One call from the hotline. All callbacks run on the main thread
    (mainThreadOnly + libHandleEvents): they only record state; the main
    loop acts on it. Never delete a Call inside its own callback."""

    def __init__(self, peer, acc, call_id, n, outgoing=False):
        pj.Call.__init__(self, acc, call_id)
        self.peer = peer
        self.n = n
        self.outgoing = outgoing  # caller mode: we sent the INVITE
        self.ignored = False  # an incoming call refused in caller mode: not counted
        self.progress_code = None  # caller mode: last 1xx reported
        self.confirmed_at = None
        self.dtmf_script = []  # caller mode: [(monotonic, digits, offset_ms)]
        self.incoming_at = time.monotonic()
        self.answer_at = None  # when to send the final answer (monotonic)
        self.answered_at = None
        self.confirmed = False
        self.media_done = False
        self.dtmf_at = None
        self.hangup_at = None
        self.local_hangup = False
        self.disconnected = False
        self.finished = False
        self.am = None
        self.player = None
        self.recorder = None
        self.record_path = None
        self.sip_call_id = ""

    # -- callbacks -----------------------------------------------------------
    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_EARLY and self.outgoing:
            code = int(ci.lastStatusCode)
            if 100 < code < 200 and code != self.progress_code:
                self.progress_code = code
                emit("ringing" if code == 180 else "progress", call=self.n, code=code, reason=ci.lastReason)
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            if self.outgoing:
                self.peer.outgoing_confirmed(self)
            emit("confirmed", call=self.n)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.disconnected:
            self.disconnected = True
            dur = ci.connectDuration
            duration_ms = int(dur.sec) * 1000 + int(dur.msec)
            emit(
                "disconnected",
                call=self.n,
                code=int(ci.lastStatusCode),
                reason=ci.lastReason,
                duration_ms=duration_ms,
                by="local" if self.local_hangup else "remote",
            )
            self.peer.pending_cleanup.append(self)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            if self.media_done:
                # re-INVITE/UPDATE (hold, resume): the stream may have a new conference
                # port; wire the player and the recorder to it again (idempotent).
                try:
                    am = self.getAudioMedia(mi.index)
                    if getattr(self, "player", None) is not None:
                        self.player.startTransmit(am)
                    if getattr(self, "recorder", None) is not None:
                        am.startTransmit(self.recorder)
                    self.am = am
                except pj.Error as e:
                    emit("media_error", call=self.n, message=e.info())
                return
            try:
                am = self.getAudioMedia(mi.index)
            except pj.Error as e:
                emit("media_error", call=self.n, message=e.info())
                return
            self.am = am
            self.media_done = True
            codec, pt, remote = "", None, ""
            try:
                si = self.getStreamInfo(mi.index)
                codec = si.codecName
                pt = int(si.txPt)
                remote = si.remoteRtpAddress
            except pj.Error:
                pass
            self.peer.attach_media(self)
            emit("media_active", call=self.n, codec=codec, pt=pt, remote_rtp=remote)
            if self.peer.args.send_dtmf:
                self.dtmf_at = time.monotonic() + self.peer.args.dtmf_delay_ms / 1000.0
            return

    def onDtmfDigit(self, prm):
        emit("dtmf", call=self.n, digit=prm.digit)


class OpAccount(pj.Account):
    def __init__(self, peer):
        pj.Account.__init__(self)
        self.peer = peer

    def onRegState(self, prm):
        code = int(prm.code)
        exp = int(prm.expiration)
        if self.peer.unregistering:
            self.peer.unregistered = True
            emit("unregistered", code=code, reason=prm.reason)
        elif code // 100 == 2 and exp > 0:
            self.peer.registered = True
            emit("registered", code=code, expires=exp)
        elif code // 100 == 2:
            emit("unregistered", code=code, reason=prm.reason)
        else:
            self.peer.registered = False
            emit("registration_failed", code=code, reason=prm.reason)
            if self.peer.args.exit_on_registration_failure:
                self.peer.stop(3)

    def onIncomingCall(self, prm):
        self.peer.incoming(self, prm)


class Peer:
    def __init__(self, args):
        self.args = args
        self.ep = None
        self.acc = None
        self.calls = []  # calls not finished yet
        self.every_call = []  # every call, until the process exits (see shutdown)
        self.pending_cleanup = []
        self.calls_ended = 0
        self.call_count = 0
        self.registered = False
        self.unregistering = False
        self.unregistered = False
        self.exit_code = None
        self.stdin_open = True
        self.stdin_buf = b""

    def stop(self, code):
        if self.exit_code is None:
            self.exit_code = code

    # -- set-up ---------------------------------------------------------------
    def start(self):
        a = self.args
        ep = pj.Endpoint()
        self.ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = max(4, a.max_calls)
        cfg.uaConfig.userAgent = "hotline-test-operator (pjsua2 %s)" % ep.libVersion().full
        cfg.logConfig.level = a.log_level
        cfg.logConfig.consoleLevel = a.log_level if not a.log_file else 0
        if a.log_file:
            cfg.logConfig.filename = a.log_file
        cfg.logConfig.msgLogging = True
        cfg.medConfig.clockRate = a.clock_rate
        cfg.medConfig.sndClockRate = a.clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = a.port
        tcfg.boundAddress = a.bind
        tcfg.publicAddress = a.bind
        ttype = pj.PJSIP_TRANSPORT_TCP if a.transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
        try:
            self.tid = ep.transportCreate(ttype, tcfg)
        except pj.Error as e:
            die(f"cannot open the {a.transport} transport on {a.bind}:{a.port}: {e.info()}")
        ep.libStart()
        ep.audDevManager().setNullDev()
        self.setup_codecs()

        local = ep.transportGetInfo(self.tid).localName
        port = int(local.rsplit(":", 1)[1])

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{a.user}@{a.domain}"
        if a.display:
            acfg.idUri = f'"{a.display}" <{acfg.idUri}>'
        if not a.no_register:
            reg = a.registrar
            if a.transport == "tcp" and "transport=" not in reg.lower():
                reg += ";transport=tcp"
            acfg.regConfig.registrarUri = reg
            acfg.regConfig.timeoutSec = a.expires
            acfg.regConfig.retryIntervalSec = 0  # a failure is reported, not retried
            acfg.regConfig.unregWaitMsec = 2000
        if a.password is not None:
            cred = pj.AuthCredInfo("digest", a.realm, a.user, 0, a.password)
            acfg.sipConfig.authCreds.append(cred)
        acfg.sipConfig.transportId = self.tid
        if a.transport == "tcp" and a.tcp_contact == "listener":
            # pjsip's own Contact for TCP is the outgoing connection's local
            # (ephemeral) port: force the listening port, so that the registrar
            # can open a new connection to it, as it would for UDP.
            acfg.sipConfig.contactForced = f"<sip:{a.user}@{a.bind}:{port};transport=tcp>"
        nat = acfg.natConfig
        nat.sipOutboundUse = 1 if a.sip_outbound else 0
        nat.contactRewriteUse = 0
        nat.viaRewriteUse = 0
        nat.sdpNatRewriteUse = 0
        nat.udpKaIntervalSec = 0
        nat.iceEnabled = False
        acfg.mediaConfig.transportConfig.boundAddress = a.bind
        acfg.mediaConfig.transportConfig.publicAddress = a.bind
        acfg.mediaConfig.transportConfig.port = a.rtp_port
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
        acc = OpAccount(self)
        try:
            acc.create(acfg, True)
        except pj.Error as e:
            die(f"cannot create the account: {e.info()}")
        self.acc = acc
        emit(
            "ready",
            transport=a.transport,
            address=a.bind,
            port=port,
            aor=f"sip:{a.user}@{a.domain}",
            contact=f"sip:{a.user}@{a.bind}:{port}"
            + (";transport=tcp" if a.transport == "tcp" else ""),
            codecs=self.enabled_codecs(),
        )
        if a.call:
            self.place_call()

    def setup_codecs(self):
        a = self.args
        if a.call and not a.codec:
            # Caller mode: offer G.711 only, PCMU then PCMA (telephone-event is
            # not a codec here: pjsip adds it to every offer).
            for ci in self.ep.codecEnum2():
                name = ci.codecId.split("/", 1)[0].upper()
                prio = {"PCMU": 255, "PCMA": 254}.get(name, 0)
                self.ep.codecSetPriority(ci.codecId, prio)
            return
        if not a.codec:
            # pjsip's defaults, but G.711 first (what the hotline speaks).
            for ci in self.ep.codecEnum2():
                name = ci.codecId.split("/", 1)[0].upper()
                if name == "PCMU":
                    self.ep.codecSetPriority(ci.codecId, 255)
                elif name == "PCMA":
                    self.ep.codecSetPriority(ci.codecId, 254)
            return
        found = False
        for ci in self.ep.codecEnum2():
            name = ci.codecId.split("/", 1)[0].upper()
            if name == a.codec:
                self.ep.codecSetPriority(ci.codecId, 255)
                found = True
            else:
                self.ep.codecSetPriority(ci.codecId, 0)  # 0 = disabled
        if not found:
            die(f"codec {a.codec} is not in this pjsip build")

    def enabled_codecs(self):
        cs = [(ci.priority, ci.codecId) for ci in self.ep.codecEnum2() if ci.priority > 0]
        cs.sort(key=lambda x: -x[0])
        return [c for _, c in cs]

    # -- calls ------------------------------------------------------------------
    def incoming(self, acc, prm):
        a = self.args
        if a.call:
            # Caller mode: not an operator. Refuse (486), uncounted.
            call = OpCall(self, acc, prm.callId, 0)
            call.ignored = True
            call.local_hangup = True
            self.every_call.append(call)
            op = pj.CallOpParam()
            op.statusCode = 486
            act(lambda: call.hangup(op), "incoming_refused", "answer_error", code=486,
                source=prm.rdata.srcAddress)
            return
        self.call_count += 1
        call = OpCall(self, acc, prm.callId, self.call_count)
        self.calls.append(call)
        self.every_call.append(call)
        raw = prm.rdata.wholeMsg
        start, hdrs = parse_headers(raw)
        from_v = (hdrs.get("from") or [""])[0]
        ci = call.getInfo()
        call.sip_call_id = ci.callIdString
        emit(
            "incoming",
            call=call.n,
            **{
                "from": from_v,
                "display": display_name(from_v),
                "remote_uri": addr_uri(from_v) if from_v else addr_uri(ci.remoteUri),
                "to": (hdrs.get("to") or [""])[0],
                "request_uri": start.split(" ")[1] if start.count(" ") >= 2 else "",
                "call_id": ci.callIdString,
                "source": prm.rdata.srcAddress,
            },
        )
        op = pj.CallOpParam()
        op.statusCode = 180
        act(lambda: call.answer(op), "ringing", "answer_error", call=call.n, code=180)
        if not a.never_answer:
            call.answer_at = time.monotonic() + a.answer_after_ms / 1000.0

    def place_call(self):
        """Caller mode: one INVITE to --call."""
        a = self.args
        uri = a.call
        if a.transport == "tcp" and "transport=" not in uri.lower():
            uri += ";transport=tcp"
        self.call_count += 1
        call = OpCall(self, self.acc, pj.PJSUA_INVALID_ID, self.call_count, outgoing=True)
        self.calls.append(call)
        self.every_call.append(call)
        op = pj.CallOpParam(True)
        global _held
        _held = []  # events of callbacks inside makeCall come after "calling"
        err = None
        try:
            call.makeCall(uri, op)
            call.sip_call_id = call.getInfo().callIdString
        except pj.Error as e:
            err = e.info()
        finally:
            held, _held = _held, None
        if err is None:
            emit("calling", call=call.n, uri=uri, call_id=call.sip_call_id)
        else:
            emit("call_error", call=call.n, uri=uri, message=err)
        for line in held:
            _EVENTS.write(line)
        _EVENTS.flush()
        if err is not None:
            self.calls.remove(call)
            self.stop(1)

    def outgoing_confirmed(self, call):
        """Caller mode: the 200 came and our ACK went out. The timers start here."""
        a = self.args
        t = time.monotonic()
        call.confirmed_at = t
        call.answered_at = t
        if a.hangup_after_ms is not None:
            call.hangup_at = t + a.hangup_after_ms / 1000.0
        call.dtmf_script = [(t + ms / 1000.0, digits, ms) for digits, ms in a.dtmf_script]

    def send_final(self, call, code):
        op = pj.CallOpParam()
        op.statusCode = code
        if code // 100 == 2:
            if act(lambda: call.answer(op), "answered", "answer_error", call=call.n, code=code):
                call.answered_at = time.monotonic()
                if self.args.hangup_after_ms is not None:
                    call.hangup_at = call.answered_at + self.args.hangup_after_ms / 1000.0
        else:
            call.local_hangup = True
            act(lambda: call.hangup(op), "declined", "answer_error", call=call.n, code=code)

    def hangup(self, call):
        """BYE for an answered call, 603 Decline for one still ringing."""
        if call.disconnected:
            return
        call.local_hangup = True
        op = pj.CallOpParam()
        if call.answered_at is None and not call.outgoing:
            op.statusCode = 603  # (an outgoing call not answered yet: CANCEL)
        act(lambda: call.hangup(op), "hangup_sent", "hangup_error", call=call.n)

    def attach_media(self, call):
        a = self.args
        am = call.am
        if a.play:
            try:
                player = pj.AudioMediaPlayer()
                player.createPlayer(a.play, 0)  # 0: loop at the end
                player.startTransmit(am)
                call.player = player
            except pj.Error as e:
                emit("media_error", call=call.n, message=f"play {a.play}: {e.info()}")
        if a.record:
            path = a.record.replace("{n}", str(call.n))
            try:
                rec = pj.AudioMediaRecorder()
                rec.createRecorder(path)
                am.startTransmit(rec)
                call.recorder = rec
                call.record_path = path
            except pj.Error as e:
                emit("media_error", call=call.n, message=f"record {path}: {e.info()}")

    def finish_call(self, call):
        """After DISCONNECTED, outside the callback: close the files, count."""
        if call.finished:
            return
        call.finished = True
        if call.player is not None:
            try:
                call.player.stopTransmit(call.am)
            except Exception:
                pass
            call.player = None  # the destructor closes the file
        if call.recorder is not None:
            # Destroying the recorder writes the WAV header's sizes and closes
            # the file: only then may a test read it.
            call.recorder = None
            emit("recorded", call=call.n, path=os.path.abspath(call.record_path))
        call.am = None
        if call.ignored:
            return
        self.calls_ended += 1
        if self.args.calls and self.calls_ended >= self.args.calls:
            self.stop(0)

    def close_media(self):
        """At exit: close every player and recorder (calls still up too)."""
        for c in self.every_call:
            c.player = None
            if c.recorder is not None:
                c.recorder = None
                emit("recorded", call=c.n, path=os.path.abspath(c.record_path))
            c.am = None

    def tick(self):
        t = time.monotonic()
        while self.pending_cleanup:
            self.finish_call(self.pending_cleanup.pop(0))
        for call in list(self.calls):
            if call.finished:
                self.calls.remove(call)
                continue
            if call.disconnected:
                continue
            if call.answer_at is not None and t >= call.answer_at:
                call.answer_at = None
                self.send_final(call, self.args.decline or 200)
            if call.dtmf_at is not None and t >= call.dtmf_at:
                call.dtmf_at = None
                self.send_dtmf(call, self.args.send_dtmf)
            # --dtmf-script: due digits go out once the media is up
            while call.dtmf_script and t >= call.dtmf_script[0][0] and call.media_done:
                _, digits, offset = call.dtmf_script.pop(0)
                self.send_dtmf(call, digits, offset_ms=offset)
            if call.hangup_at is not None and t >= call.hangup_at and call.confirmed:
                call.hangup_at = None
                self.hangup(call)

    def send_dtmf(self, call, digits, **extra):
        # RFC 4733 (telephone-event) in the RTP stream
        act(lambda: call.dialDtmf(digits), "dtmf_sent", "dtmf_error", call=call.n, digits=digits, **extra)

    def live_calls(self):
        return [c for c in self.calls if not c.disconnected]

    # -- stdin commands -----------------------------------------------------------
    def poll_stdin(self):
        if not self.stdin_open:
            return
        try:
            r, _, _ = select.select([0], [], [], 0)
        except (OSError, ValueError):
            self.stdin_open = False
            return
        if not r:
            return
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            self.stdin_open = False  # EOF (CI's /dev/null): just stop reading
            return
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            self.command(line.decode("utf-8", "replace").strip())

    def command(self, line):
        if not line:
            return
        words = line.split()
        cmd = words[0].lower()
        emit("command", command=line)
        if cmd == "hangup":
            for c in self.live_calls():
                self.hangup(c)
        elif cmd == "answer":
            for c in self.live_calls():
                if c.answered_at is None:
                    c.answer_at = None
                    self.send_final(c, 200)
        elif cmd == "decline" and len(words) == 2 and words[1].isdigit():
            for c in self.live_calls():
                if c.answered_at is None:
                    c.answer_at = None
                    self.send_final(c, int(words[1]))
        elif cmd == "dtmf" and len(words) == 2:
            for c in self.live_calls():
                if c.media_done:
                    self.send_dtmf(c, words[1])
        elif cmd == "hold":
            # re-INVITE with a=sendonly (pjsua's hold).
            for c in self.live_calls():
                if c.answered_at is not None:
                    act(lambda c=c: c.setHold(pj.CallOpParam(True)), "hold_sent", "hold_error", call=c.n)
        elif cmd == "unhold":
            for c in self.live_calls():
                if c.answered_at is not None:
                    op = pj.CallOpParam(True)
                    op.opt.flag = pj.PJSUA_CALL_UNHOLD
                    act(lambda c=c, op=op: c.reinvite(op), "unhold_sent", "hold_error", call=c.n)
        elif cmd == "quit":
            self.stop(0)
        else:
            emit("command_error", command=line, message="unknown command")

    # -- main loop and shutdown ------------------------------------------------------
    def run(self):
        deadline = time.monotonic() + self.args.timeout_s
        while self.exit_code is None:
            self.ep.libHandleEvents(10)
            self.tick()
            self.poll_stdin()
            if time.monotonic() >= deadline:
                emit("timeout", seconds=self.args.timeout_s, calls_ended=self.calls_ended)
                self.stop(2)
        return self.shutdown(self.exit_code)

    def pump(self, seconds, until):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            self.ep.libHandleEvents(10)
            self.tick()

    def shutdown(self, code):
        ep = self.ep
        # Hang up what is still up, and let the BYEs/CANCELs go out.
        for c in self.live_calls():
            self.hangup(c)
        self.pump(2.0, lambda: not self.live_calls())
        self.tick()
        for c in list(self.calls):
            if c.disconnected and not c.finished:
                self.finish_call(c)
        # Unregister (Expires: 0) and wait for the answer, bounded.
        if self.acc is not None and not self.args.no_register and self.registered:
            self.unregistering = True
            try:
                self.acc.setRegistration(False)
                self.pump(3.0, lambda: self.unregistered)
                if not self.unregistered:
                    emit("unregister_timeout")
            except pj.Error as e:
                emit("unregister_error", message=e.info())
        # Python owns the C++ objects behind Call, Account, player and recorder;
        # a C++ destructor that runs after libDestroy asserts and aborts (e.g.
        # ~Call -> pjsua_call_set_user_data). So: close the players and recorders
        # and delete the account now, while the library lives; the Call objects
        # (all kept in every_call, so none is deleted by a stray reference
        # dropping at some later point) are disowned: pjsua_destroy hangs up any
        # call still up, and os._exit ends the process without deleting them.
        self.close_media()
        for c in self.every_call:
            c.thisown = False
        self.calls = []
        self.pending_cleanup = []
        if self.acc is not None:
            try:
                self.acc.shutdown()
            except pj.Error:
                pass
            self.acc = None
        gc.collect()
        try:
            # The calls are hung up and the account unregistered above: skip
            # pjsua_destroy's fixed 1 s wait for network work still to do.
            ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        except pj.Error as e:
            sys.stderr.write(f"operator.py: libDestroy: {e.info()}\n")
        self.ep = None
        emit("exit", code=code, calls_ended=self.calls_ended)
        return code


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 1, not argparse's 2 (2 is --timeout-s)
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(1)


def parse_args(argv):
    p = _Parser(
        description="Headless operator softphone (pjsua2) for the hotline's e2e tests. "
        "One JSON event per line on stdout."
    )
    p.add_argument("--registrar", help="registrar URI, e.g. sip:127.0.0.1:5060")
    p.add_argument("--no-register", action="store_true", help="do not REGISTER (a test INVITEs the peer directly)")
    p.add_argument("--user", help="user name (AOR sip:USER@DOMAIN, digest username; "
                   "required but for --call, where it defaults to \"caller\")")
    p.add_argument("--password", help="digest password")
    p.add_argument("--domain", default="hotline.local", help="AOR domain (default hotline.local)")
    p.add_argument("--realm", default="*", help="digest realm the credentials are for (default *: any)")
    p.add_argument("--display", help="display name in From/Contact of our requests")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    p.add_argument("--tcp-contact", choices=["listener", "connection"], default="listener",
                   help="TCP Contact port: the listening port (default) or pjsip's own choice, "
                   "the registration connection's ephemeral port")
    p.add_argument("--bind", default="127.0.0.1", help="SIP and RTP address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="SIP port (default 0: any free port)")
    p.add_argument("--rtp-port", type=int, default=0, help="first RTP port (default 0: any free port)")
    p.add_argument("--expires", type=int, default=300, help="REGISTER Expires (default 300)")
    p.add_argument("--sip-outbound", action="store_true", help="RFC 5626 +sip.instance/reg-id in the Contact")
    p.add_argument("--exit-on-registration-failure", action="store_true", help="exit 3 when a REGISTER fails")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--decline", type=int, metavar="CODE", help="answer every call with this final code (e.g. 486, 603)")
    g.add_argument("--never-answer", action="store_true", help="ring (180) forever")
    p.add_argument("--answer-after-ms", type=int, default=0, help="ring this long before answering/declining (default 0)")
    p.add_argument("--play", metavar="WAV", help="WAV file played (looped) into each call once answered")
    p.add_argument("--record", metavar="OUT.wav", help="record what the peer hears; {n} = call number")
    p.add_argument("--hangup-after-ms", type=int, help="hang up this long after answering (else wait for BYE)")
    p.add_argument("--calls", type=int, default=1, help="exit 0 after this many calls ended (0: never; default 1)")
    p.add_argument("--max-calls", type=int, default=4, help="simultaneous calls pjsua accepts (default 4)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="exit 2 after this long (default 120)")
    p.add_argument("--codec", type=str.upper, choices=["PCMU", "PCMA"], help="only this codec is offered/accepted")
    p.add_argument("--send-dtmf", metavar="DIGITS", help="send these digits (RFC 4733) after the media is up")
    p.add_argument("--dtmf-delay-ms", type=int, default=500, help="delay before --send-dtmf (default 500)")
    p.add_argument("--call", metavar="URI", help="caller mode: place one call to URI (no REGISTER), "
                   "e.g. sip:0800@127.0.0.1:5070")
    p.add_argument("--dtmf-script", metavar="D@MS,...", help="caller mode: send DIGITS (RFC 4733) MS ms after "
                   "the call is confirmed, e.g. 1@3000,3@6000")
    p.add_argument("--clock-rate", type=int, default=8000, help="conference bridge / recording rate (default 8000)")
    p.add_argument("--log-level", type=int, default=3, help="pjsip log level 0-6 (default 3; 5 shows SIP messages)")
    p.add_argument("--log-file", help="pjsip log file (default: stderr)")
    a = p.parse_args(argv)
    if a.call:
        if a.registrar:
            p.error("--call places a call without REGISTER: no --registrar")
        a.no_register = True
        if not a.user:
            a.user = "caller"
        if not re.match(r"^sips?:", a.call, re.I):
            p.error(f"--call {a.call}: not a sip: URI")
        if a.decline is not None or a.never_answer:
            p.error("--decline/--never-answer are for incoming calls, not --call")
    elif a.dtmf_script:
        p.error("--dtmf-script needs --call")
    if not a.user:
        p.error("--user is required (but for --call)")
    a.dtmf_script = parse_dtmf_script(p, a.dtmf_script) if a.dtmf_script else []
    if not a.no_register and not a.registrar:
        p.error("--registrar is required unless --no-register")
    if a.decline is not None and not (300 <= a.decline <= 699):
        p.error("--decline takes a final non-2xx code (300-699)")
    if a.play and not os.path.isfile(a.play):
        p.error(f"--play {a.play}: no such file")
    if a.timeout_s <= 0:
        p.error("--timeout-s must be > 0")
    return a


def parse_dtmf_script(p, text):
    """'1@3000,3@6000' -> [('1', 3000), ('3', 6000)], sorted by time."""
    out = []
    for item in text.split(","):
        item = item.strip()
        m = re.fullmatch(r"([0-9A-Da-d*#]+)@(\d+)", item)
        if not m:
            p.error(f"--dtmf-script: bad entry {item!r} (want DIGITS@MS, e.g. 1@3000)")
        out.append((m.group(1).upper(), int(m.group(2))))
    out.sort(key=lambda x: x[1])
    return out


def main(argv):
    args = parse_args(argv)
    peer = Peer(args)

    def on_signal(signum, _frame):
        emit("signal", signal=signum)
        peer.stop(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        peer.start()
    except pj.Error as e:
        die(f"pjsua2 set-up failed: {e.info()}")
    return peer.run()


if __name__ == "__main__":
    code = main(sys.argv[1:])
    _EVENTS.flush()
    sys.stderr.flush()
    # os._exit: skip the interpreter's teardown of SWIG objects after libDestroy.
    os._exit(code)
