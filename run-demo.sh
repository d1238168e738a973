#!/usr/bin/env bash
# Set everything up and run the worker once on the embedded default: SQLite, the local
# ePUAP double serving the sample documents from demo/epuap (two mailboxes), the scan
# inbox with the sample scanned form from demo/scans, the samples' TEST trust anchors. Everything it writes goes to demo/var/. Safe to run again: documents
# already stored are recognised and not loaded twice.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e . > .venv/pip-install.log 2>&1 \
    || { cat .venv/pip-install.log >&2; exit 1; }
W=.venv/bin/ebok-worker
PORT=18089
mkdir -p demo/var demo/var/scans/inbox
# the scanned paper form: a copy into the inbox (the worker moves it to the archive; the
# committed files in demo/scans stay where they are)
cp demo/scans/*.pdf demo/scans/*.xml demo/var/scans/inbox/

"$W" epuap-double --port "$PORT" --keys demo/var/devkeys --queue-dir demo/epuap > demo/var/epuap-double.log 2>&1 &
DOUBLE=$!
trap 'kill "$DOUBLE" 2>/dev/null || true; wait "$DOUBLE" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if .venv/bin/python -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; then break; fi
    kill -0 "$DOUBLE" 2>/dev/null || { cat demo/var/epuap-double.log >&2; exit 1; }
    sleep 0.1
done

export EBOK_DEMO_KEY_PASSWORD
EBOK_DEMO_KEY_PASSWORD=$(cat demo/var/devkeys/system.key.password)
echo "== ebok-worker run --once (log: demo/var/worker.log)"
"$W" --config demo/config.toml run --once | tee demo/var/worker.log | tail -n 3
echo "== ebok-worker status"
"$W" --config demo/config.toml status
echo "== ebok_declaration"
.venv/bin/python - <<'PY'
import sqlite3
con = sqlite3.connect("demo/var/ebok.sqlite3")
print("   id  channel form       purpose status        declared  computed  signature")
for i, channel, form, purpose, status, declared, computed, sig, sig_status in con.execute(
        "select id, channel, form, purpose, status, declared_fee, computed_fee, signature, signature_status from ebok_declaration order by id"):
    print(f"  {i:3}  {channel:7} {form or '-':10} {purpose or '-':7} {status:12} {declared or 0:9.2f} {computed or 0:9.2f}  {sig} {sig_status}")
PY
PAPER=$(.venv/bin/python -c "import sqlite3; r = sqlite3.connect('demo/var/ebok.sqlite3').execute(\"select id from ebok_declaration where channel = 'PAPER' and status = 'NEEDS_REVIEW' order by id\").fetchone(); print(r[0] if r else '')")
if [ -n "$PAPER" ]; then
    echo "== ebok-worker review show $PAPER (the paper form in review: what was read, where the scan is)"
    "$W" --config demo/config.toml review show "$PAPER"
fi
echo "== ebok-worker correspondence list (outbox: demo/var/outbox)"
"$W" --config demo/config.toml correspondence list
