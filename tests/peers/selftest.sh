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
#   D  TCP: registration with the listening port in the Contact, a call over TCP.
#   E  caller mode (--call), sipp the callee (uas_echo*.xml) with -rtp_echo:
#        1. offer "0 8 TE" (+ telephone-event), --play 1000 Hz --record: the
#           recording holds the caller's own 1000 Hz; --dtmf-script 1@800,3@1600
#           sent on time and heard back as RFC 4733; --hangup-after-ms: our BYE;
#        2. --codec PCMA (offer "8 TE"), 183 then 180, the callee's BYE;
#        3. over TCP, stdin "hangup".
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
        >"$WORK/$name.jsonl" 2>"$WORK/$name.err" <"${PEER_STDIN:-/dev/null}" &
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

# ---------------------------------------------------------------- E
# callee NAME SCENARIO ARGS...: a sipp UAS in the background (UAS_PID, UAS_PORT),
# echoing RTP on a free -mp port.
callee() {
    local name=$1 scen=$2
    shift 2
    UAS_PORT=$(free_port "${UAS_KIND:-}")
    (cd "$WORK" && exec timeout 40 sipp -sf "$SCEN/$scen" -i 127.0.0.1 -p "$UAS_PORT" \
        -mp "$(free_port pair)" -rtp_echo -m 1 -nostdin -timeout 30s -timeout_error \
        -trace_err -error_file "$WORK/$name.sipp-errors.log" \
        -trace_msg -message_file "$WORK/$name.sipp-messages.log" "$@" >"$WORK/$name.out" 2>&1) &
    UAS_PID=$!
    PIDS+=("$UAS_PID")
    sleep 0.2 # sipp binds its port at start
}

# offset FILE EVENT_A EVENT_B [NTH_B]: t_ms of the NTH_B EVENT_B minus t_ms of the first EVENT_A.
offset() {
    echo $(($(field "$1" "$3" t_ms "${4:-1}") - $(field "$1" "$2" t_ms)))
}

say "E: caller mode: --call to a sipp callee that echoes"
callee e1 uas_echo.xml
start_peer e1 --call "sip:0800@127.0.0.1:$UAS_PORT" --play "$WORK/tone1000.wav" \
    --record "$WORK/e1.wav" --dtmf-script "1@800,3@1600" --hangup-after-ms 2500 --timeout-s 20
wait_exit "$PEER_PID" 15 "caller E1"
expect_eq "E1 exit status" "$rc" 0
wait_exit "$UAS_PID" 10 "callee sipp E1"
expect_eq "E1 callee sipp exit status" "$rc" 0
expect_eq "E1 default user" "$(field "$WORK/e1.jsonl" ready aor)" "sip:caller@hotline.local"
grep -Eq '^m=audio [0-9]+ RTP/AVP 0 8 [0-9]+[[:space:]]*$' "$WORK/e1.sipp-messages.log" ||
    fail "E1: the offer is not 'PCMU PCMA telephone-event': $(grep '^m=audio' "$WORK/e1.sipp-messages.log")"
grep -Eq '^a=rtpmap:[0-9]+ telephone-event/8000[[:space:]]*$' "$WORK/e1.sipp-messages.log" || fail "E1: no telephone-event offered"
ok "E1 offer: m=audio ... RTP/AVP 0 8 TE, with telephone-event/8000"
expect_eq "E1 calling uri" "$(field "$WORK/e1.jsonl" calling uri)" "sip:0800@127.0.0.1:$UAS_PORT"
expect_eq "E1 ringing code" "$(field "$WORK/e1.jsonl" ringing code)" 180
expect_eq "E1 codec" "$(field "$WORK/e1.jsonl" media_active codec)" PCMU
expect_eq "E1 dtmf sent #1" "$(field "$WORK/e1.jsonl" dtmf_sent digits 1)" 1
expect_eq "E1 dtmf sent #2" "$(field "$WORK/e1.jsonl" dtmf_sent digits 2)" 3
d1=$(offset "$WORK/e1.jsonl" confirmed dtmf_sent 1)
d2=$(offset "$WORK/e1.jsonl" confirmed dtmf_sent 2)
{ [ "$d1" -ge 800 ] && [ "$d1" -lt 1000 ] && [ "$d2" -ge 1600 ] && [ "$d2" -lt 1800 ]; } ||
    fail "E1: digits sent at +$d1/+$d2 ms from confirmed, want +800/+1600"
