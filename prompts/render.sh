#!/usr/bin/env bash
# Renders the hotline's voice prompts from prompts.toml (beside this script):
#   speech          espeak-ng (voice per language, slow rate) -> sox
#   beep            sox synth: 400 ms, 1 kHz sine
#   hold-music      sox synth: 12 s loop of soft sine chords (free of rights)
# into <out>/<lang>/<id>.wav, 8000 Hz, mono, 16-bit signed PCM WAV, peak-
# normalised, then checks every file with soxi.
#
# Deterministic and re-runnable: the same prompts.toml and the same espeak-ng
# and sox versions give byte-identical files (sox runs with -R, no dither).
# Files are written to a temporary name and renamed into place, so a running
# hotline never reads a half-written prompt.
#
# Usage: prompts/render.sh [--out DIR] [--missing-only] [--check]
#   --out DIR        write DIR/<lang>/<id>.wav instead of next to this script
#   --missing-only   render only files that do not exist yet (keeps recordings
#                    by native speakers that were dropped in place)
#   --check          render nothing; only check the files that are there
# Needs: bash, python3 >= 3.11 (tomllib), espeak-ng (voices es-419, qu), sox.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
toml="$here/prompts.toml"
out="$here"
missing_only=0
check_only=0

while (($#)); do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --missing-only) missing_only=1; shift ;;
        --check) check_only=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "render.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

rate=8000                        # telephony: G.711 is 8 kHz
speed=165                        # espeak-ng words per minute (default 175): slower for bad lines
declare -A voice=([es]=es-419 [qu]=qu)
gain_speech=-3                   # dBFS peak
gain_beep=-14                    # a pure sine sounds louder than speech at the same peak
gain_music=-12                   # calm, below the speech
bilingual_gap=0.4                # seconds between the two languages of a bilingual prompt
sox_=(sox -R -D)                 # -R repeatable, -D no dither: byte-identical output
fmt=(-r "$rate" -c 1 -b 16 -e signed-integer -t wav)

need() { command -v "$1" >/dev/null || { echo "render.sh: $1 not found (${2})" >&2; exit 1; }; }
need python3 "python3 >= 3.11"
need soxi "apt-get install sox"
if ((!check_only)); then
    need sox "apt-get install sox"
    need espeak-ng "apt-get install espeak-ng"
fi

# --- read prompts.toml ---------------------------------------------------------
# Prints one line "L<US>lang<US>lang…", then one line per prompt:
#   id<US>kind<US>bilingual(0|1)<US>max_seconds<US>tts text per language…
# (<US> = \x1f; texts are whitespace-collapsed with the [tts.<lang>] respellings
# applied.) Fails, naming the key, when the file does not follow the schema.
listing=$(python3 - "$toml" <<'PY'
import re, sys, tomllib

path = sys.argv[1]
def die(msg):
    sys.exit(f"{path}: {msg}")

try:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
except (OSError, tomllib.TOMLDecodeError) as e:
    die(e)

langs = doc.get("languages")
if not (isinstance(langs, list) and langs and all(isinstance(l, str) and re.fullmatch(r"[a-z]{2,3}", l) for l in langs)):
    die("languages: must be a list of language codes like [\"es\", \"qu\"]")
prompts = doc.get("prompts")
if not isinstance(prompts, dict) or not prompts:
    die("prompts: no [prompts.<id>] tables")
tts = doc.get("tts", {})

def respell(lang, text):
    for word, sub in tts.get(lang, {}).items():
        text = re.sub(r"(?<![\w'])" + re.escape(word) + r"(?![\w'])", lambda _: sub, text, flags=re.I)
    return text

US = "\x1f"
print("L" + US + US.join(langs))
known = {"description", "kind", "bilingual", "max_seconds", "qu_review", *langs}
for pid, p in prompts.items():
    where = f"prompts.{pid}"
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", pid):
        die(f"{where}: id must be lower-case letters/digits joined by hyphens")
    if not isinstance(p, dict):
        die(f"{where}: must be a table")
    for k in p:
        if k not in known:
            print(f"{path}: {where}.{k}: unknown key, ignored", file=sys.stderr)
    if not isinstance(p.get("description"), str) or not p["description"].strip():
        die(f"{where}.description: missing")
    kind = p.get("kind", "speech")
    if kind not in ("speech", "tone", "music"):
        die(f"{where}.kind: must be speech, tone or music")
    if kind != "speech" and pid not in ("beep", "hold-music"):
        die(f"{where}.kind: render.sh only knows how to synthesise beep and hold-music")
    maxs = p.get("max_seconds", "")
    if maxs != "" and not (isinstance(maxs, (int, float)) and maxs > 0):
        die(f"{where}.max_seconds: must be a positive number")
    bil = p.get("bilingual", False)
    if not isinstance(bil, bool):
        die(f"{where}.bilingual: must be true or false")
    texts = []
    for lang in langs:
        t = p.get(lang)
        if kind == "speech":
            if not isinstance(t, str) or not t.strip():
                die(f"{where}.{lang}: missing text")
            t = " ".join(t.split())
            if t.startswith("-"):
                die(f"{where}.{lang}: must not start with '-'")
            texts.append(respell(lang, t))
        elif t is not None:
            die(f"{where}.{lang}: a {kind} has no text")
        else:
            texts.append("")
    if "qu" in p and not (isinstance(p.get("qu_review"), str) and p["qu_review"].strip()):
        die(f"{where}.qu_review: required with a qu text (e.g. \"needs native-speaker review\")")
    print(US.join([pid, kind, "1" if bil else "0", str(maxs), *texts]))
PY
)

IFS=$'\x1f' read -r -a langs <<<"$(head -n1 <<<"$listing" | cut -c3-)"
for lang in "${langs[@]}"; do
    if [[ -z ${voice[$lang]:-} ]]; then
        echo "render.sh: no espeak-ng voice configured for language '$lang'" >&2
        exit 1
    fi
done

# --- render ----------------------------------------------------------------------
declare -A made=()               # files written by this run: they must be exact
if ((!check_only)); then
    mkdir -p "$out"
    tmp=$(mktemp -d "$out/.render.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT

    # speak LANG TEXT OUT: one espeak-ng utterance, silence trimmed at both ends,
    # resampled to the telephone rate.
    speak() {
        espeak-ng -v "${voice[$1]}" -s "$speed" -w "$tmp/raw.wav" "$2"
        "${sox_[@]}" "$tmp/raw.wav" "${fmt[@]}" "$3" \
            silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse gain -6 rate -v "$rate"
    }

    # chord OUT START FREQ…: a soft sine chord of 4 s with long fades, starting
    # START seconds into the loop.
    chord() {
        local o=$1 start=$2 f synth=()
        shift 2
        for f in "$@"; do synth+=(sine "$f"); done
        "${sox_[@]}" -r "$rate" -c $# -n "${fmt[@]}" "$o" \
            synth 4 "${synth[@]}" remix - fade q 1.5 4 1.8 tremolo 0.3 12 pad "$start"
    }

    # make_tone ID: synthesises the non-speech prompt ID into $tmp/ID.wav.
    make_tone() {
        case "$1" in
            beep)
                "${sox_[@]}" -r "$rate" -n "${fmt[@]}" "$tmp/beep.wav" \
                    synth 0.4 sine 1000 fade q 0.005 0.4 0.005 gain -n "$gain_beep" ;;
            hold-music)
                # C - Am - F - G, voiced within the telephone band (260-660 Hz),
                # each chord fading into the next; 12 s that loop without a click
                # (near-silence at both ends). Short because prompts/ must stay
                # under 3 MB with every file in both languages.
                chord "$tmp/c1.wav" 0 261.63 329.63 392.00 523.25
                chord "$tmp/c2.wav" 2.7 220.00 329.63 440.00 523.25
                chord "$tmp/c3.wav" 5.4 261.63 349.23 440.00 523.25
                chord "$tmp/c4.wav" 8 293.66 392.00 493.88 587.33
                "${sox_[@]}" -m "$tmp"/c[1-4].wav "${fmt[@]}" "$tmp/hold-music.wav" \
                    reverb 30 50 60 fade q 0 12 0.3 gain -n "$gain_music" ;;
        esac
    }

    rendered=0
    while IFS=$'\x1f' read -r -a f; do
        id=${f[0]} kind=${f[1]} bilingual=${f[2]:-0}
        texts=("${f[@]:4}")
        targets=()
        for lang in "${langs[@]}"; do
            dst="$out/$lang/$id.wav"
            if ((missing_only)) && [[ -e $dst ]]; then continue; fi
            targets+=("$lang")
        done
        ((${#targets[@]})) || continue

        if [[ $kind != speech ]]; then
            make_tone "$id"
            for lang in "${targets[@]}"; do cp "$tmp/$id.wav" "$tmp/$id.$lang.wav"; done
        elif ((bilingual)); then
            # Every language's text in its own voice, in the order of `languages`;
            # the one file goes to every language directory.
            parts=()
            for i in "${!langs[@]}"; do
                speak "${langs[$i]}" "${texts[$i]}" "$tmp/part$i.wav"
                ((i)) && parts+=("$tmp/gap.wav")
                parts+=("$tmp/part$i.wav")
            done
            "${sox_[@]}" -r "$rate" -n "${fmt[@]}" "$tmp/gap.wav" trim 0 "$bilingual_gap"
            "${sox_[@]}" "${parts[@]}" "${fmt[@]}" "$tmp/$id.wav" pad 0.02 0.12 gain -n "$gain_speech"
            for lang in "${targets[@]}"; do cp "$tmp/$id.wav" "$tmp/$id.$lang.wav"; done
        else
            for i in "${!langs[@]}"; do
                lang=${langs[$i]}
                [[ " ${targets[*]} " == *" $lang "* ]] || continue
                speak "$lang" "${texts[$i]}" "$tmp/seg.wav"
                "${sox_[@]}" "$tmp/seg.wav" "${fmt[@]}" "$tmp/$id.$lang.wav" pad 0.02 0.12 gain -n "$gain_speech"
            done
        fi
        for lang in "${targets[@]}"; do
            mkdir -p "$out/$lang"
            mv -f "$tmp/$id.$lang.wav" "$out/$lang/$id.wav"
            made["$lang/$id"]=1
            rendered=$((rendered + 1))
        done
    done < <(tail -n +2 <<<"$listing")
    echo "rendered $rendered file(s) into $out"
fi

# --- check -------------------------------------------------------------------------
errors=0
printf '%-28s %6s %3s %4s %8s\n' file rate ch bits seconds
while IFS=$'\x1f' read -r -a f; do
    id=${f[0]} maxs=${f[3]:-}
    for lang in "${langs[@]}"; do
        file="$out/$lang/$id.wav"
        rel="$lang/$id.wav"
        if [[ ! -f $file ]]; then
            echo "MISSING $rel" >&2; errors=$((errors + 1)); continue
        fi
        r=$(soxi -r "$file") c=$(soxi -c "$file") b=$(soxi -b "$file")
        t=$(soxi -t "$file") e=$(soxi -e "$file") d=$(soxi -D "$file")
        printf '%-28s %6s %3s %4s %8.2f\n' "$rel" "$r" "$c" "$b" "$d"
        if [[ $t != wav ]]; then
            echo "  ^ not a WAV file ($t)" >&2; errors=$((errors + 1))
        elif [[ $r != "$rate" || $c != 1 || $b != 16 || $e != "Signed Integer PCM" ]]; then
            if [[ -n ${made["$lang/$id"]:-} ]]; then
                echo "  ^ not ${rate} Hz mono 16-bit PCM ($e)" >&2; errors=$((errors + 1))
            else
                # A recording dropped in by a deployment: any rate will do,
                # the server converts at load.
                echo "  ^ note: not rendered here, not ${rate} Hz mono 16-bit ($e); converted at load" >&2
            fi
        fi
        if [[ -n $maxs ]] && awk -v d="$d" -v m="$maxs" 'BEGIN { exit !(d > m) }'; then
            echo "  ^ longer than max_seconds = $maxs" >&2; errors=$((errors + 1))
        fi
    done
done < <(tail -n +2 <<<"$listing")
total=$(du -sk --exclude='.render.*' "$out" | cut -f1)
echo "total size of $out: ${total} KiB"
if ((errors)); then
    echo "render.sh: $errors problem(s)" >&2
    exit 1
fi
