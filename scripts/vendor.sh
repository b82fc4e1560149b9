#!/usr/bin/env bash
# Vendor the front-end assets used by the CareSync web UI from the npm registry.
#
# Fetches pinned package tarballs with `npm pack` into a temp dir, verifies their
# integrity against the pinned hashes below, and copies ONLY the files the app
# serves into src/caresync/web/static/vendor/ (plus each package's LICENSE and a
# VERSIONS.txt). Re-running is idempotent: the vendor subdirectories this script
# owns are recreated from scratch.
#
# To bump a package: change its *_VERSION, run `npm view PKG@<major> version`
# for the newest release, then run this script once with the old integrity
# value; it prints the new one on mismatch. Copy that into *_INTEGRITY.
#
# Usage: scripts/vendor.sh
set -euo pipefail

# --- pinned versions (npm view PKG version) ---------------------------------
TABLER_CORE_VERSION="1.6.1"          # @tabler/core, latest 1.x
TABLER_ICONS_VERSION="3.49.0"        # @tabler/icons-webfont, latest 3.x
HTMX_VERSION="2.0.11"                # htmx.org, latest 2.x
CHARTJS_VERSION="4.6.1"              # chart.js, latest 4.x
SWAGGER_UI_VERSION="5.35.0"          # swagger-ui-dist, for the offline /api/docs page
# Bundled inside tabler.min.js; fetched only for their LICENSE texts.
BOOTSTRAP_VERSION="5.3.8"            # bootstrap (bundled by @tabler/core 1.6.1)
POPPER_VERSION="2.11.8"              # @popperjs/core (bundled by @tabler/core 1.6.1)

# --- pinned tarball integrity (npm pack --json -> .integrity) ---------------
TABLER_CORE_INTEGRITY="sha512-lgmR9gcxRp5JlLxcmRi9Rz85JrEvH6Bz71KnlcPVSa97wtwQNjgSs3g3fxwbAlulHyRMghhIV04QUuW3pqDsIg=="
TABLER_ICONS_INTEGRITY="sha512-kWgnmEzo17dzQyMqRmlfj+TiGV0clLMYfUtKp2WG7M+TH5418o6fsoaSlrOTK3lwESg0xS7jVfOozYrR02Ryxw=="
HTMX_INTEGRITY="sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA=="
CHARTJS_INTEGRITY="sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g=="
SWAGGER_UI_INTEGRITY="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
BOOTSTRAP_INTEGRITY="sha512-HP1SZDqaLDPwsNiqRqi5NcP0SSXciX2s9E+RyqJIIqGo+vJeN5AJVM98CXmW/Wux0nQ5L7jeWUdplCEf0Ee+tg=="
POPPER_INTEGRITY="sha512-P1st0aksCrn9sGZhp8GMYwBnQsbvAWsZAX44oXNNvLHGqAOcoVxmjZiohstwQ7SqKnbR47akdNi+uleWD8+g6A=="

MAX_FILE_BYTES=$((5 * 1024 * 1024))

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${REPO_ROOT}/src/caresync/web/static/vendor"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

die() { echo "vendor.sh: error: $*" >&2; exit 1; }

command -v npm >/dev/null || die "npm not found"
command -v node >/dev/null || die "node not found"

