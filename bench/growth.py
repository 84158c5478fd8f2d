#!/usr/bin/env python3
"""How much an unauthenticated caller can make the server store: N authorization requests (no session,
so each would park a pending request) with the largest parameters the server accepts, then the
database's growth. Standard library only.

    bench/growth.py --bin target/debug/latchkey [-n 10000] [--rotate] [--state-bytes 2048]

--rotate sends each request from another address (X-Forwarded-For behind one trusted proxy hop;
an old binary that trusted the leftmost entry is started with LATCHKEY_TRUST_FORWARDED_FOR=true).
Prints one line: requests, answers by status, pending rows, their bytes, database bytes before/after.
"""

import argparse
import collections
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def db_bytes(data_dir):
    """The database's size on disk after a checkpoint (the WAL folded into the file)."""
    db = sqlite3.connect(os.path.join(data_dir, "latchkey.db"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir) if f.startswith("latchkey.db"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--rotate", action="store_true")
    parser.add_argument("--old-forwarding", action="store_true", help="the binary predates trusted_proxy_hops")
    parser.add_argument("--state-bytes", type=int, default=8000)
    parser.add_argument("--nonce-bytes", type=int, default=8000)
    parser.add_argument("--hint-bytes", type=int, default=8000)
    args = parser.parse_args()

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="latchkey-growth-")
    env = dict(os.environ, LATCHKEY_LISTEN=f"127.0.0.1:{port}", LATCHKEY_PUBLIC_URL=f"http://localhost:{port}",
               LATCHKEY_DATA_DIR=data_dir, LATCHKEY_LOG="error")
    env.pop("LATCHKEY_CONFIG", None)
    if args.rotate:
        if args.old_forwarding:
            env["LATCHKEY_TRUST_FORWARDED_FOR"] = "true"
        else:
            env["LATCHKEY_TRUSTED_PROXY_HOPS"] = "1"
    server = subprocess.Popen([args.bin, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        created = subprocess.run([args.bin, "client", "create", "--json", "--name", "growth", "--redirect-uri", "http://127.0.0.1:9/cb"],
                                 env=env, check=True, capture_output=True, text=True)
        client_id = json.loads(created.stdout)["client_id"]
        before = db_bytes(data_dir)
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
            "state": "s" * args.state_bytes, "nonce": "n" * args.nonce_bytes, "login_hint": "h" * args.hint_bytes,
        })
        statuses = collections.Counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(args.n):
            headers = {}
            if args.rotate:
                headers["X-Forwarded-For"] = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            conn.request("GET", f"/t/default/authorize?{query}", headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
            if response.getheader("connection", "").lower() == "close":
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        time.sleep(1)
        db = sqlite3.connect(os.path.join(data_dir, "latchkey.db"))
        rows, params = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(params)), 0) FROM authorization_requests").fetchone()
        db.close()
        after = db_bytes(data_dir)
        answers = " ".join(f"{status}:{count}" for status, count in sorted(statuses.items()))
        print(f"requests={args.n} rotate={args.rotate} answers=[{answers}] pending_rows={rows} pending_bytes={params} "
              f"db_before={before} db_after={after} growth={after - before}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
