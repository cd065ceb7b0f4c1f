#!/bin/sh
# render.sh re-renders every default prompt, default/<lang>/<name>.wav, from
# the texts in default/prompts.tsv with espeak-ng and sox. Run it from any
# directory (or via `go generate ./prompts/`) after editing prompts.tsv, and
# commit the WAVs: the server embeds them and does not need either tool.
#
# Output is what the loader wants without conversion: 8 kHz, mono, 16-bit
# signed PCM, peak-normalised to -3 dBFS, with the silence espeak-ng leaves
# at both ends replaced by a fixed 100 ms (a little lead-in keeps the first
# syllable from being lost while the far end's jitter buffer fills). The
# pieces that Catalogue.Number and Duration join into one sentence (num_*,
# about, minute(s) and the phrases around them) get 30 ms instead where
# they meet another piece, so "about | five | minutes" does not sound like
# three separate announcements. sox
# runs with -R (repeatable) and -D (no dither), so re-rendering an unchanged
# text gives the same bytes and silence stays digital silence in G.711.
#
# Environment: SPEED is the espeak-ng rate in words per minute (default 175,
# espeak-ng's own default: slower makes the greetings drag on; at 175 the
# English greeting is 8 s and the Spanish one 9 s).
set -eu

cd "$(dirname "$0")"
speed=${SPEED:-175}
maxsecs=10
tsv=default/prompts.tsv

for tool in espeak-ng sox soxi; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "render.sh: $tool not found (apt-get install espeak-ng sox)" >&2
		exit 1
	}
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tab=$(printf '\t')
status=0
while IFS="$tab" read -r lang name voice text; do
	case $lang in '' | '#'*) continue ;; esac
	if [ -z "$name" ] || [ -z "$voice" ] || [ -z "$text" ]; then
		echo "render.sh: $tsv: incomplete line for $lang/$name" >&2
		exit 1
	fi
	out=default/$lang/$name.wav
	mkdir -p "default/$lang"
	# Silence before and after, in seconds: short where a piece is joined
	# to another (see the header).
	case $name in
	num_* | about) lead=0.03 trail=0.03 ;;
	you_are_caller_number | expected_wait) lead=0.1 trail=0.03 ;;
	minute | minutes | less_than_a_minute | more_than_an_hour) lead=0.03 trail=0.1 ;;
	*) lead=0.1 trail=0.1 ;;
	esac
	espeak-ng -v "$voice" -s "$speed" -w "$tmp/speech.wav" "$text"
	# Mix to mono, trim silence at both ends, resample with the very high
	# quality filter (which also band-limits below 4 kHz), normalise the
	# peak to -3 dBFS, and pad silence at each end.
	sox -R -D "$tmp/speech.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out" \
		remix - \
		silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
		rate -v 8000 gain -n -3 pad "$lead" "$trail"
	secs=$(soxi -D "$out")
	printf '%-36s %6.2f s\n' "$out" "$secs"
	if awk -v s="$secs" -v m="$maxsecs" 'BEGIN { exit !(s > m) }'; then
		echo "render.sh: $out is longer than $maxsecs s; shorten the text or raise SPEED" >&2
		status=1
	fi
done <"$tsv"
exit $status
