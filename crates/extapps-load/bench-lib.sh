# Helpers the benchmark scripts share; sourced, never run.

# Waits up to 10 s for something to listen on 127.0.0.1:PORT.
wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
  echo "error: nothing listens on port $1" >&2
  exit 1
}

# json_field '["a"]["b"]' < JSON: one field of a JSON document.
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# CPU clock ticks so far: a process's own, its waited-for children (the load
# generator, for the shell that runs it), and the whole machine's busy time.
own_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
children_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
hz=$(getconf CLK_TCK)

# The median of the numbers on standard input, one per line (the lower
# middle one of an even count), rounded to a whole number.
median() { sort -n | awk '{ r[NR] = $1 } END { printf "%.0f", r[int((NR + 1) / 2)] }'; }
