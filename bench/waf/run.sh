#!/usr/bin/env bash
# WAF benchmark (issue 5, "Performance"): nginx + libmodsecurity 3 against
# Meridian's AppFirewall, both running the OWASP CRS version that Meridian
# embeds (coraza-coreruleset, taken from the Go module cache) at paranoia
# level 1 in blocking mode (anomaly thresholds 5 inbound / 4 outbound), in
# front of one nginx backend. A third target, Meridian without a WAF, gives
# the WAF-on/WAF-off ratio. Before measuring, every WAF must block a SQL
# injection (403) and pass the benign requests (200). wrk runs in
# interleaved rounds; medians, p99 and ratios go to stdout and to $RESULTS
# (results.md beside this script unless set).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BENCH_NAME=wafbench
# shellcheck source=../lib.sh
. ../lib.sh
RESULTS=${RESULTS:-$PWD/results.md}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
# MERIDIAN_GOGC, when set, is the GOGC of both Meridian processes (the Go
# default, 100, otherwise): the compiled CRS is a ~30 MB live heap that
# every garbage collection marks again.
MERIDIAN_GOGC=${MERIDIAN_GOGC:-}
bench_init meridian-wafbench
fail() { bench_fail "$@"; }

MODSEC_SO=/usr/share/nginx/modules/ngx_http_modsecurity_module.so
if ! bench_need nginx || ! bench_need wrk || ! bench_need curl || [ ! -f "$MODSEC_SO" ]; then
  bench_install nginx libnginx-mod-http-modsecurity wrk curl
fi
NGINX=$(bench_cmd nginx)
[ -f "$MODSEC_SO" ] || fail "$MODSEC_SO missing after install"
UNICODE_MAP=/etc/nginx/unicode.mapping
[ -f "$UNICODE_MAP" ] || fail "$UNICODE_MAP missing (it comes with libnginx-mod-http-modsecurity)"

# The CRS Meridian embeds: the coraza-coreruleset module that go.mod pins.
CRS_MOD=$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/corazawaf/coraza-coreruleset/v4)
CRS_VER=$(cd "$ROOT" && go list -m -f '{{.Version}}' github.com/corazawaf/coraza-coreruleset/v4)
[ -d "$CRS_MOD/rules/@owasp_crs" ] || fail "no CRS rules in $CRS_MOD (run: go mod download github.com/corazawaf/coraza-coreruleset/v4)"
echo "CRS from $CRS_MOD ($CRS_VER)"

echo "building meridian"
( cd "$ROOT" && go build -o "$WORK/meridian" ./cmd/meridian )

