#!/usr/bin/env bash
# Benchmarks Meridian's data plane against nginx and HAProxy on loopback,
# as issue 3 describes: one nginx backend, three proxies with equivalent
# configurations (keep-alive to the backend, access logs off), wrk against
# each in interleaved rounds, medians and ratios to nginx. Results go to
# stdout and to $RESULTS (results.md beside this script unless set).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
BENCH_NAME=bench
# shellcheck source=lib.sh
. ./lib.sh
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
RATE=${RATE:-10000}
# The fixed-rate case runs RATE_ROUNDS rounds (after the saturation cases'
# ROUNDS, the rounds beyond them have the fixed rate only): a p99 at a
# moderate rate moves more from run to run than requests/s at saturation
# (nginx's own by up to 4x between two 3-second runs; 8 alternating runs of
# nginx and the node measured 0.30-1.43 ms and 0.37-1.01 ms).
RATE_ROUNDS=${RATE_ROUNDS:-9}
case $RATE_ROUNDS in ''|*[!0-9]*) echo "RATE_ROUNDS: '$RATE_ROUNDS', want a count of rounds" >&2; exit 2 ;; esac
# The fixed-rate case's generator: rategen (bench/rategen, the default) or
# vegeta (RATE_GEN=vegeta); see the README's "Fixed rate".
RATE_GEN=${RATE_GEN:-rategen}
case $RATE_GEN in rategen|vegeta) ;; *) echo "RATE_GEN: '$RATE_GEN', want rategen or vegeta" >&2; exit 2 ;; esac
RATE_CONNS=${RATE_CONNS:-64}
RESULTS=${RESULTS:-$PWD/results.md}
# One run at a time on the machine: the runs share fixed ports and, worse,
# the CPUs; a second run waits for the first instead of failing to bind or
# skewing both.
exec 9>/tmp/meridian-bench.lock
flock -n 9 || { echo "waiting for another bench run (/tmp/meridian-bench.lock)"; flock 9; }
bench_init meridian-bench  # $WORK: nginx workers (www-data) read the bodies from it
# Every server and generator runs in a scheduling group of its own with
# the same priority (bench_prio, bench_gen in lib.sh).
BIN="$WORK/bin"
mkdir -p "$BIN"
ONLY_RATE=${ONLY_RATE:-}

if ! bench_need nginx || ! bench_need haproxy || ! bench_need wrk || ! bench_need openssl; then
  bench_install nginx haproxy wrk openssl
fi
NGINX=$(bench_cmd nginx)
HAPROXY=$(bench_cmd haproxy)

echo "building meridian and $RATE_GEN"
if ( cd "$ROOT" && go build -o "$BIN/meridian" ./cmd/meridian ) 2>/dev/null && "$BIN/meridian" node --help >/dev/null 2>&1; then
  MERIDIAN=("$BIN/meridian" node)
else
  ( cd "$ROOT" && go build -o "$BIN/nodebench" ./bench/nodebench )
  MERIDIAN=("$BIN/nodebench")
fi
# The bare event-loop proxy of bench/nodebench (one origin, no
# configuration) stays available as the targets meridian-evloop(-raw).
( cd "$ROOT" && go build -o "$BIN/nodebench" ./bench/nodebench )
if [ "$RATE_GEN" = vegeta ]; then
  GOBIN="$BIN" go install github.com/tsenart/vegeta/v12@v12.13.0 >/dev/null 2>&1 || echo "vegeta unavailable: fixed-rate case skipped"
else
  ( cd "$ROOT" && go build -o "$BIN/rategen" ./bench/rategen )
fi

# ECDSA P-256 certificate, as in the reference figures.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/haproxy.pem"
head -c 19 /dev/zero | tr '\0' 'x' > "$WORK/small"; echo -n "" >> "$WORK/small"
head -c 16384 /dev/zero | tr '\0' 'y' > "$WORK/16k"

# Backend: nginx, one worker, fixed bodies.
bench_nginx backend <<CONF
  server {
    listen 127.0.0.1:18000;
    location = / { root $WORK; try_files /small =404; default_type text/plain; }
    location = /16k { root $WORK; try_files /16k =404; default_type text/plain; }
  }
CONF

