#!/usr/bin/env bash
# Self-test of the operator peer without the hotline: sipp plays the registrar and
# the callers (scenarios in tests/peers/sipp/), operator.py is the softphone.
#
#   A  registered peer (digest challenge like the hotline's: SHA-256 then MD5),
#      --answer-after-ms 500 --play 1000 Hz --record, two calls:
#        1. the caller streams 400 Hz (sipp rtp_stream): the peer's recording
#           must hold 400 Hz and no 1000 Hz (its own tone must not leak in);
#        2. the caller echoes (sipp -rtp_echo): the recording must hold the
#           peer's own 1000 Hz, so the played tone really went out as RTP;
#      then the peer unregisters (Expires: 0) and exits 0.
#   B  --decline 486: the caller gets 180 then 486.
#   C  --codec PCMU (offer "8 0 101" answered "0 101"), --send-dtmf 12 (heard
#      back through the echo as RFC 4733 events), --hangup-after-ms: the peer's BYE.
#
# Usage: tests/peers/selftest.sh   (KEEP=1 keeps the work dir; PJSUA2_PYTHON picks
# the interpreter, else target/pjsua2-venv/bin/python, else setup.sh makes it.)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SCEN="$HERE/sipp"

PY=${PJSUA2_PYTHON:-$ROOT/target/pjsua2-venv/bin/python}
if ! "$PY" -I -c 'import pjsua2' >/dev/null 2>&1; then
    echo "selftest: no pjsua2 at $PY; running setup.sh" >&2
    PY=$(cd "$ROOT" && bash "$HERE/setup.sh" | tail -n1)
fi
command -v sipp >/dev/null 2>&1 || { echo "selftest: needs sipp (apt-get install sip-tester)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/peer-selftest.XXXXXX")
PIDS=()
passed=0
failed=0

cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then
        echo "selftest: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

say() { printf 'selftest: %s\n' "$*"; }
ok() { passed=$((passed + 1)); say "ok   $*"; }

fail() {
    failed=$((failed + 1))
    say "FAIL $*" >&2
    for f in "$WORK"/*.jsonl "$WORK"/*.err "$WORK"/*.out; do
        [ -s "$f" ] || continue
        echo "----- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
    echo "$passed passed, $failed failed"
    exit 1
}

# A free UDP port on 127.0.0.1 (with +2 free too when $1 = pair, for sipp's echo;
# a TCP one when $1 = tcp).
free_port() {
    python3 - "${1:-}" <<'EOF'
import socket, sys
pair = sys.argv[1] == "pair"
kind = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
for _ in range(200):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    if pair:
        if p + 2 > 65535:
            s.close(); continue
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", p + 2))
        except OSError:
            s.close(); continue
        t.close()
    s.close()
    print(p)
    sys.exit(0)
sys.exit("no free port")
EOF
}

# wait_event FILE EVENT SECONDS [N]: until FILE has N (default 1) lines of EVENT.
wait_event() {
    local file=$1 ev=$2 secs=$3 n=${4:-1} end
    end=$(($(date +%s%N) + secs * 1000000000))
    while [ "$(grep -c "\"event\":\"$ev\"" "$file" 2>/dev/null || true)" -lt "$n" ]; do
        [ "$(date +%s%N)" -lt "$end" ] || fail "no '$ev' event (x$n) in $file within ${secs}s"
        sleep 0.05
    done
}

# field FILE EVENT KEY [NTH]: the KEY of the NTH (default 1) EVENT line, as text.
field() {
    python3 - "$@" <<'EOF'
import json, sys
path, ev, key = sys.argv[1:4]
nth = int(sys.argv[4]) if len(sys.argv) > 4 else 1
seen = 0
for line in open(path):
    o = json.loads(line)
    if o.get("event") == ev:
        seen += 1
        if seen == nth:
            v = o.get(key)
            print(v if isinstance(v, str) else json.dumps(v))
            sys.exit(0)
sys.exit(f"no {ev} #{nth} in {path}")
EOF
}

expect_eq() { # what got want
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
    ok "$1 = $3"
}

# wait_exit PID SECONDS NAME: the process's exit status in $rc, bounded.
wait_exit() {
    local pid=$1 secs=$2 name=$3 end
    end=$(($(date +%s%N) + secs * 1000000000))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s%N)" -ge "$end" ]; then
            kill "$pid" 2>/dev/null || true
            fail "$name did not exit within ${secs}s"
        fi
        sleep 0.05
    done
    rc=0
    wait "$pid" || rc=$?
}

# start_peer NAME ARGS...: operator.py in the background, events in NAME.jsonl.
start_peer() {
    local name=$1
    shift
    "$PY" "$HERE/operator.py" --log-file "$WORK/$name.pjsip.log" --log-level 5 "$@" \
        >"$WORK/$name.jsonl" 2>"$WORK/$name.err" </dev/null &
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    wait_event "$WORK/$name.jsonl" ready 10
    PEER_PORT=$(field "$WORK/$name.jsonl" ready port)
}

# caller NAME SCENARIO ARGS...: one sipp call to the peer, bounded, must succeed.
# SCENARIO: a file in tests/peers/sipp/, or a path.
caller() {
    local name=$1 scen=$2 rc=0 sip_port
    shift 2
    case $scen in */*) ;; *) scen=$SCEN/$scen ;; esac
    sip_port=$(free_port)
    # Explicit ports (-p, and -mp unless given): sipp's defaults are 5060 and 6000,
    # which other tests on this machine may be using.
    case " $* " in *" -mp "*) ;; *) set -- -mp "$(free_port pair)" "$@" ;; esac
    (cd "$WORK" && timeout 40 sipp -sf "$scen" "127.0.0.1:$PEER_PORT" -s ana \
        -i 127.0.0.1 -p "$sip_port" -m 1 -nostdin -timeout 30s -timeout_error \
        -trace_err -error_file "$WORK/$name.sipp-errors.log" \
        -trace_msg -message_file "$WORK/$name.sipp-messages.log" "$@" \
        >"$WORK/$name.out" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] || fail "sipp $(basename "$scen") exited $rc (see $WORK/$name.sipp-*.log)"
    ok "sipp $(basename "$scen"): call succeeded"
}