# ModSecurity: a copy of the CRS rules. libmodsecurity 3.0.9 needs a blank
# line before each directive (the module's copy lost the blank lines that
# end chained rules); the rules themselves are unchanged.
mkdir -p "$WORK/crs"
cp "$CRS_MOD"/rules/@owasp_crs/* "$WORK/crs/"
chmod -R u+w "$WORK/crs"
for f in "$WORK"/crs/*.conf; do sed -i 's/^\(Sec[A-Za-z]*\) /\n\1 /' "$f"; done
sed 's/^\(Sec[A-Za-z]*\) /\n\1 /' "$CRS_MOD/rules/@crs-setup.conf.example" > "$WORK/crs-setup.conf"
cat > "$WORK/modsecurity.conf" <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 131072
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"

SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"

SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"

SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"

SecResponseBodyAccess Off
SecUnicodeMapFile $UNICODE_MAP 20127
SecAuditEngine Off
SecDebugLogLevel 0

Include $WORK/crs-setup.conf

SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=1"

SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=5,setvar:tx.outbound_anomaly_score_threshold=4"

Include $WORK/crs/*.conf
CONF

# Backend: nginx, one worker, a fixed 19-byte answer to every method.
bench_nginx backend <<CONF
  server {
    listen 127.0.0.1:19000;
    location / { default_type text/plain; return 200 "xxxxxxxxxxxxxxxxxxx"; }
  }
CONF

# nginx + ModSecurity: 2 workers, upstream keep-alive, as the data-plane bench.
NGINX_WORKERS=2 bench_nginx waf "load_module $MODSEC_SO;" <<CONF
  client_body_buffer_size 128k;
  upstream backend { server 127.0.0.1:19000; keepalive 64; }
  server {
    listen 127.0.0.1:19080;
    modsecurity on;
    modsecurity_rules_file $WORK/modsecurity.conf;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
CONF

# Meridian: the same load balancer with and without the AppFirewall.
mkcfg() { # dir port waf(true|false)
  local spec=()
  mkdir -p "$1"
  if [ "$3" = true ]; then
    spec=("appFirewall: crs")
    cat > "$1/waf.yaml" <<CONF
apiVersion: meridian/v1
kind: AppFirewall
metadata: {name: crs, namespace: bench}
spec:
  mode: block
  paranoiaLevel: 1
  anomalyThreshold: {inbound: 5, outbound: 4}
CONF
  fi
  bench_meridian_yaml "$1" 127.0.0.1:19000 false "[{port: $2, address: 127.0.0.1}]" "${spec[@]}"
}
mkcfg "$WORK/meridian-waf" 19082 true
mkcfg "$WORK/meridian-nowaf" 19083 false
GCENV=(); [ -n "$MERIDIAN_GOGC" ] && GCENV=(GOGC="$MERIDIAN_GOGC")
declare -A PROCS
env "${GCENV[@]}" GOMAXPROCS=2 setsid "$WORK/meridian" node --config "$WORK/meridian-waf" --admin "" >"$WORK/meridian-waf.out" 2>"$WORK/meridian-waf.log" &
PIDS+=($!)
PROCS[meridian-waf]=$!
env "${GCENV[@]}" GOMAXPROCS=2 setsid "$WORK/meridian" node --config "$WORK/meridian-nowaf" --admin "" >"$WORK/meridian-nowaf.out" 2>"$WORK/meridian-nowaf.log" &
PIDS+=($!)
PROCS[meridian-nowaf]=$!
bench_wait_ports 19000 19080 19082 19083
# Each server in a scheduling group of its own, all with one priority, as
# wrk below (bench_prio, bench_gen in lib.sh): Meridian started from here
# would otherwise share this script's group, and so wrk's.
bench_prio "$(cat "$WORK/nginx-backend.pid")" "$(cat "$WORK/nginx-waf.pid")" "${PROCS[meridian-waf]}" "${PROCS[meridian-nowaf]}"

declare -A PORT=([nginx-modsec]=19080 [meridian-waf]=19082 [meridian-nowaf]=19083)
# The CPU time of each proxy (nginx: master and workers) per request.
NGINX_PID=$(cat "$WORK/nginx-waf.pid")
PROCS[nginx-modsec]="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
TICK=$(getconf CLK_TCK)
TARGETS=(nginx-modsec meridian-waf meridian-nowaf)
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
ACCEPT="text/html,application/xhtml+xml,application/xml;q=0.9,application/json;q=0.8,*/*;q=0.7"
# A browser sends the site's name: with wrk's default (127.0.0.1:port) every
# request matches CRS 920350 (numeric Host, PL1, score 3: logged, not blocked)
# and is no longer a benign request for either WAF.
HOST=${HOST:-api.example.com}

# The benign JSON body: an object of 40 string fields of ordinary English
# words, 2048 bytes; and the wrk scripts for both requests.
python3 - "$WORK" "$UA" "$ACCEPT" "$HOST" <<'PY'
import json, sys
work, ua, accept, host = sys.argv[1:5]
words = ("garden river morning window yellow quiet table bright summer forest "
         "little market happy winter orange gentle street music island cloud "
         "pencil letter simple warm kitchen coffee mountain travel friend paper "
         "evening silver basket flower holiday picture village autumn meadow ocean").split()
keys = ("name city country color animal fruit season hobby sport book "
        "movie song food drink flower tree bird river mountain street "
        "school teacher friend family garden house room window door table "
        "chair lamp clock phone camera bicycle train boat plane market").split()
assert len(keys) == 40
fields, i = {}, 0
for k in keys:
    fields[k] = " ".join(words[(i + j) % len(words)] for j in range(6)); i += 7
body = json.dumps(fields, separators=(",", ":"))
# pad the last value with more words up to exactly 2048 bytes
k = keys[-1]
while len(body) < 2048:
    fields[k] += " " + words[len(fields[k]) % len(words)]
    body = json.dumps(fields, separators=(",", ":"))
