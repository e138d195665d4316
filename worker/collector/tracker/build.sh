#!/bin/sh
# Rebuild ../static/tracker.js (committed) from tracker.src.js with terser from the npm registry,
# then print its size and gzip size. Run by developers via `make tracker`; tests never need Node.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../static/tracker.js"
npx --yes terser@5 "$here/tracker.src.js" \
  --ecma 2017 --compress passes=3,unsafe_arrows=true,unsafe_methods=true --mangle --comments false \
  --output "$out.tmp"
{ echo "/*! cio-relay tracker, built from worker/collector/tracker/tracker.src.js */"; cat "$out.tmp"; } > "$out"
rm "$out.tmp"
echo "tracker.js: $(wc -c < "$out") bytes, $(gzip -9 -c "$out" | wc -c) gzipped"