tone() { python3 "$HERE/tone.py" "$@"; }

say "python: $PY; work dir: $WORK"
tone gen "$WORK/tone1000.wav" --freq 1000 --duration 1 --amplitude 0.3 >/dev/null
tone gen "$WORK/caller-tone.ulaw" --freq 400 --duration 8 --amplitude 0.3 --format ulaw >/dev/null

# ---------------------------------------------------------------- A
say "A: registration, tone both ways"
REG_PORT=$(free_port)
(cd "$WORK" && exec timeout 60 sipp -sf "$SCEN/registrar.xml" -i 127.0.0.1 -p "$REG_PORT" -m 1 \
    -nostdin -timeout 50s -timeout_error -key user ana -key password ana-pw \
    -key domain hotline.local -key expires 120 -trace_err -error_file "$WORK/registrar.sipp-errors.log" \
    -trace_msg -message_file "$WORK/registrar.sipp-messages.log" >"$WORK/registrar.out" 2>&1) &
REG_PID=$!
PIDS+=("$REG_PID")
sleep 0.2 # sipp binds its port at start

start_peer a --registrar "sip:127.0.0.1:$REG_PORT" --user ana --password ana-pw \
    --domain hotline.local --answer-after-ms 500 --play "$WORK/tone1000.wav" \
    --record "$WORK/out{n}.wav" --calls 2 --timeout-s 45
A_PID=$PEER_PID
wait_event "$WORK/a.jsonl" registered 10
expect_eq "A registered expires" "$(field "$WORK/a.jsonl" registered expires)" 120
grep -q 'algorithm=MD5' "$WORK/registrar.sipp-messages.log" || fail "the REGISTER's Authorization is not MD5"
ok "A answered the challenge with MD5 (sipp verifyauth accepted it)"

ECHO_PORT=$(free_port pair)
caller a1 uac_tone.xml -d 3000
wait_event "$WORK/a.jsonl" recorded 10
expect_eq "A call 1 display" "$(field "$WORK/a.jsonl" incoming display)" "QU 4821"
field "$WORK/a.jsonl" incoming from | grep -q '^"QU 4821" <sip:+51987654321@127.0.0.1:[0-9]*>;tag=' ||
    fail "A call 1 From: $(field "$WORK/a.jsonl" incoming from)"
ok "A call 1 From is the full header value"
expect_eq "A call 1 codec" "$(field "$WORK/a.jsonl" media_active codec)" PCMU
expect_eq "A call 1 disconnected code" "$(field "$WORK/a.jsonl" disconnected code)" 200
expect_eq "A call 1 hung up by" "$(field "$WORK/a.jsonl" disconnected by)" remote

caller a2 uac_echo.xml -d 3000 -rtp_echo -mp "$ECHO_PORT"
wait_event "$WORK/a.jsonl" recorded 10 2
wait_exit "$A_PID" 10 "peer A"
expect_eq "A exit status" "$rc" 0
grep -q '"event":"unregistered","code":200' "$WORK/a.jsonl" || fail "A did not unregister"
wait_exit "$REG_PID" 10 "registrar sipp"
expect_eq "registrar sipp (saw the Expires 0 unregistration) exit status" "$rc" 0