ok "E1 digits sent at +$d1 and +$d2 ms after confirmed (script 1@800,3@1600)"
expect_eq "E1 dtmf heard back (RFC 4733 through the echo) #1" "$(field "$WORK/e1.jsonl" dtmf digit 1)" 1
expect_eq "E1 dtmf heard back (RFC 4733 through the echo) #2" "$(field "$WORK/e1.jsonl" dtmf digit 2)" 3
expect_eq "E1 hung up by" "$(field "$WORK/e1.jsonl" disconnected by)" local
d=$(offset "$WORK/e1.jsonl" confirmed hangup_sent)
{ [ "$d" -ge 2500 ] && [ "$d" -lt 2800 ]; } || fail "E1: BYE at +$d ms, want +2500"
ok "E1 BYE at +$d ms after confirmed (--hangup-after-ms 2500)"
grep -q '^BYE ' "$WORK/e1.sipp-messages.log" || fail "E1: the callee got no BYE"
expect_eq "E1 recorded path" "$(field "$WORK/e1.jsonl" recorded path)" "$WORK/e1.wav"
tone check "$WORK/e1.wav" --present 1000 --skip-s 0.3 >"$WORK/e1.analysis.json" ||
    fail "e1.wav: $(cat "$WORK/e1.analysis.json")"
ok "e1.wav (caller -> echo -> caller) holds 1000 Hz"

callee e2 uas_echo_bye.xml -d 2000
start_peer e2 --call "sip:0800@127.0.0.1:$UAS_PORT" --codec PCMA --play "$WORK/tone1000.wav" \
    --record "$WORK/e2.wav" --timeout-s 20
wait_exit "$PEER_PID" 15 "caller E2"
expect_eq "E2 exit status" "$rc" 0
wait_exit "$UAS_PID" 10 "callee sipp E2"
expect_eq "E2 callee sipp exit status" "$rc" 0
grep -Eq '^m=audio [0-9]+ RTP/AVP 8 [0-9]+[[:space:]]*$' "$WORK/e2.sipp-messages.log" ||
    fail "E2: the offer is not 'PCMA telephone-event': $(grep '^m=audio' "$WORK/e2.sipp-messages.log")"
ok "E2 offer: m=audio ... RTP/AVP 8 TE"
expect_eq "E2 progress code" "$(field "$WORK/e2.jsonl" progress code)" 183
expect_eq "E2 ringing code" "$(field "$WORK/e2.jsonl" ringing code)" 180
expect_eq "E2 codec" "$(field "$WORK/e2.jsonl" media_active codec)" PCMA
expect_eq "E2 hung up by" "$(field "$WORK/e2.jsonl" disconnected by)" remote
tone check "$WORK/e2.wav" --present 1000 --skip-s 0.3 >"$WORK/e2.analysis.json" ||
    fail "e2.wav: $(cat "$WORK/e2.analysis.json")"
ok "e2.wav (PCMA, through the echo) holds 1000 Hz"

UAS_KIND=tcp callee e3 uas_echo.xml -t t1
mkfifo "$WORK/e3.stdin"
exec 8<>"$WORK/e3.stdin" # read-write: opening the FIFO does not block
PEER_STDIN="$WORK/e3.stdin" start_peer e3 --call "sip:0800@127.0.0.1:$UAS_PORT" --transport tcp --timeout-s 20
wait_event "$WORK/e3.jsonl" confirmed 10
sleep 0.5
echo hangup >&8
wait_exit "$PEER_PID" 10 "caller E3"
exec 8>&-
expect_eq "E3 exit status" "$rc" 0
wait_exit "$UAS_PID" 10 "callee sipp E3"
expect_eq "E3 callee sipp (TCP) exit status" "$rc" 0
expect_eq "E3 calling uri" "$(field "$WORK/e3.jsonl" calling uri)" "sip:0800@127.0.0.1:$UAS_PORT;transport=tcp"
expect_eq "E3 stdin command" "$(field "$WORK/e3.jsonl" command command)" hangup
grep -q '"event":"hangup_sent"' "$WORK/e3.jsonl" || fail "E3: no hangup_sent"
expect_eq "E3 hung up by" "$(field "$WORK/e3.jsonl" disconnected by)" local

echo "$passed passed, $failed failed"
