#!/usr/bin/env bash
# Sets everything up, starts a local reference receiver, and streams the
# example job (examples/build_job.py) through the agent to it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup.sh"
python="$root/.venv/bin/python"
work="$root/quickstart"
mkdir -p "$work"
db="$work/receiver.db"
rm -f "$db" "$db-wal" "$db-shm"  # each quickstart shows its own run
state="$work/state"  # the task's spool: a task id resumes where it left off, so start afresh
rm -rf "$state"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$python" -m keruta_actors receiver --port "$port" --db "$db" > "$work/receiver.log" 2>&1 &
receiver=$!
trap 'kill "$receiver" 2>/dev/null; wait "$receiver" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "listening" "$work/receiver.log" 2>/dev/null && break
    sleep 0.1
done

echo "== streaming examples/build_job.py as task 'quickstart' to the receiver on 127.0.0.1:$port"
status=0
KERUTA_WEBSOCKET_URL="ws://127.0.0.1:$port/ws/tasks" KERUTA_API_URL="http://127.0.0.1:$port/api/v1" \
    KERUTA_LOGSTREAMING__STATEDIR="$state" KERUTA_LOGGING__FORMAT=text KERUTA_LOGGING__OUTPUT=stderr \
    "$python" -m keruta_actors start --task-id quickstart -- "$python" "$root/examples/build_job.py" || status=$?
echo "== the agent exited with $status (the job's own exit code)"
echo "== what the receiver stored (the 'password' line was filtered out):"
"$python" - "$db" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT source, line_number, level, message FROM logs WHERE task_id = 'quickstart' ORDER BY timestamp, source, line_number")
for source, number, level, message in rows:
    print(f"  {source:<6} #{number:<3} {level:<5} {message}")
PY
echo "== the logs are in $db (SQLite, table 'logs'); the receiver's own log is $work/receiver.log"
echo "== live viewer: http://127.0.0.1:$port/tasks/quickstart (all tasks: http://127.0.0.1:$port/)"
if [ -t 0 ]; then
    echo "== the receiver keeps running for the viewer; press Ctrl-C to stop it"
    wait "$receiver" || true
fi
exit "$status"