while len(body) > 2048:
    fields[k] = fields[k][:-1].rstrip()
    body = json.dumps(fields, separators=(",", ":"))
if len(body) < 2048:
    fields[k] += "s" * (2048 - len(body))
    body = json.dumps(fields, separators=(",", ":"))
assert len(body) == 2048 and "]]" not in body, len(body)
open(f"{work}/body.json", "w").write(body)
open(f"{work}/post.lua", "w").write(f"""wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "{ua}"
wrk.headers["Accept"] = "{accept}"
wrk.headers["Host"] = "{host}"
""")
PY

# Every target must pass the benign requests and (WAFs) block the attacks.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: $HOST" -H "User-Agent: $UA" -H "Accept: $ACCEPT" "$@" || true; }
for t in "${TARGETS[@]}"; do
  base="http://127.0.0.1:${PORT[$t]}"
  got=$(code "$base/api/users?id=42&name=alice")
  [ "$got" = 200 ] || fail "$t: benign GET answered $got, want 200"
  got=$(code -X POST -H "Content-Type: application/json" --data-binary "@$WORK/body.json" "$base/api/users")
  [ "$got" = 200 ] || fail "$t: benign 2 KiB JSON POST answered $got, want 200"
  want=403; [ "$t" = meridian-nowaf ] && want=200
  got=$(code "$base/api/users?id=1%27%20OR%201%3D1--")
  [ "$got" = "$want" ] || fail "$t: GET ?id=1' OR 1=1-- answered $got, want $want"
  got=$(code -X POST -H "Content-Type: application/json" --data-binary '{"id":"1'"'"' OR 1=1--","name":"alice"}' "$base/api/users")
  [ "$got" = "$want" ] || fail "$t: JSON POST with id 1' OR 1=1-- answered $got, want $want"
  echo "$t: benign GET 200, benign JSON POST 200, SQL injection in query and JSON body $want"
done

RES="$WORK/results.txt"
: > "$RES"
# run_wrk target case: prints "rps p99ms non2xx errors cpu-us-per-request"
run_wrk() {
  local t=$1 c=$2 base="http://127.0.0.1:${PORT[$1]}" args=() before after
  case $c in
    get) args=(-H "Host: $HOST" -H "User-Agent: $UA" -H "Accept: $ACCEPT" "$base/api/users?id=42&name=alice") ;;
    post) args=(-s "$WORK/post.lua" "$base/api/users") ;;
  esac
  # shellcheck disable=SC2086
  before=$(bench_cpu_ticks ${PROCS[$t]:-})
  bench_gen wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 10s --latency "${args[@]}" 2>/dev/null > "$WORK/wrk.out"
  # shellcheck disable=SC2086
  after=$(bench_cpu_ticks ${PROCS[$t]:-})
  tee -a "$WORK/wrk-$t-$c.txt" < "$WORK/wrk.out" | awk -v ticks=$((after - before)) -v hz="$TICK" '
    /requests in/ {n=$1}
    /Requests\/sec/ {rps=$2}
    /Non-2xx/ {non=$NF}
    /Socket errors/ {gsub(/,/,""); err=$4+$6+$8+$10}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
    END {printf "%s %s %d %d %.1f\n", rps+0, p99+0, non+0, err+0, (n > 0 ? ticks / hz * 1e6 / n : 0)}'
}

echo "warming up"
for t in "${TARGETS[@]}"; do DURATION=2s run_wrk "$t" get >/dev/null; DURATION=2s run_wrk "$t" post >/dev/null; done
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  for c in get post; do
    for t in "${TARGETS[@]}"; do
      line="$round $c $t $(run_wrk "$t" "$c")"
      echo "  $line"
      echo "$line" >> "$RES"
    done
  done
done

REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
( cd "$ROOT" && git diff --quiet HEAD -- internal/waf internal/dataplane internal/node/security.go 2>/dev/null ) || REV="$REV + uncommitted changes"
python3 - "$RES" "$ROUNDS" "$DURATION" "$CONNS" "$CRS_VER" "$REV" "${MERIDIAN_GOGC:-100 (default)}" <<'PY' | tee "$RESULTS"
import collections, os, statistics, sys
path, rounds, duration, conns, crs, rev, gogc = sys.argv[1:8]
rows = collections.defaultdict(lambda: ([], [], [], [], []))
for line in open(path):
    _, case, t, rps, p99, non, err, cpu = line.split()
    for i, v in enumerate((rps, p99, non, err, cpu)):
        rows[(case, t)][i].append(float(v))
