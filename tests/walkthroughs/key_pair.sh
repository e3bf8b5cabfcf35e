#!/usr/bin/env bash
# README "A service authenticates with a key pair", run as written by the
# tests: EXTAPPS_URL and EXTAPPS_KEY (an admin key) name the server, APP the
# application, CLIENT_ID its client ID and SECRET_ID its secret; `extapps`,
# openssl and python3 are on the PATH. Prints the token response.
set -euo pipefail
cd "$(mktemp -d)"

# The application makes a key pair and keeps the private key; the JWK of the
# public half goes to the administrator.
openssl genpkey -algorithm ed25519 -out app-key.pem
python3 - <<'PY' > app-key.jwk
import base64, json, subprocess
der = subprocess.run(["openssl", "pkey", "-in", "app-key.pem", "-pubout", "-outform", "DER"],
                     capture_output=True, check=True).stdout
x = base64.urlsafe_b64encode(der[-32:]).rstrip(b"=").decode()
print(json.dumps({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "app-2026"}))
PY

# The administrator registers the public key, then deletes the shared secret.
extapps apps keys add "$APP" --jwk-file app-key.jwk --description "billing service" >/dev/null
extapps apps secrets delete "$APP" "$SECRET_ID" >/dev/null

# For each token request, the application signs a JWT that lives a minute.
b64url() { basenc --base64url -w0 | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"EdDSA","kid":"app-2026"}' | b64url)
claims=$(printf '{"iss":"%s","sub":"%s","aud":"%s/oauth2/token","iat":%d,"exp":%d,"jti":"%s"}' \
  "$CLIENT_ID" "$CLIENT_ID" "$EXTAPPS_URL" "$now" $((now + 60)) "$(python3 -c 'import uuid; print(uuid.uuid4())')" | b64url)
printf '%s.%s' "$header" "$claims" > signed
signature=$(openssl pkeyutl -sign -inkey app-key.pem -rawin -in signed | b64url)
curl -s -d grant_type=client_credentials \
  -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
  -d client_assertion="$header.$claims.$signature" "$EXTAPPS_URL/oauth2/token"
