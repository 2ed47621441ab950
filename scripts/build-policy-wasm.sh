#!/usr/bin/env bash
# Compiles src/policy/rules.rego (plus the data shim) to src/policy/wasm/policy.wasm with the
# pinned opa. Reproducible: the same opa and the same sources give the same bytes.
#   scripts/build-policy-wasm.sh [OUTPUT]     (default: src/policy/wasm/policy.wasm)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/policy/wasm/policy.wasm}
source tools/versions.env

opa=""
if [ -x tools/bin/opa ]; then opa=tools/bin/opa
elif command -v opa >/dev/null 2>&1; then opa=$(command -v opa)
else
  echo "build-policy-wasm: opa not found (run scripts/setup.sh to build $OPA_VERSION into tools/bin)" >&2
  exit 1
fi
have=$("$opa" version | sed -n 's/^Version: //p')
if [ "v$have" != "$OPA_VERSION" ] && [ "$have" != "$OPA_VERSION" ]; then
  echo "build-policy-wasm: $opa is version $have, expected $OPA_VERSION; the output would not be reproducible" >&2
  exit 1
fi

entrypoints=()
while IFS= read -r e; do
  [ -n "$e" ] && entrypoints+=(-e "agent_policy/$e")
done < src/policy/wasm/entrypoints.txt

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The builtins are limited to those the npm SDK provides (its capabilities.json); that file
# predates Rego v1, so the language features and keywords come from this opa.
"$opa" capabilities --current > "$work/current.json"
node -e '
  const fs = require("fs");
  const sdk = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const cur = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const kw = [...new Set([...(cur.future_keywords || []), "contains", "every", "if", "in"])].sort();
  fs.writeFileSync(process.argv[3], JSON.stringify({ builtins: sdk.builtins, future_keywords: kw, features: cur.features }));
' node_modules/@open-policy-agent/opa-wasm/capabilities.json "$work/current.json" "$work/capabilities.json"
"$opa" build -t wasm "${entrypoints[@]}" \
  --capabilities "$work/capabilities.json" \
  -o "$work/bundle.tar.gz" src/policy/rules.rego src/policy/wasm/data-shim.rego
tar -xzf "$work/bundle.tar.gz" -C "$work" /policy.wasm 2>/dev/null || tar -xzf "$work/bundle.tar.gz" -C "$work" policy.wasm
mkdir -p "$(dirname "$out")"
cp "$work/policy.wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "build-policy-wasm: wrote $out ($(wc -c < "$out") bytes)" >&2