med = lambda c, t, i: statistics.median(rows[(c, t)][i])
names = {"get": "GET /api/users?id=42&name=alice", "post": "POST 2 KiB JSON (40 fields)"}
print("# WAF benchmark: Meridian AppFirewall vs nginx + ModSecurity\n")
print(f"OWASP CRS {crs.lstrip('v')} (coraza-coreruleset) at paranoia level 1, blocking, anomaly thresholds 5/4; "
      f"{rounds} interleaved rounds of {duration} per case, medians; wrk -t1 -c{conns} --timeout 10s; "
      f"{os.cpu_count()} CPUs shared by wrk, the nginx backend and the proxy. Both WAFs were first "
      "checked to answer 403 to `?id=1' OR 1=1--` (query and JSON body) and 200 to the benign requests. "
      f"Load average when the run ended: {os.getloadavg()[0]:.1f}. Meridian built from {rev}, GOGC {gogc}.\n")
print("| request | target | req/s | p99 ms | CPU µs/request | non-2xx | socket errors |")
print("|---|---|---|---|---|---|---|")
for c in ("get", "post"):
    for t in ("nginx-modsec", "meridian-waf", "meridian-nowaf"):
        if (c, t) not in rows: continue
        cpu = med(c, t, 4)
        print(f"| {names[c]} | {t} | {med(c,t,0):,.0f} | {med(c,t,1):.2f} | {f'{cpu:.1f}' if cpu else '-'} | "
              f"{sum(rows[(c,t)][2]):.0f} | {sum(rows[(c,t)][3]):.0f} |")
print("\n| ratio | ratio of medians | median of per-round ratios | goal | met (ratio of medians) |")
print("|---|---|---|---|---|")
# per-round ratios: each pair of runs was measured back to back, so their
# median is less sensitive to load drifting across the run.
rounds_of = collections.defaultdict(dict)
for line in open(path):
    rnd, case, t, rps = line.split()[:4]
    rounds_of[(case, rnd)][t] = float(rps)
def round_ratio(c, a, b):
    rs = [v[a] / v[b] for (cc, _), v in rounds_of.items() if cc == c and a in v and b in v and v[b] > 0]
    return statistics.median(rs) if rs else 0
def ratio(label, c, a, b, goal, p99=False):
    r = med(c, a, 0) / med(c, b, 0) if med(c, b, 0) else 0
    rr = round_ratio(c, a, b)
    if goal is None:
        print(f"| {label} | {r:.2f}x | {rr:.2f}x | - | - |")
        return
    ok = r >= goal
    extra = ""
    if p99:
        lower = med(c, a, 1) < med(c, b, 1)
        ok = ok and lower
        extra = f", p99 {med(c,a,1):.2f} vs {med(c,b,1):.2f} ms"
    print(f"| {label} | {r:.2f}x{extra} | {rr:.2f}x | >= {goal:.2f}x{' with lower p99' if p99 else ''} | {'yes' if ok else 'no'} |")
ratio("GET: Meridian WAF vs nginx+ModSecurity", "get", "meridian-waf", "nginx-modsec", 2.0, p99=True)
ratio("JSON POST: Meridian WAF vs nginx+ModSecurity", "post", "meridian-waf", "nginx-modsec", 1.0)
ratio("GET: Meridian WAF-on vs WAF-off", "get", "meridian-waf", "meridian-nowaf", 0.25)
ratio("JSON POST: Meridian WAF-on vs WAF-off", "post", "meridian-waf", "meridian-nowaf", None)
PY
bad=$(awk '$6 > 0 || $7 > 0' "$RES" | wc -l)
[ "$bad" = 0 ] || echo "warning: $bad runs had non-2xx answers or socket errors (raw: $RES)" >&2
echo "raw results: $RES; wrk outputs: $WORK/wrk-*.txt"
# Security events of Meridian's WAF during the run: the two attack checks
# above are blocked; a benign request that matched a rule would add one.
events=$(grep -c '"kind":"waf"' "$WORK/meridian-waf.log" || true)
echo "Security events logged by Meridian's WAF during the run: $events (the two attack checks: 2)." | tee -a "$RESULTS"
