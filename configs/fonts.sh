#!/usr/bin/env bash
# The handwriting-style fonts the training configs draw digits in, from the npm registry's @fontsource packages:
# fonts/train/<name>/ and fonts/more/<name>/ for training, fonts/held-out/<name>/ for the many-hands test set only (never trained on).
# Run from the repository root: bash configs/fonts.sh
set -euo pipefail
TRAIN="architects-daughter caveat gloria-hallelujah homemade-apple kalam nanum-pen-script patrick-hand rock-salt
shadows-into-light annie-use-your-telescope cedarville-cursive coming-soon covered-by-your-grace delius gochi-hand
itim just-another-hand kristi mansalva nanum-brush-script neucha nothing-you-could-do permanent-marker reenie-beanie
schoolbell sriracha sue-ellen-francisco the-girl-next-door zeyada"
# more hands for fine-tuning (one weight each, fonts/more/<name>/): school scripts, brush pens, cursive, print
MORE="caveat-brush crafty-girls dancing-script dawning-of-a-new-day dekko delicious-handrawn edu-nsw-act-foundation
edu-qld-beginner edu-sa-beginner edu-tas-beginner edu-vic-wa-nt-beginner fuzzy-bubbles gaegu give-you-glory grape-nuts
just-me-again-down-here la-belle-aurore loved-by-the-king mali mynerve over-the-rainbow pangolin playpen-sans satisfy
sedgwick-ave shadows-into-light-two swanky-and-moo-moo waiting-for-the-sunrise walter-turncoat"
HELD_OUT="indie-flower short-stack handlee"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
get() {  # get NAME DEST: the package's files/ folder as DEST/NAME
    [ -d "$2/$1" ] && return 0
    (cd "$tmp" && npm pack --silent "@fontsource/$1" >/dev/null)
    mkdir -p "$2/$1" && tar xzf "$tmp"/fontsource-"$1"-*.tgz -C "$2/$1" --strip-components=2 package/files
}
for f in $TRAIN; do get "$f" fonts/train; done
for f in $MORE; do get "$f" fonts/more; done
for f in $HELD_OUT; do get "$f" fonts/held-out; done
echo "$(ls fonts/train | wc -l) + $(ls fonts/more | wc -l) training fonts, $(ls fonts/held-out | wc -l) held out"
