#!/usr/bin/env bash
# Creates the mutual-TLS material for the shared BuildKit daemon:
#
#   OUT/ca.pem, OUT/ca-key.pem     the team CA (keep ca-key.pem offline)
#   OUT/daemon/{ca,cert,key}.pem   for the Secret buildkit-daemon-certs
#   OUT/client/{ca,cert,key}.pem   for laptops and CI (buildx driver-opts)
#
# Usage: deploy/buildkit/create-certs.sh [OUT] [SAN...]
#   OUT  defaults to deploy/buildkit/.certs (git-ignored)
#   SAN  extra names or IPs clients use to reach the daemon, e.g. the node
#        address behind the NodePort: create-certs.sh .certs 192.168.1.50 build.lan
# Env:   DAYS (default 825) certificate lifetime.
#
# Clients that connect by an address not in the certificate can pass
# servername=buildkitd in their driver-opts instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/.certs}"
[[ $# -gt 0 ]] && shift
days="${DAYS:-825}"

sans="DNS:buildkitd,DNS:buildkitd.buildkit,DNS:buildkitd.buildkit.svc,DNS:buildkitd.buildkit.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
        sans+=",IP:$name"
    else
        sans+=",DNS:$name"
    fi
done

if [[ -e "$out/ca.pem" ]]; then
    echo "create-certs.sh: $out/ca.pem exists; remove $out to start over" >&2
    exit 1
fi
mkdir -p "$out/daemon" "$out/client"
umask 077
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME CN EXTENSIONS: a key and a CA-signed certificate under $out/NAME.
sign() {
    key "$out/$1/key.pem"
    openssl req -new -key "$out/$1/key.pem" -subj "/CN=$2" -out "$tmp/$1.csr"
    printf '%b\n' "$3" > "$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -days "$days" -sha256 \
        -extfile "$tmp/$1.ext" -out "$out/$1/cert.pem" 2>/dev/null
    cp "$out/ca.pem" "$out/$1/ca.pem"
}

key "$out/ca-key.pem"
openssl req -x509 -new -key "$out/ca-key.pem" -sha256 -days "$days" \
    -subj "/CN=buildkit team CA" -out "$out/ca.pem"

sign daemon buildkitd "subjectAltName=$sans\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature"
sign client "buildkit-client" "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature"

cat <<MSG
Created $out (daemon SANs: $sans).

Install the daemon's half in the cluster:
  kubectl create namespace buildkit --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n buildkit create secret generic buildkit-daemon-certs \\
    --from-file=$out/daemon/ --dry-run=client -o yaml | kubectl apply -f -

Hand $out/client/ to laptops and CI (CI: store the three files as secrets).
Keep $out/ca-key.pem offline; it signs new client certificates.
MSG