# What the peer heard: the caller's 400 Hz, not its own 1000 Hz; then, through the
# echo, its own 1000 Hz and no 400 Hz. The first 0.3 s may be jitter-buffer silence.
tone check "$WORK/out1.wav" --present 400 --absent 1000 --skip-s 0.3 >"$WORK/out1.analysis.json" ||
    fail "out1.wav: $(cat "$WORK/out1.analysis.json")"
ok "out1.wav (caller -> peer) holds 400 Hz, no 1000 Hz"
tone check "$WORK/out2.wav" --present 1000 --absent 400 --skip-s 0.3 >"$WORK/out2.analysis.json" ||
    fail "out2.wav: $(cat "$WORK/out2.analysis.json")"
ok "out2.wav (peer -> caller -> echo -> peer) holds 1000 Hz, no 400 Hz"

# ---------------------------------------------------------------- B
say "B: decline 486"
start_peer b --no-register --user ana --decline 486 --answer-after-ms 200 --calls 1 --timeout-s 20
B_PID=$PEER_PID
caller b1 uac_decline.xml
wait_exit "$B_PID" 10 "peer B"
expect_eq "B exit status" "$rc" 0
expect_eq "B declined code" "$(field "$WORK/b.jsonl" declined code)" 486
expect_eq "B disconnected code" "$(field "$WORK/b.jsonl" disconnected code)" 486

# ---------------------------------------------------------------- C
say "C: --codec PCMU, RFC 4733 out and back, the peer hangs up"
ECHO_PORT=$(free_port pair)
start_peer c --no-register --user ana --codec pcmu --answer-after-ms 100 \
    --play "$WORK/tone1000.wav" --send-dtmf 12 --dtmf-delay-ms 300 --hangup-after-ms 2000 \
    --calls 1 --timeout-s 20
C_PID=$PEER_PID
expect_eq "C codecs offered" "$(field "$WORK/c.jsonl" ready codecs)" '["PCMU/8000/1"]'
caller c1 uac_peer_bye.xml -rtp_echo -mp "$ECHO_PORT"
wait_exit "$C_PID" 10 "peer C"
expect_eq "C exit status" "$rc" 0
expect_eq "C codec" "$(field "$WORK/c.jsonl" media_active codec)" PCMU
expect_eq "C dtmf sent" "$(field "$WORK/c.jsonl" dtmf_sent digits)" 12
expect_eq "C dtmf heard back #1" "$(field "$WORK/c.jsonl" dtmf digit 1)" 1
expect_eq "C dtmf heard back #2" "$(field "$WORK/c.jsonl" dtmf digit 2)" 2
expect_eq "C hung up by" "$(field "$WORK/c.jsonl" disconnected by)" local

# ---------------------------------------------------------------- D
say "D: TCP: registration with the listening port in the Contact, a call over TCP"
REG_PORT=$(free_port tcp)
(cd "$WORK" && exec timeout 60 sipp -sf "$SCEN/registrar.xml" -t t1 -i 127.0.0.1 -p "$REG_PORT" -m 1 \
    -nostdin -timeout 30s -timeout_error -key user ana -key password ana-pw \
    -key domain hotline.local -key expires 60 -trace_err -error_file "$WORK/registrar-tcp.sipp-errors.log" \
    -trace_msg -message_file "$WORK/registrar-tcp.sipp-messages.log" >"$WORK/registrar-tcp.out" 2>&1) &
REG_PID=$!
PIDS+=("$REG_PID")
sleep 0.2
start_peer d --registrar "sip:127.0.0.1:$REG_PORT" --transport tcp --user ana --password ana-pw \
    --domain hotline.local --decline 603 --calls 1 --timeout-s 20
D_PID=$PEER_PID
wait_event "$WORK/d.jsonl" registered 10
grep -q "^Contact: <sip:ana@127.0.0.1:$PEER_PORT;transport=tcp>" "$WORK/registrar-tcp.sipp-messages.log" ||
    fail "D: the REGISTER's Contact is not the TCP listener 127.0.0.1:$PEER_PORT"
ok "D registered over TCP, Contact on the listening port"
sed 's/response="486"/response="603"/' "$SCEN/uac_decline.xml" >"$WORK/uac_decline_603.xml"
caller d1 "$WORK/uac_decline_603.xml" -t t1
wait_exit "$D_PID" 10 "peer D"
expect_eq "D exit status" "$rc" 0
grep -q '"event":"unregistered","code":200' "$WORK/d.jsonl" || fail "D did not unregister"
wait_exit "$REG_PID" 10 "registrar sipp (TCP)"
expect_eq "TCP registrar sipp exit status" "$rc" 0

echo "$passed passed, $failed failed"
