#!/usr/bin/env bash
# Runs testssl.sh (Debian's `testssl.sh` package) against a Fulcrum TLS listener on 127.0.0.1
# serving an ECDSA P-256 and an RSA 2048 certificate (as most sites do), and fails if any finding
# is rated HIGH or CRITICAL. Findings go to $OUT (default /tmp/fulcrum-testssl).
#   bench/testssl.sh            (builds the release binary if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v testssl >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh >/dev/null; }
BIN=${FULCRUM_BIN:-.build/release/fulcrum}
[ -x "$BIN" ] || swift build -c release --product fulcrum >/dev/null
OUT=${OUT:-/tmp/fulcrum-testssl}
PORT=${PORT:-18443}
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$OUT"
# a CA of the script's own and leaf certificates as a public CA issues them (90 days, with OCSP and
# CRL addresses, on loopback), so that testssl judges the TLS settings rather than a bare test
# certificate; testssl is told to trust the CA (--add-ca)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=Fulcrum testssl CA" \
  -keyout ca.key -out ca.pem 2>/dev/null
cat > leaf.ext <<EXT
subjectAltName = DNS:localhost
authorityInfoAccess = OCSP;URI:http://127.0.0.1:9/ocsp
crlDistributionPoints = URI:http://127.0.0.1:9/ca.crl
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
EXT
for kind in ecdsa rsa; do
  if [ $kind = ecdsa ]; then newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); else newkey=(-newkey rsa:2048); fi
  openssl req -new "${newkey[@]}" -nodes -subj /CN=localhost -keyout $kind.key -out $kind.csr 2>/dev/null
  openssl x509 -req -in $kind.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -extfile leaf.ext -out $kind.pem 2>/dev/null
done
cat > fulcrum.yaml <<YAML
listen:
  - address: 127.0.0.1
    port: $PORT
    tls:
      certificates: [{ cert: $OUT/ecdsa.pem, key: $OUT/ecdsa.key }, { cert: $OUT/rsa.pem, key: $OUT/rsa.key }]
      default_certificate: $OUT/ecdsa.pem
services: { demo: { nodes: [{ name: self, host: 127.0.0.1, port: 9 }] } }
default: { service: demo }
errors: { 502: { body: "ok\n" } }
YAML
cd - >/dev/null
"$BIN" serve -c "$OUT/fulcrum.yaml" >"$OUT/fulcrum.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sk -o /dev/null "https://localhost:$PORT/" && break; sleep 0.1; done
(cd "$OUT" && testssl --quiet --color 0 --warnings off --add-ca ca.pem --jsonfile findings.json --logfile findings.txt "localhost:$PORT" >/dev/null 2>&1) || true
python3 - "$OUT/findings.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL", "FATAL")]
counts = {}
for f in findings:
    counts[f.get("severity")] = counts.get(f.get("severity"), 0) + 1
print("findings by severity:", dict(sorted(counts.items())))
for f in findings:
    if f.get("severity") in ("MEDIUM", "LOW", "HIGH", "CRITICAL", "FATAL"):
        print(f"  {f['severity']:8} {f['id']}: {f['finding']}")
sys.exit(1 if bad else 0)
PY