# nginx proxy: 2 workers, upstream keepalive 64.
NGINX_WORKERS=2 bench_nginx proxy <<CONF
  upstream backend { server 127.0.0.1:18000; keepalive 64; }
  server {
    listen 127.0.0.1:18080;
    listen 127.0.0.1:18443 ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    # nginx 1.22 offers only TLS 1.2 by default (1.23.4+ adds 1.3); HAProxy
    # and Meridian negotiate TLS 1.3 with wrk, so nginx must too, or the
    # HTTPS cases compare different handshakes. Session tickets are on
    # (the default) in all three.
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
CONF

# HAProxy: 2 threads, connection reuse.
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:18081
  bind 127.0.0.1:18444 ssl crt $WORK/haproxy.pem
  default_backend be
backend be
  server s1 127.0.0.1:18000 maxconn 1000
CONF
"$HAPROXY" -f "$WORK/haproxy.cfg" -D -p "$WORK/haproxy.pid"
PIDS+=("$(cat "$WORK/haproxy.pid")")

# Meridian: same shape; a second node with its access log on.
mkcfg() { # dir http-port https-port log
  mkdir -p "$1"
  cat > "$1/cert.yaml" <<CONF
apiVersion: meridian/v1
kind: Certificate
metadata: {name: cert, namespace: bench}
spec:
  certificate: |
$(sed 's/^/    /' "$WORK/cert.pem")
  privateKey: |
$(sed 's/^/    /' "$WORK/key.pem")
CONF
  bench_meridian_yaml "$1" 127.0.0.1:18000 "$4" \
    "[{port: $2, address: 127.0.0.1}, {port: $3, address: 127.0.0.1, tls: {certificateRef: cert}, http2: false}]"
}
mkcfg "$WORK/meridian" 18082 18445 false
mkcfg "$WORK/meridian-log" 18083 18446 true
mkcfg "$WORK/meridian-goroutine" 18086 18447 false
mkcfg "$WORK/meridian-kw" 18087 18448 false
mkcfg "$WORK/meridian-alt" 18088 18449 false
# The nodes run with the runtime's defaults (GOMAXPROCS: the CPU count)
# unless MERIDIAN_GOMAXPROCS is set.
NODE_ENV=(env)
[ -z "${MERIDIAN_GOMAXPROCS:-}" ] || NODE_ENV=(env "GOMAXPROCS=$MERIDIAN_GOMAXPROCS")
"${NODE_ENV[@]}" setsid "${MERIDIAN[@]}" --config "$WORK/meridian" --admin 127.0.0.1:18901 >/dev/null 2>"$WORK/meridian.log" &
PIDS+=($!)
declare -A PROCS=([meridian]=$!)
"${NODE_ENV[@]}" setsid "${MERIDIAN[@]}" --config "$WORK/meridian-log" --admin 127.0.0.1:18902 >"$WORK/access.log" 2>"$WORK/meridian-log.log" &
PIDS+=($!)
PROCS[meridian-log]=$!
GOMAXPROCS=2 setsid "$BIN/nodebench" --evloop-listen 127.0.0.1:18084 --evloop-origin 127.0.0.1:18000 2>"$WORK/meridian-evloop.log" &
PIDS+=($!)
PROCS[meridian-evloop]=$!
# The same node with the goroutine-per-connection HTTP/1.1 engine
# (`--http1-engine goroutine`; the event loop is the default): only
# `meridian node` has the option, so the target is left out when the node
# does not build.
if [ "${MERIDIAN[0]}" = "$BIN/meridian" ]; then
  "${NODE_ENV[@]}" setsid "${MERIDIAN[@]}" --config "$WORK/meridian-goroutine" --admin 127.0.0.1:18903 --http1-engine goroutine >/dev/null 2>"$WORK/meridian-goroutine.log" &
  PIDS+=($!)
  PROCS[meridian-goroutine]=$!
  NODE_GOROUTINE=meridian-goroutine
  # meridian-kw (when named in TARGETS): the node with one P more than
  # CPUs, so its loops (one per CPU) wait in epoll_wait and the kernel
  # wakes each loop's thread itself (evloop.Config.KernelWait), as it
  # wakes nginx's workers, instead of parking in Go's network poller.
  GOMAXPROCS=$(( $(nproc) + 1 )) setsid "${MERIDIAN[@]}" --config "$WORK/meridian-kw" --admin 127.0.0.1:18904 >/dev/null 2>"$WORK/meridian-kw.log" &
  PIDS+=($!)
  PROCS[meridian-kw]=$!
else
  NODE_GOROUTINE=
fi
# meridian-alt (when MERIDIAN_ALT names another build of meridian, e.g.
# one of a change under test): the same node from that binary, for an A/B
# of two builds measured in the same rounds (MERIDIAN_ALT_GOMAXPROCS sets
# its GOMAXPROCS).
if [ -n "${MERIDIAN_ALT:-}" ]; then
  [ -x "$MERIDIAN_ALT" ] || bench_fail "MERIDIAN_ALT: $MERIDIAN_ALT is not an executable"
  ALT_ENV=("${NODE_ENV[@]}")
  [ -z "${MERIDIAN_ALT_GOMAXPROCS:-}" ] || ALT_ENV=(env "GOMAXPROCS=$MERIDIAN_ALT_GOMAXPROCS")
  "${ALT_ENV[@]}" setsid "$MERIDIAN_ALT" node --config "$WORK/meridian-alt" --admin 127.0.0.1:18905 >/dev/null 2>"$WORK/meridian-alt.log" &
  PIDS+=($!)
  PROCS[meridian-alt]=$!
fi
# The same with idle loops waiting in epoll_wait without giving up their P.
GOMAXPROCS=2 setsid "$BIN/nodebench" --evloop-listen 127.0.0.1:18085 --evloop-origin 127.0.0.1:18000 --evloop-rawblock 2>"$WORK/meridian-evloop-raw.log" &
PIDS+=($!)
PROCS[meridian-evloop-raw]=$!
# shellcheck disable=SC2086
bench_wait_ports 18000 18080 18081 18082 18083 18084 18085 18443 18444 18445 18446 ${NODE_GOROUTINE:+18086 18447 18087 18448} ${MERIDIAN_ALT:+18088 18449}
bench_prio "$(cat "$WORK/haproxy.pid")" "$(cat "$WORK/nginx-backend.pid")" "$(cat "$WORK/nginx-proxy.pid")" "${PROCS[@]}"

declare -A PORT=([nginx]=18080 [haproxy]=18081 [meridian]=18082 [meridian-log]=18083 [meridian-evloop]=18084 [meridian-evloop-raw]=18085 [meridian-goroutine]=18086 [meridian-kw]=18087 [meridian-alt]=18088)
declare -A TLSPORT=([nginx]=18443 [haproxy]=18444 [meridian]=18445 [meridian-log]=18446 [meridian-goroutine]=18447 [meridian-kw]=18448 [meridian-alt]=18449)
# The nodebench event-loop spikes (meridian-evloop, meridian-evloop-raw) run
# when named in TARGETS.
read -r -a TARGETS <<< "${TARGETS:-nginx haproxy meridian meridian-log $NODE_GOROUTINE}"
chmod 644 "$WORK/small" "$WORK/16k"

# Every target must answer 200 with the right bodies before anything is
# measured.
for t in "${TARGETS[@]}"; do
  urls=("http://127.0.0.1:${PORT[$t]}/" "http://127.0.0.1:${PORT[$t]}/16k")
  [ -n "${TLSPORT[$t]:-}" ] && urls+=("https://127.0.0.1:${TLSPORT[$t]}/")
  for u in "${urls[@]}"; do
    got=$(curl -sk -o /dev/null -w '%{http_code} %{size_download}' "$u" || true)
    case "$u" in */16k) want="200 16384" ;; *) want="200 19" ;; esac
    if [ "$got" != "$want" ]; then echo "$t: $u answered '$got', want '$want'" >&2; exit 1; fi
  done
