#!/usr/bin/env bash
# README "A CI job gets a token without any secret", run as written by the
# tests: EXTAPPS_URL and EXTAPPS_KEY (an admin key) name the server, which
# allows the issuer http://127.0.0.1:$ISSUER_PORT; APP is the application and
# CLIENT_ID its client ID; `extapps`, openssl, python3 and curl are on the
# PATH. Prints the token response.
set -euo pipefail
cd "$(mktemp -d)"
issuer="http://127.0.0.1:$ISSUER_PORT"

# A stand-in for the CI provider, on loopback: an RSA key, and its discovery
# document and key set, served as files.
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out ci-key.pem 2>/dev/null
mkdir .well-known
python3 - "$issuer" <<'PY'
import base64, json, subprocess, sys
issuer = sys.argv[1]
modulus = subprocess.run(["openssl", "rsa", "-in", "ci-key.pem", "-noout", "-modulus"],
                         capture_output=True, check=True, text=True).stdout
n = base64.urlsafe_b64encode(bytes.fromhex(modulus.strip().split("=", 1)[1])).rstrip(b"=").decode()
key = {"kty": "RSA", "kid": "ci-1", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}
json.dump({"keys": [key]}, open("jwks", "w"))
json.dump({"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}, open(".well-known/openid-configuration", "w"))
PY
coproc provider {
  python3 -u -c 'import http.server as h, sys
server = h.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), h.SimpleHTTPRequestHandler)
print("listening")
server.serve_forever()' "$ISSUER_PORT" 2>/dev/null
}
trap 'kill "$provider_PID"' EXIT
read -r _ <&"${provider[0]}"

# The administrator trusts the provider's tokens for one repository's main
# branch, for the audience the job asks its token for.
extapps apps federated add "$APP" --issuer "$issuer" \
  --subject repo:acme/billing:ref:refs/heads/main --audience extapps-billing >/dev/null

# The provider hands the job a token (the stand-in signs one here)...
b64url() { basenc --base64url -w0 | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"RS256","kid":"ci-1","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"%s","sub":"repo:acme/billing:ref:refs/heads/main","aud":"extapps-billing","iat":%d,"exp":%d,"jti":"%s"}' \
  "$issuer" "$now" $((now + 300)) "$(python3 -c 'import uuid; print(uuid.uuid4())')" | b64url)
printf '%s.%s' "$header" "$claims" > signed
ci_token="$header.$claims.$(openssl dgst -sha256 -sign ci-key.pem signed | b64url)"

# ...and the job trades it for an access token: no secret anywhere.
curl -s -d grant_type=client_credentials -d client_id="$CLIENT_ID" \
  -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  -d client_assertion="$ci_token" "$EXTAPPS_URL/oauth2/token"
