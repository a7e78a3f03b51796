#!/usr/bin/env bash
# Makes a throwaway certificate authority and a server certificate it signed for localhost and
# 127.0.0.1, for the wss tests and benchmarks: DIR/ca.pem (what a client trusts), DIR/cert.pem
# and DIR/key.pem (what the server presents), DIR/spki.txt (the certificate's public-key hash,
# base64 SHA-256, as Chromium's --ignore-certificate-errors-spki-list takes it). Made fresh on
# every run, so no private key is ever committed. Installs openssl if it is missing.
#
#   scripts/test-ca.sh DIR
set -euo pipefail

dir=${1:?usage: $0 DIR}
if ! command -v openssl >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends openssl
fi
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" 2>/dev/null; }
# P-256 keys: what rustls's ring provider and every browser take, and quick to make.
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=ws test CA" -keyout ca-key.pem -out ca.pem \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-subj "/CN=localhost" -keyout key.pem -out server.csr
cat >server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
	-extfile server.ext -out cert.pem
openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64 >spki.txt
rm -f server.csr server.ext ca.srl