done
# The HTTPS peers must do the same handshake: print what each negotiates
# and whether it resumes a session (wrk resumes with tickets when offered).
for t in "${TARGETS[@]}"; do
  [ -n "${TLSPORT[$t]:-}" ] || continue
  req=$'GET / HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n'
  first=$(printf '%s' "$req" | openssl s_client -connect "127.0.0.1:${TLSPORT[$t]}" -servername bench.test -sess_out "$WORK/sess-$t" -ign_eof 2>/dev/null | grep -E '^(New|Reused),' | head -1)
  again=$(printf '%s' "$req" | openssl s_client -connect "127.0.0.1:${TLSPORT[$t]}" -servername bench.test -sess_in "$WORK/sess-$t" -ign_eof 2>/dev/null | grep -E '^(New|Reused),' | head -1)
  echo "$t TLS: $first; second connection: ${again%%,*}"
done
# CPU time each proxy spends per request (user+system, all its processes
# or threads) does not depend on how busy the machine is, unlike req/s.
PROCS[nginx]="$(cat "$WORK/nginx-proxy.pid") $(pgrep -P "$(cat "$WORK/nginx-proxy.pid")" | tr '\n' ' ')"
PROCS[haproxy]=$(cat "$WORK/haproxy.pid")
TICK=$(getconf CLK_TCK)
for t in "${TARGETS[@]}"; do
  read -r p _ <<< "${PROCS[$t]}"
  echo "$t scheduling group: $(cat "/proc/$p/autogroup" 2>/dev/null || echo none)"
