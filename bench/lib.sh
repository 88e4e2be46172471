# Start-up shared by the benchmarks (run.sh, waf/run.sh): sourced, not run.
# It installs the peers, makes the work directory, writes and starts nginx,
# waits for the listeners and stops everything on exit. Nothing here
# measures.
#
# After bench_init, the caller has:
#   WORK      a fresh directory under /tmp (world-readable: nginx workers
#             read files from it)
#   PIDS      an array: processes to kill on exit (append to it)
#   PIDFILES  an array: pid files in $WORK to kill on exit (append to it)

bench_fail() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }

# bench_need CMD: CMD is on the PATH or in /usr/sbin.
bench_need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# bench_cmd CMD: the path of CMD (nginx and haproxy live in /usr/sbin,
# which is not on every PATH).
bench_cmd() { command -v "$1" || echo "/usr/sbin/$1"; }

# bench_install PKG...: install Debian packages (quietly).
bench_install() {
  echo "installing $* from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# bench_init PREFIX: raise the open-file limit, make $WORK
# (/tmp/PREFIX.XXXXXX) and stop what PIDS and PIDFILES name on exit.
bench_init() {
  ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 755 "$WORK"
  PIDS=()
  PIDFILES=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p f
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "${PIDFILES[@]}"; do
    [ -f "$WORK/$f" ] && kill "$(cat "$WORK/$f")" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# bench_nginx NAME [MAIN]: run nginx with $WORK/NAME.conf, written from
# stdin as the body of its http block (access log off, long keep-alive)
# after the main-context lines MAIN; worker_processes comes from
# NGINX_WORKERS (default 1). Its pid file is $WORK/nginx-NAME.pid, error
# log $WORK/NAME-error.log. The configuration is checked first.
bench_nginx() {
  local name=$1 main=${2:-} conf="$WORK/$1.conf"
  {
    [ -z "$main" ] || printf '%s\n' "$main"
    cat <<CONF
worker_processes ${NGINX_WORKERS:-1};
pid $WORK/nginx-$name.pid;
error_log $WORK/$name-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
CONF
    cat
    echo "}"
  } > "$conf"
  "$NGINX" -c "$conf" -t >"$WORK/$name-test.log" 2>&1 || { cat "$WORK/$name-test.log" >&2; bench_fail "nginx configuration $conf rejected"; }
  "$NGINX" -c "$conf"
  PIDFILES+=("nginx-$name.pid")
}

# bench_wait_ports PORT...: wait until each 127.0.0.1:PORT accepts (up to
# 15 s each).
bench_wait_ports() {
  local p i
  for p in "$@"; do
    for i in $(seq 1 150); do
      (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && break
      [ "$i" = 150 ] && bench_fail "nothing listens on 127.0.0.1:$p (logs in $WORK)"
      sleep 0.1
    done
  done
}

# bench_meridian_yaml DIR ORIGIN ACCESS_LOG LISTENERS [SPEC_LINE...]: write
# DIR/bench.yaml, the Meridian node configuration every benchmark serves:
# the OriginPool "backend" (ORIGIN, host:port) and the HTTPLoadBalancer
# "bench" (namespace bench, every domain) on LISTENERS (a YAML flow list),
# its access log on or off (ACCESS_LOG true|false), with SPEC_LINEs added
# to its spec (e.g. "appFirewall: crs"). More objects (a Certificate, an
# AppFirewall) go in other files of DIR: the node reads the whole folder.
bench_meridian_yaml() {
  local dir=$1 origin=$2 log=$3 listeners=$4 line
  shift 4
  mkdir -p "$dir"
  {
    cat <<CONF
apiVersion: meridian/v1
kind: OriginPool
metadata: {name: backend, namespace: bench}
spec: {endpoints: [{address: "$origin"}], maxIdleConnsPerEndpoint: 64}
---
apiVersion: meridian/v1
kind: HTTPLoadBalancer
metadata: {name: bench, namespace: bench}
spec:
  domains: ["*"]
  listeners: $listeners
  defaultPool: backend
  accessLog: {enabled: $log}
CONF
    for line in "$@"; do printf '  %s\n' "$line"; done
  } > "$dir/bench.yaml"
}

# bench_cpu_ticks PID...: the user+system clock ticks (getconf CLK_TCK per
# second) the processes have used so far; a process that is gone counts 0.
# CPU time per request does not depend on how busy the machine is, unlike
# req/s.
bench_cpu_ticks() {
  local sum=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat")
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}

# Linux puts each session in a scheduling group of its own (autogroup) and
# shares the CPUs between the groups first, whatever the processes' nice
# values. nginx and HAProxy daemonize (a session each); Meridian, started
# in the background, would share the group of this script, and so of wrk
# and vegeta, which use more CPU than any proxy: its CPU share and wake-up
# latency would depend on the load generator's. So every server and every
# generator run in a session of their own (setsid), and every one of these
# groups gets the same priority, BENCH_NICE (an autogroup nice value, -20
# to 19; default -10; empty leaves them at 0), so that other work on the
# machine (the sessions of other users) takes less from the benchmark.
# The same for every target: it changes nothing between them.
BENCH_NICE=${BENCH_NICE--10}
bench_idle_ticks() { # prints "idle total": the machine's idle (and iowait) and all CPU ticks so far
  awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t; exit}' /proc/stat
}
bench_prio() { # PID...: give each PID's scheduling group BENCH_NICE
  local p
  [ -n "$BENCH_NICE" ] || return 0
  for p in "$@"; do
    # Only a session leader's group: the group of a process that is not
    # one is its caller's (a terminal's, this script's).
    [ "$(ps -o sid= -p "$p" 2>/dev/null | tr -d ' ')" = "$p" ] || continue
    echo "$BENCH_NICE" > "/proc/$p/autogroup" 2>/dev/null || true
  done
}
# bench_gen CMD...: run a load generator in a session of its own, with the
# benchmark's priority, and wait for it.
bench_gen() {
  local p i
  setsid "$@" &
  p=$!
  for i in 1 2 3 4 5 6 7 8 9 10; do # until setsid has made the session
    [ "$(ps -o sid= -p "$p" 2>/dev/null | tr -d ' ')" != "$p" ] || break
    sleep 0.01
  done
  bench_prio "$p"
  wait "$p"
}
