# Shared by the bench scripts (sourced, bash): a certificate, a request body
# and a wrk script, all written into the folder given.

# bench_certificate DIR: one P-256 key and self-signed certificate for
# localhost and 127.0.0.1 (DIR/key.pem, DIR/cert.pem).
bench_certificate() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# bench_body DIR STRIDE: a 100-device request (DIR/body.json); device i has
# the key 86 followed by i * STRIDE in 13 digits.
bench_body() {
  {
    printf '{"type":2,"data":"[{\\"switch\\":true}]","qos":1,"isCache":1,"cacheTime":3600,"isCover":1,"deviceList":['
    for i in $(seq 0 99); do
      [ "$i" -gt 0 ] && printf ','
      printf '{"productKey":"p1a2b3c4","deviceKey":"86%013d"}' "$((i * $2))"
    done
    printf ']}'
  } >"$1/body.json"
}

# bench_wrk_script DIR: a wrk script POSTing DIR/body.json (DIR/post.lua).
bench_wrk_script() {
  cat >"$1/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
local f = io.open("$1/body.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA
}