# fetch PKG VERSION INTEGRITY NAME -> extracts tarball to $TMP/NAME/package
fetch() {
  local pkg="$1" version="$2" integrity="$3" name="$4" tgz actual
  echo "fetching ${pkg}@${version}" >&2
  mkdir -p "$TMP/tgz" "$TMP/$name"
  tgz="$(cd "$TMP/tgz" && npm pack "${pkg}@${version}" --silent --pack-destination "$TMP/tgz" | tail -n 1)"
  [[ -f "$TMP/tgz/$tgz" ]] || die "npm pack ${pkg}@${version} produced no tarball"
  actual="sha512-$(node -e '
    const c = require("crypto"), fs = require("fs");
    process.stdout.write(c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"));
  ' "$TMP/tgz/$tgz")"
  [[ "$actual" == "$integrity" ]] || die "integrity mismatch for ${pkg}@${version}
  expected: ${integrity}
  actual:   ${actual}"
  tar -xzf "$TMP/tgz/$tgz" -C "$TMP/$name"
  [[ -d "$TMP/$name/package" ]] || die "unexpected tarball layout for ${pkg}"
}

fetch "@tabler/core"          "$TABLER_CORE_VERSION"  "$TABLER_CORE_INTEGRITY"  tabler-core
fetch "@tabler/icons-webfont" "$TABLER_ICONS_VERSION" "$TABLER_ICONS_INTEGRITY" tabler-icons
fetch "htmx.org"              "$HTMX_VERSION"         "$HTMX_INTEGRITY"         htmx
fetch "chart.js"              "$CHARTJS_VERSION"      "$CHARTJS_INTEGRITY"      chartjs
fetch "swagger-ui-dist"       "$SWAGGER_UI_VERSION"   "$SWAGGER_UI_INTEGRITY"   swagger-ui
fetch "bootstrap"             "$BOOTSTRAP_VERSION"    "$BOOTSTRAP_INTEGRITY"    bootstrap
fetch "@popperjs/core"        "$POPPER_VERSION"       "$POPPER_INTEGRITY"       popper

P_TABLER="$TMP/tabler-core/package"
P_ICONS="$TMP/tabler-icons/package"
P_HTMX="$TMP/htmx/package"
P_CHART="$TMP/chartjs/package"

# Assemble into a staging dir first so a failure never leaves DEST half-written.
STAGE="$TMP/stage"
mkdir -p "$STAGE"/{tabler,tabler-icons/fonts,htmx,chartjs,swagger-ui}

# Remove a trailing source-map comment (the .map files are not vendored, so the
# reference would only produce 404s in browser devtools).
strip_sourcemap() {
  sed -i -E -e '/^\/\/# sourceMappingURL=.*$/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$1"
}

# --- @tabler/core ------------------------------------------------------------
cp "$P_TABLER/dist/css/tabler.min.css" "$STAGE/tabler/tabler.min.css"
cp "$P_TABLER/dist/js/tabler.min.js"   "$STAGE/tabler/tabler.min.js"   # bundles Bootstrap JS + Popper
strip_sourcemap "$STAGE/tabler/tabler.min.css"
strip_sourcemap "$STAGE/tabler/tabler.min.js"
grep -q "\"${BOOTSTRAP_VERSION}\"" "$STAGE/tabler/tabler.min.js" \
  || echo "vendor.sh: warning: tabler.min.js does not embed bootstrap ${BOOTSTRAP_VERSION}; update BOOTSTRAP_VERSION" >&2
# The @tabler/core npm tarball ships no LICENSE file; its package.json says MIT and
# its banner carries the copyright. Compose one, plus the notices of the bundled libs.
if [[ -f "$P_TABLER/LICENSE" ]]; then
  cp "$P_TABLER/LICENSE" "$STAGE/tabler/LICENSE"
else
  [[ "$(node -p 'require(process.argv[1]).license' "$P_TABLER/package.json")" == "MIT" ]] \
    || die "@tabler/core is no longer MIT-licensed; review before vendoring"
  {
    echo "@tabler/core ${TABLER_CORE_VERSION} -- the npm tarball ships no LICENSE file."
    echo "package.json declares \"license\": \"MIT\"; upstream text: https://github.com/tabler/tabler/blob/main/LICENSE"
    echo "Copyright lines below are taken from the banner of dist/css/tabler.min.css."
    echo
    echo "MIT License"
    echo
    sed -n 's/^ \* \(Copyright .*\)$/\1/p' "$P_TABLER/dist/css/tabler.min.css" | head -n 5
    cat <<'EOF'

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
EOF
  } > "$STAGE/tabler/LICENSE"
fi
{
  echo
  echo "================================================================================"
  echo "tabler.min.js bundles bootstrap@${BOOTSTRAP_VERSION} (JS) -- its LICENSE follows:"
  echo "================================================================================"
  cat "$TMP/bootstrap/package/LICENSE"
  echo
  echo "================================================================================"
  echo "tabler.min.js bundles @popperjs/core@${POPPER_VERSION} -- its LICENSE follows:"
  echo "================================================================================"
  cat "$TMP/popper/package/LICENSE.md"
} >> "$STAGE/tabler/LICENSE"

# --- @tabler/icons-webfont ---------------------------------------------------
ICONS_CSS="$STAGE/tabler-icons/tabler-icons.min.css"
cp "$P_ICONS/dist/tabler-icons.min.css"      "$ICONS_CSS"
cp "$P_ICONS/dist/fonts/tabler-icons.woff2"  "$STAGE/tabler-icons/fonts/tabler-icons.woff2"
cp "$P_ICONS/LICENSE"                        "$STAGE/tabler-icons/LICENSE"
# Keep only the woff2 source in @font-face; drop the .woff/.ttf fallbacks we don't ship.
# The ./fonts/ relative path is kept as-is (css and fonts/ keep their relative layout).
sed -i -E \
  -e 's#,[[:space:]]*url\("?\./fonts/tabler-icons\.woff(\?[^")]*)?"?\)[[:space:]]*format\("woff"\)##g' \
  -e 's#,[[:space:]]*url\("?\./fonts/tabler-icons\.ttf(\?[^")]*)?"?\)[[:space:]]*format\("truetype"\)##g' \
  "$ICONS_CSS"
# Sanity: every url() in the css must point at the one font file we ship.
urls="$(grep -oE 'url\([^)]*\)' "$ICONS_CSS" | sort -u)"
[[ -n "$urls" ]] || die "no url() left in tabler-icons.min.css"
woff2_re='^url\("?\./fonts/tabler-icons\.woff2(\?[^")]*)?"?\)$'
while IFS= read -r u; do
  [[ "$u" =~ $woff2_re ]] \
    || die "tabler-icons.min.css still references an unshipped file: $u"
done <<< "$urls"

# --- htmx.org ----------------------------------------------------------------
cp "$P_HTMX/dist/htmx.min.js" "$STAGE/htmx/htmx.min.js"
cp "$P_HTMX/LICENSE"          "$STAGE/htmx/LICENSE"

# --- chart.js ----------------------------------------------------------------
if [[ -f "$P_CHART/dist/chart.umd.min.js" ]]; then
  cp "$P_CHART/dist/chart.umd.min.js" "$STAGE/chartjs/chart.umd.min.js"
  strip_sourcemap "$STAGE/chartjs/chart.umd.min.js"
else
  cp "$P_CHART/dist/chart.umd.js" "$STAGE/chartjs/chart.umd.js"
  strip_sourcemap "$STAGE/chartjs/chart.umd.js"
fi
cp "$P_CHART/LICENSE.md" "$STAGE/chartjs/LICENSE"

# --- swagger-ui-dist (the API docs page, served without a CDN) -------------------
P_SWAGGER="$TMP/swagger-ui/package"
cp "$P_SWAGGER/swagger-ui-bundle.js" "$P_SWAGGER/swagger-ui.css" "$STAGE/swagger-ui/"
strip_sourcemap "$STAGE/swagger-ui/swagger-ui-bundle.js"
strip_sourcemap "$STAGE/swagger-ui/swagger-ui.css"
cp "$P_SWAGGER/LICENSE" "$STAGE/swagger-ui/LICENSE"

# --- VERSIONS.txt ------------------------------------------------------------
cat > "$STAGE/VERSIONS.txt" <<EOF
@tabler/core@${TABLER_CORE_VERSION}
@tabler/icons-webfont@${TABLER_ICONS_VERSION}
htmx.org@${HTMX_VERSION}
chart.js@${CHARTJS_VERSION}
swagger-ui-dist@${SWAGGER_UI_VERSION}
EOF

# --- size check --------------------------------------------------------------
while IFS= read -r -d '' f; do
  size="$(wc -c < "$f")"
  (( size < MAX_FILE_BYTES )) || die "${f#"$STAGE"/} is ${size} bytes (limit ${MAX_FILE_BYTES})"
done < <(find "$STAGE" -type f -print0)

# --- install into DEST (only the entries this script owns) -------------------
mkdir -p "$DEST"
for entry in tabler tabler-icons htmx chartjs swagger-ui VERSIONS.txt; do
  rm -rf "${DEST:?}/${entry}"
  cp -R "$STAGE/$entry" "$DEST/$entry"
done
chmod -R u=rwX,go=rX "$DEST"

echo "vendored into ${DEST#"$REPO_ROOT"/}:" >&2
(cd "$DEST" && find tabler tabler-icons htmx chartjs VERSIONS.txt -type f | sort | xargs du -h) >&2
echo "total: $(du -sh "$DEST" | cut -f1)" >&2