done
read -r -a CASES <<< "${CASES:-small 16k https close https-close}"
RES="$WORK/results.txt"
: > "$RES"

# wrk: prints "rps p99ms proxyCPUus/req idle%" (idle%: the share of the
# machine's CPU time nobody used while wrk ran; a proxy that keeps its
# clients waiting with CPUs idle shows here rather than in its CPU/req)
run_wrk() { # target case
  local t=$1 c=$2 url conns=64 hdr=()
  case $c in
    small) url="http://127.0.0.1:${PORT[$t]}/" ;;
    16k) url="http://127.0.0.1:${PORT[$t]}/16k" ;;
    https) url="https://127.0.0.1:${TLSPORT[$t]}/" ;;
    close) url="http://127.0.0.1:${PORT[$t]}/"; conns=16; hdr=(-H "Connection: close") ;;
    https-close) url="https://127.0.0.1:${TLSPORT[$t]}/"; conns=16; hdr=(-H "Connection: close") ;;
  esac
  local before after idle0 idle1
  # shellcheck disable=SC2086
  before=$(bench_cpu_ticks ${PROCS[$t]:-})
  idle0=$(bench_idle_ticks)
  bench_gen wrk -t1 -c"$conns" -d"$DURATION" --latency "${hdr[@]}" "$url" 2>/dev/null > "$WORK/wrk.out"
  # shellcheck disable=SC2086
  after=$(bench_cpu_ticks ${PROCS[$t]:-})
  idle1=$(bench_idle_ticks)
  awk -v ticks=$((after - before)) -v hz="$TICK" -v i0="$idle0" -v i1="$idle1" '
    /requests in/ {n=$1}
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    END {split(i0, a); split(i1, b); tot = b[2] - a[2]
      printf "%s %s %.1f %.1f\n", rps+0, p99+0, (n > 0 ? ticks / hz * 1e6 / n : 0), (tot > 0 ? 100 * (b[1] - a[1]) / tot : 0)}' "$WORK/wrk.out"
}

# The generator (RATE_GEN) at a fixed rate. A round's DURATION per target is cut into
# RATE_SLICES slices (default 5, so 1 s of a 5 s round), run in turn for
# each target and in the reverse order every other slice (nginx, meridian,
# meridian, nginx, ...): a change of load on the machine that lasts a few
# seconds then falls on every target alike rather than on one. A target's
# figures for the round are those of all its slices together: the p99 of
# the round's DURATION of requests, as with one run.
RATE_SLICES=${RATE_SLICES:-5}
declare -A RATE_TICKS
rate_slice() { # target round slice duration-ms
  local t=$1 r=$2 s=$3 d=$4 before after
  [ -x "$BIN/$RATE_GEN" ] || return 0
  # shellcheck disable=SC2086
  before=$(bench_cpu_ticks ${PROCS[$t]:-})
  if [ "$RATE_GEN" = rategen ]; then
    # Its connections are up before the first request is due; each slice's
    # result (-out) keeps the whole distribution for rate_report to merge.
    bench_gen "$BIN/rategen" -url "http://127.0.0.1:${PORT[$t]}/" -rate "$RATE" -duration "${d}ms" -conns "$RATE_CONNS" \
      -out "$WORK/rategen-$t-$r-$s.res" > "$WORK/rategen-$t-$r-$s.txt" 2>>"$WORK/rategen-$t.err" || true
  else
    echo "GET http://127.0.0.1:${PORT[$t]}/" > "$WORK/vegeta-$t.targets"
    { TIMEFORMAT='%U %S'; time bench_gen "$BIN/vegeta" attack -targets="$WORK/vegeta-$t.targets" -rate="$RATE" -duration="${d}ms" \
      -keepalive=true -max-connections=256 2>>"$WORK/vegeta-$t.err" > "$WORK/vegeta-$t-$r-$s.bin"; } 2>> "$WORK/vegeta-$t-$r.cpu" || true
  fi
  # shellcheck disable=SC2086
  after=$(bench_cpu_ticks ${PROCS[$t]:-})
  RATE_TICKS[$t]=$(( ${RATE_TICKS[$t]:-0} + after - before ))
}

