# Sourced by bench/run.sh, bench/reference.sh and bench/floor.sh: waiting for a server, reading the
# server process and the machine, running wrk, and measuring one test into $WORK/rows.tsv. The sourcing
# script sets SRV (the server's PID), WORK, DUR, WARM and CONC, and defines `spec TEST`
# (METHOD|URL|FORM BODY|BASIC CREDENTIALS, base64).

wait_for() { # url: until it answers, for up to 10 s
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
}
machine_line() { echo "date: $(date -Is)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)  cores: $(nproc)"; }

rss() { awk '/VmRSS/{print $2}' "/proc/$SRV/status"; }
cpu() { awk '{print $14+$15}' "/proc/$SRV/stat"; }  # utime+stime ticks
machine() { awk '/^cpu /{print $9 "," $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }  # steal,total ticks

wrk_run() { # test conc seconds out
  local method url body auth; IFS='|' read -r method url body auth <<<"$(spec "$1")"
  WRK_METHOD=$method WRK_BODY=$body WRK_AUTH=$auth \
    taskset -c 1 wrk -t1 -c "$2" -d "$3s" -s bench/wrk.lua "$url" | tail -n 1 >"$4"
}

rows_header() {
  printf 'tool\ttest\tconc\treq/s(2xx)\tp50_ms\tp99_ms\tnon2xx\tserver_cpu%%\tsteal%%\trss_MB\n' >"$WORK/rows.tsv"
}

measure() { # tool test: a warm-up, then one row at c=$CONC and one at c=1 (`<tool>_run` drives the load)
  local tool=$1 t=$2 c c0 c1 w0 w1 m0 m1
  "${tool}_run" "$t" "$CONC" "$WARM" "$WORK/warm.json"
  for c in "$CONC" 1; do
    c0=$(cpu); w0=$(date +%s.%N); m0=$(machine)
    "${tool}_run" "$t" "$c" "$DUR" "$WORK/$t-$c.json"
    c1=$(cpu); w1=$(date +%s.%N); m1=$(machine)
    python3 bench/row.py "$tool" "$WORK/$t-$c.json" "$t" "$c" "$c0" "$c1" "$w0" "$w1" "$(rss)" "$m0" "$m1" >>"$WORK/rows.tsv"
  done
}
