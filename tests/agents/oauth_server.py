#!/usr/bin/env python3
"""A loopback OAuth 2.0 issuer for testing `git clutch auth codex` and codex's token refresh.

Python 3 standard library only. Serves on 127.0.0.1 the endpoints "Sign in with ChatGPT"
uses (openai/codex codex-rs/login/src/server.rs, auth/manager.rs):

* GET  /oauth/authorize   checks response_type=code, client_id, redirect_uri
                          (http://localhost:<port>/auth/callback), scope (openid,
                          offline_access), code_challenge_method=S256, a code_challenge and a
                          state; keeps the challenge with a fresh one-time code, and answers 302
                          to redirect_uri?code=...&state=... as if the user had signed in.
* POST /oauth/token       grant_type=authorization_code (form): the code, redirect_uri and
                          client_id must be the authorize request's, and base64url(SHA-256(
                          code_verifier)) its code_challenge, else 400 invalid_grant. Answers
                          id_token, access_token, refresh_token.
                          grant_type=urn:ietf:params:oauth:grant-type:token-exchange (form):
                          the id_token for an API key (requested_token=openai-api-key).
                          grant_type=refresh_token (JSON, as codex sends it): the refresh token
                          issued last, for new access and refresh tokens.

Usage: oauth_server.py [PORT] --log FILE --access-token T --refresh-token T --id-token-sig T
                       [--api-key K] [--refreshed-access-token T --refreshed-refresh-token T]
                       [--account-id A] [--email E] [--access-ttl-s N]
                       [--wrong-state] [--break-challenge]

The token values come from the test (argv), so they carry the prefix tests/scan_secrets.py
looks for. The id_token and access token are JWTs (alg "none") whose signature part is the
value given, so the value appears verbatim in the token; the access token's `exp` is now +
--access-ttl-s (default 3600; negative: already expired, which makes codex refresh it).
--wrong-state sends the browser back with another state; --break-challenge keeps a challenge
no verifier matches (the token endpoint then refuses the code).

The first line on stdout is the port. Each request appends one JSON line to the log: the
endpoint, what was checked (booleans), and the outcome; token values are never logged.
It stops after $CLUTCH_OAUTH_IDLE_S seconds without a request (default 120).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import os

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"

LOCK = threading.Lock()
STATE = {"last": time.monotonic(), "codes": {}, "refresh": None, "id_token": None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict, signature: str) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("port", nargs="?", type=int, default=0)
    p.add_argument("--log", required=True)
    p.add_argument("--access-token", required=True)
    p.add_argument("--refresh-token", required=True)
    p.add_argument("--id-token-sig", required=True)
    p.add_argument("--api-key")
    p.add_argument("--refreshed-access-token")
    p.add_argument("--refreshed-refresh-token")
    p.add_argument("--account-id", default="acct-clutch-test")
    p.add_argument("--email", default="jo@example.com")
    p.add_argument("--access-ttl-s", type=int, default=3600)
    p.add_argument("--wrong-state", action="store_true")
    p.add_argument("--break-challenge", action="store_true")
    return p.parse_args()


ARGS = parse_args()


def log(record: dict) -> None:
    with LOCK:
        with open(ARGS.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clutch-oauth-server/1"

    def log_message(self, fmt, *args):  # quiet: the log file is the record
        pass

    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, record: dict, error: str, description: str) -> None:
        record.update(outcome=400, error=error)
        log(record)
        self.send(400, {"error": error, "error_description": description})

    def do_GET(self) -> None:
        STATE["last"] = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/oauth/authorize":
            log({"endpoint": url.path, "outcome": 404})
            self.send(404, {"error": "not_found"})
            return
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        redirect = urllib.parse.urlsplit(q.get("redirect_uri", ""))
        scopes = q.get("scope", "").split()
        checks = {
            "response_type": q.get("response_type") == "code",
            "client_id": q.get("client_id") == CLIENT_ID,
            "redirect_uri": redirect.scheme == "http" and redirect.hostname == "localhost"
            and redirect.port is not None and redirect.path == "/auth/callback" and not redirect.query,
            "scope": "openid" in scopes and "offline_access" in scopes,
            "code_challenge_method": q.get("code_challenge_method") == "S256",
            "code_challenge": len(q.get("code_challenge", "")) == 43,
            "state": bool(q.get("state")),
        }
        record = {"endpoint": "authorize", "checks": checks,
                  "params": sorted(q.keys())}
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            self.refuse(record, "invalid_request", "bad " + ", ".join(failed))
            return
        code = secrets.token_urlsafe(24)
        challenge = q["code_challenge"]
        if ARGS.break_challenge:
            challenge = b64url(hashlib.sha256(b"not the verifier").digest())
        with LOCK:
            STATE["codes"][code] = {"challenge": challenge, "redirect_uri": q["redirect_uri"], "client_id": q["client_id"]}
        state = q["state"] + "-tampered" if ARGS.wrong_state else q["state"]
        location = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": state})
        record.update(outcome=302)
        log(record)
        self.send(302, None, {"Location": location})

    def do_POST(self) -> None:
        STATE["last"] = time.monotonic()
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path != "/oauth/token":
            log({"endpoint": url.path, "outcome": 404})
            self.send(404, {"error": "not_found"})
            return
        if self.headers.get("Content-Type", "").startswith("application/json"):
            try:
                form = {k: str(v) for k, v in json.loads(raw or b"{}").items()}
            except ValueError:
                form = {}
            encoding = "json"
        else:
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            encoding = "form"
        grant = form.get("grant_type", "")
        record = {"endpoint": "token", "grant_type": grant, "encoding": encoding}
        if grant == "authorization_code":
            self.authorization_code(form, record)
        elif grant == "urn:ietf:params:oauth:grant-type:token-exchange":
            self.token_exchange(form, record)
        elif grant == "refresh_token":
            self.refresh(form, record)
        else:
            self.refuse(record, "unsupported_grant_type", f"grant_type {grant!r}")

    def tokens(self, access: str, refresh: str) -> dict:
        now = int(time.time())
        auth = {"chatgpt_account_id": ARGS.account_id, "chatgpt_plan_type": "plus", "chatgpt_user_id": "user-clutch-test"}
        id_token = jwt({"iss": self.issuer(), "aud": CLIENT_ID, "sub": "user-clutch-test", "email": ARGS.email,
                        "iat": now, "exp": now + 3600, "https://api.openai.com/auth": auth}, ARGS.id_token_sig)
        access_token = jwt({"iss": self.issuer(), "exp": now + ARGS.access_ttl_s if access == ARGS.access_token else now + 3600,
                            "https://api.openai.com/auth": auth}, access)
        with LOCK:
            STATE["refresh"] = refresh
            STATE["id_token"] = id_token
        return {"id_token": id_token, "access_token": access_token, "refresh_token": refresh,
                "token_type": "Bearer", "expires_in": 3600}

    def authorization_code(self, form: dict, record: dict) -> None:
        with LOCK:
            issued = STATE["codes"].pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        checks = {
            "code": issued is not None,
            "redirect_uri": issued is not None and form.get("redirect_uri") == issued["redirect_uri"],
            "client_id": form.get("client_id") == CLIENT_ID and issued is not None and issued["client_id"] == CLIENT_ID,
            "code_verifier_length": 43 <= len(verifier) <= 128,
            "verifier_matches_challenge": issued is not None
            and b64url(hashlib.sha256(verifier.encode()).digest()) == issued["challenge"],
        }
        record["checks"] = checks
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            self.refuse(record, "invalid_grant", "bad " + ", ".join(failed))
            return
        record.update(outcome=200)
        log(record)
        self.send(200, self.tokens(ARGS.access_token, ARGS.refresh_token))

    def token_exchange(self, form: dict, record: dict) -> None:
        checks = {
            "client_id": form.get("client_id") == CLIENT_ID,
            "requested_token": form.get("requested_token") == "openai-api-key",
            "subject_token": STATE["id_token"] is not None and form.get("subject_token") == STATE["id_token"],
            "subject_token_type": form.get("subject_token_type") == "urn:ietf:params:oauth:token-type:id_token",
            "api_key_configured": bool(ARGS.api_key),
        }
        record["checks"] = checks
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            self.refuse(record, "invalid_request", "bad " + ", ".join(failed))
            return
        record.update(outcome=200)
        log(record)
        self.send(200, {"access_token": ARGS.api_key, "token_type": "Bearer",
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})

    def refresh(self, form: dict, record: dict) -> None:
        checks = {
            "client_id": form.get("client_id") == CLIENT_ID,
            "refresh_token": STATE["refresh"] is not None and form.get("refresh_token") == STATE["refresh"],
            "refreshed_tokens_configured": bool(ARGS.refreshed_access_token and ARGS.refreshed_refresh_token),
        }
        record["checks"] = checks
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            self.refuse(record, "invalid_grant", "bad " + ", ".join(failed))
            return
        record.update(outcome=200)
        log(record)
        self.send(200, self.tokens(ARGS.refreshed_access_token, ARGS.refreshed_refresh_token))


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    idle = float(os.environ.get("CLUTCH_OAUTH_IDLE_S", "120"))

    def watchdog() -> None:
        while time.monotonic() - STATE["last"] < idle:
            time.sleep(0.5)
        server.shutdown()

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