# rate_report target round: prints "rate p99ms proxyCPUus/req p50ms p90ms
# maxms generatorCPUus/req [p99.9ms sendlagp99ms errors fromsendp99ms]" for the round's
# slices together; the whole distribution goes to $WORK/RATE_GEN-TARGET.txt
# (vegeta's with a histogram), with the generator's own CPU per request (it
# shares the CPUs with the backend and the proxy).
rate_report() {
  local t=$1 r=$2 f
  if [ "$RATE_GEN" = rategen ]; then
    local res=("$WORK/rategen-$t-$r-"*.res)
    [ -e "${res[0]}" ] || { echo "0 0"; return; }
    { echo "round $r ($RATE_SLICES slices)"; "$BIN/rategen" -merge "${res[@]}"; } >> "$WORK/rategen-$t.txt"
    # rategen's CPU is its own (getrusage) over the requests it sent; the
    # rate is the responses over the slices' spans.
    "$BIN/rategen" -merge "${res[@]}" | python3 -c 'import sys
kv=dict(f.split("=", 1) for l in sys.stdin if l.startswith("rategen ") for f in l.split()[1:])
n=max(int(kv["sent"]), 1)
print(kv["achieved_rps"], kv["p99_ms"], "%.1f" % (int(sys.argv[1])/int(sys.argv[2])*1e6/n), kv["p50_ms"], kv["p90_ms"], kv["max_ms"],
      kv["cpu_us_per_req"], kv["p999_ms"], kv["lag_p99_ms"], int(kv["errors"]) + int(kv["non2xx"]), kv["from_send_p99_ms"])' "${RATE_TICKS[$t]:-0}" "$TICK"
    return
  fi
  local bins=("$WORK/vegeta-$t-$r-"*.bin)
  [ -e "${bins[0]}" ] || { echo "0 0"; return; }
  {
    echo "round $r ($RATE_SLICES slices)"
    "$BIN/vegeta" report "${bins[@]}"
    "$BIN/vegeta" report -type='hist[0,100us,200us,300us,500us,1ms,2ms,5ms,10ms,20ms,50ms]' "${bins[@]}"
    echo "vegeta CPU (user sys, s, per slice): $(tr '\n' ' ' < "$WORK/vegeta-$t-$r.cpu")"
  } >> "$WORK/vegeta-$t.txt"
  # The merged report's own rate would count the other targets' slices as
  # time: the rate is the slices' successful requests over their durations.
  for f in "${bins[@]}"; do "$BIN/vegeta" report -type=json "$f"; echo; done > "$WORK/vegeta-$t-$r.slices"
  "$BIN/vegeta" report -type=json "${bins[@]}" \
    | python3 -c 'import json,sys
r=json.load(sys.stdin); l=r["latencies"]; n=max(r["requests"], 1)
sl=[json.loads(x) for x in open(sys.argv[3]) if x.strip()]
ok=sum(x["requests"]*x["success"] for x in sl); secs=sum((x["duration"]+x["wait"])/1e9 for x in sl)
cpu=sum(float(v) for line in open(sys.argv[4]) for v in line.split())
print("%.0f" % (ok/secs if secs else 0), l["99th"]/1e6, "%.1f" % (int(sys.argv[1])/int(sys.argv[2])*1e6/n), l["50th"]/1e6, l["90th"]/1e6, l["max"]/1e6, "%.1f" % (cpu*1e6/n))' \
      "${RATE_TICKS[$t]:-0}" "$TICK" "$WORK/vegeta-$t-$r.slices" "$WORK/vegeta-$t-$r.cpu"
}
# The slice length in milliseconds (DURATION as vegeta and wrk take it:
# 5s, 500ms, 1m).
SLICE_MS=$(python3 -c 'import re,sys
m=re.fullmatch(r"([0-9.]+)(ms|s|m)", sys.argv[1]); assert m, "DURATION: want e.g. 5s, 500ms or 1m, not " + sys.argv[1]
print(max(1, int(float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000}[m.group(2)] / int(sys.argv[2]))))' "$DURATION" "$RATE_SLICES")

