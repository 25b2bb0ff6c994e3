#!/bin/sh
# Run the TLS front whose configuration was uploaded: caddy (acme) if there is a
# Caddyfile, else nginx (internal-ca). Fails loudly if nothing usable is there.
set -eu

if [ -s /etc/caddy/Caddyfile ]; then
    exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
fi

for f in /etc/bgp4mesh/tls/cert.pem /etc/bgp4mesh/tls/key.pem; do
    if [ ! -s "$f" ]; then
        echo "tls-entrypoint: $f is missing; upload the certificate and key (or a Caddyfile for acme)" >&2
        exit 1
    fi
done
chmod 0600 /etc/bgp4mesh/tls/key.pem
nginx -t -q
exec nginx -g 'daemon off;'