echo "warming up"
for t in "${TARGETS[@]}"; do
  run_wrk "$t" small >/dev/null
  [ -z "${TLSPORT[$t]:-}" ] || run_wrk "$t" https >/dev/null
done

LAST_ROUND=$ROUNDS
[ "$RATE" = 0 ] || [ "$RATE_ROUNDS" -le "$ROUNDS" ] || LAST_ROUND=$RATE_ROUNDS
for round in $(seq 1 "$LAST_ROUND"); do
  echo "round $round/$LAST_ROUND"
  for c in "${CASES[@]}"; do
    [ -n "$ONLY_RATE" ] || [ "$round" -gt "$ROUNDS" ] && break
    for t in "${TARGETS[@]}"; do
      case $c in https*) [ -n "${TLSPORT[$t]:-}" ] || continue ;; esac
      echo "$round $c $t $(run_wrk "$t" "$c")" >> "$RES"
    done
  done
  [ "$RATE" = 0 ] && continue  # RATE=0 skips the fixed-rate case
  [ "$round" -gt "$RATE_ROUNDS" ] && continue
  for s in $(seq 1 "$RATE_SLICES"); do
    order=("${TARGETS[@]}")
    if [ $((s % 2)) = 0 ]; then
      order=(); for t in "${TARGETS[@]}"; do order=("$t" "${order[@]}"); done
    fi
    for t in "${order[@]}"; do rate_slice "$t" "$round" "$s" "$SLICE_MS"; done
  done
  for t in "${TARGETS[@]}"; do
    echo "$round rate-$RATE $t $(rate_report "$t" "$round")" >> "$RES"
  done
  RATE_TICKS=()
done

RATE_GEN=$RATE_GEN RATE_ROUNDS=$RATE_ROUNDS python3 - "$RES" "$ROUNDS" "$DURATION" <<'PY' | tee "$RESULTS"
import statistics, sys, collections, os
path, rounds, duration = sys.argv[1], sys.argv[2], sys.argv[3]
rows = collections.defaultdict(lambda: ([], [], [], []))
per_round = collections.defaultdict(dict)  # (case, round) -> target -> (rps, p99)
dist = collections.defaultdict(list)  # (case, target) -> [p50, p90, max, generator CPU, p99, p99.9, send lag p99, errors, p99 from the send] per round
for line in open(path):
    parts = line.split()
    r, case, target, rps, p99 = parts[:5]
    cpu = float(parts[5]) if len(parts) > 5 else 0.0
    rows[(case, target)][0].append(float(rps)); rows[(case, target)][1].append(float(p99))
    rows[(case, target)][2].append(cpu)
    if len(parts) == 7:  # saturation: the machine's idle share
        rows[(case, target)][3].append(float(parts[6]))
    per_round[(case, r)][target] = (float(rps), float(p99), cpu)
    if len(parts) > 9:  # fixed rate: p50 p90 max, generator CPU (then rategen's p99.9, send lag p99, errors, p99 from the send)
        extra = [float(x) for x in parts[10:14]] if len(parts) > 13 else [float("nan")] * 4
        dist[(case, target)].append([float(x) for x in parts[6:10]] + [float(p99)] + extra)
cases = []
for (c, _) in rows:
    if c not in cases: cases.append(c)
def round_ratios(c, t, i):
    out = []
    for (case, r), m in per_round.items():
        if case == c and t in m and "nginx" in m and m["nginx"][i] > 0:
            out.append(m[t][i] / m["nginx"][i])
    return out
print(f"# Meridian data-plane benchmark\n\n{rounds} interleaved rounds of {duration} per case (the fixed rate: {os.environ['RATE_ROUNDS']}), medians; "
      f"wrk -t1 (64 connections, 16 for new-connection cases); {os.cpu_count()} CPUs shared by wrk, backend and proxy. "
      f"The last two columns are the medians of the per-round ratios (each target against nginx measured in the same round, seconds before), "
      f"which hold up better than the ratio of medians when the machine is busy. CPU is the proxy's user+system "
      f"CPU time per request (all its processes/threads), which does not depend on how busy the machine is; "
      f"idle is the share of the machine's CPU time nobody used while the target was measured.\n")
print("| case | target | req/s | p99 ms | req/s vs nginx | p99 vs nginx | per-round req/s ratio | per-round p99 ratio | CPU µs/req | CPU vs nginx | idle % |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for c in cases:
    base = rows.get((c, "nginx"))
    brps = statistics.median(base[0]) if base else 0
    bp99 = statistics.median(base[1]) if base else 0
    for t in ["nginx", "haproxy", "meridian", "meridian-log", "meridian-goroutine", "meridian-kw", "meridian-alt", "meridian-evloop", "meridian-evloop-raw"]:
        if (c, t) not in rows: continue
        rps = statistics.median(rows[(c, t)][0]); p99 = statistics.median(rows[(c, t)][1])
        rr = f"{rps/brps:.2f}x" if brps else "-"
        pr = f"{p99/bp99:.2f}x" if bp99 else "-"
        q = round_ratios(c, t, 0); w = round_ratios(c, t, 1)
        qr = f"{statistics.median(q):.2f}x" if q else "-"
        wr = f"{statistics.median(w):.2f}x" if w else "-"
        cpu = statistics.median(rows[(c, t)][2]); bcpu = statistics.median(base[2]) if base else 0
        cs = f"{cpu:.1f}" if cpu else "-"
        cr = f"{cpu/bcpu:.2f}x" if cpu and bcpu else "-"
        idle = f"{statistics.median(rows[(c, t)][3]):.1f}" if rows[(c, t)][3] else "-"
        print(f"| {c} | {t} | {rps:,.0f} | {p99:.2f} | {rr} | {pr} | {qr} | {wr} | {cs} | {cr} | {idle} |")
if dist:
    gen = os.environ.get("RATE_GEN", "vegeta")
    print(f"\nFixed rate ({gen}), the whole distribution (medians over the rounds; the p99 of each round in brackets) and "
          "the generator's own CPU per request" + (" (rategen: latency from each request's intended send time; "
          "send lag: how late the generator sent; from send: latency from the actual send, as a closed-loop client would measure; "
          "errors: failed requests and non-2xx answers, all rounds)" if gen == "rategen" else "") + ":\n")
    print("| case | target | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | generator CPU µs/req | send lag p99 ms | p99 from send ms | errors | p99 of each round |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda x, f: "-" if x != x else f % x  # NaN: vegeta has no such figure
    for (c, t), v in dist.items():
        med = [statistics.median(x[i] for x in v) for i in range(9)]
        errs = sum(x[7] for x in v)
        each = " ".join(f"{x[4]:.2f}" for x in v)
        print(f"| {c} | {t} | {med[0]:.2f} | {med[1]:.2f} | {med[4]:.2f} | {fmt(med[5], '%.2f')} | {med[2]:.2f} | {med[3]:.1f} | "
              f"{fmt(med[6], '%.3f')} | {fmt(med[8], '%.2f')} | {fmt(errs, '%.0f')} | {each} |")
PY
# The fixed rate's p99 of all rounds' requests together (rategen's
# distributions merged), beside the median of the rounds' p99s.
if [ "$RATE" != 0 ] && [ "$RATE_GEN" = rategen ]; then
  python3 ./combine.py --pooled "$WORK" | tee -a "$RESULTS"
fi
echo "raw results: $RES; $RATE_GEN reports: $WORK/$RATE_GEN-*.txt"
