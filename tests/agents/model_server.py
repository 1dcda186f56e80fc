#!/usr/bin/env python3
"""A scripted model server for testing the real `claude` and `codex` CLIs offline.

Python 3.11 standard library only. Serves on 127.0.0.1, in one process, both

* the Anthropic Messages API   `POST /v1/messages`  (SSE when the request says "stream": true,
  JSON otherwise), as `claude -p` speaks it with ANTHROPIC_BASE_URL=http://127.0.0.1:PORT, and
* the OpenAI Responses API     `POST /v1/responses` (SSE), as `codex exec` speaks it with a
  model provider whose base_url is http://127.0.0.1:PORT/v1 and wire_api = "responses".

Usage:  model_server.py [PORT]      PORT 0 or none: pick a free one.
The first line on stdout is the port (just the number), flushed; a test reads it and goes.

The script (what the "model" does), from the JSON file named by $CLUTCH_MS_SCRIPT and/or from
single environment variables (which win over the file):

    {
      "mode": "write",            # write | loop | error | slow   ($CLUTCH_MS_MODE)
      "file": "hello.txt",        # the file the agent is made to write ($CLUTCH_MS_FILE)
      "content": "hello\\n",       # its content ($CLUTCH_MS_CONTENT)
      "final": "Done.",           # the final answer text ($CLUTCH_MS_FINAL)
      "error_status": 400,        # mode error: the HTTP status returned ($CLUTCH_MS_ERROR_STATUS)
      "codex_tool": "auto",       # the Responses tool used to write: auto (the first of
                                  # shell_command, exec_command, shell, apply_patch that is
                                  # offered) or one of those names ($CLUTCH_MS_CODEX_TOOL)
      "usage": {                  # the token counts reported, per kind of answer
        "tool":  {"input_tokens": 1000, "output_tokens": 50, "cache_read": 0, "cache_write": 0},
        "final": {"input_tokens": 1200, "output_tokens": 20, "cache_read": 0, "cache_write": 0},
        "side":  {"input_tokens": 100,  "output_tokens": 5,  "cache_read": 0, "cache_write": 0}
      }                           # (+ "reasoning": N, OpenAI only: a part of output_tokens)
    }

Token semantics on the wire: Anthropic's input_tokens EXCLUDE the cache tokens (they are
cache_read_input_tokens / cache_creation_input_tokens); OpenAI's input_tokens INCLUDE them
(input_tokens_details.cached_tokens / cache_write_tokens), and output_tokens include reasoning.
So one script serves the same logical usage to both; usage.json reports what went on the wire.

Modes:
* write  - a main-conversation request with no tool result yet is answered with ONE tool call
           that writes `file` with `content` (claude: the `Write` tool with an absolute file_path
           under the "Primary working directory" named in the request; codex: `exec_command`
           with a printf, or the freeform `apply_patch` tool, see codex_tool); once the request carries the tool's
           result, the answer is the `final` text.
* loop   - every main-conversation answer is that tool call (to hit --max-turns).
* error  - every model request gets HTTP `error_status` with the provider's error JSON.
* slow   - every model request sleeps $CLUTCH_MS_SLOW_S (default 30) seconds first (timeouts).

"Side" requests (claude's without a `Write` tool, codex's without tools: titles, quota probes;
none were seen with claude 2.1.331 / codex 0.169.0) get a one-word text answer, `side` usage.

Observability, under $CLUTCH_MS_LOG_DIR (when set):
* `NNNN-<api>.json`  one per request: method, path, headers (credentials redacted), the body
                     as parsed JSON (or text), and what was answered: kind and usage; with an
                     Authorization header, `authorization_sha256`: the hex SHA-256 of its value.
* `usage.json`       totals of the usage served so far, rewritten after each answer:
                     {"anthropic": {"requests", "input_tokens", "output_tokens",
                      "cache_read_input_tokens", "cache_creation_input_tokens"},
                      "openai": {"requests", "input_tokens", "cached_tokens", "cache_write_tokens",
                      "output_tokens", "reasoning_tokens", "total_tokens"}, "other_requests": N}
`GET /_clutch/usage` answers the same totals; `POST /_clutch/stop` stops the server.

Everything else (model lists, telemetry, event logging, OAuth probes, HEAD /) gets a harmless
answer: 200 with `{}` or an empty list of the right shape, and is logged.

It stops by itself after $CLUTCH_MS_IDLE_S seconds without a request (default 120) or after
$CLUTCH_MS_MAX_S seconds in all (default 1800).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shlex
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_USAGE = {
    "tool": {"input_tokens": 1000, "output_tokens": 50, "cache_read": 0, "cache_write": 0},
    "final": {"input_tokens": 1200, "output_tokens": 20, "cache_read": 0, "cache_write": 0},
    "side": {"input_tokens": 100, "output_tokens": 5, "cache_read": 0, "cache_write": 0},
}


def load_script() -> dict:
    script: dict = {
        "mode": "write",
        "file": "hello.txt",
        "content": "hello from the model server\n",
        "final": "Done: the file is written.",
        "error_status": 400,
        "codex_tool": "auto",
        "usage": json.loads(json.dumps(DEFAULT_USAGE)),
    }
    path = os.environ.get("CLUTCH_MS_SCRIPT")
    if path:
        with open(path, encoding="utf-8") as f:
            given = json.load(f)
        usage = given.pop("usage", {})
        script.update(given)
        for kind, numbers in usage.items():
            script["usage"].setdefault(kind, {}).update(numbers)
    for key, var in [("mode", "CLUTCH_MS_MODE"), ("file", "CLUTCH_MS_FILE"),
                     ("codex_tool", "CLUTCH_MS_CODEX_TOOL"),
                     ("content", "CLUTCH_MS_CONTENT"), ("final", "CLUTCH_MS_FINAL")]:
        if var in os.environ:
            script[key] = os.environ[var]
    if "CLUTCH_MS_ERROR_STATUS" in os.environ:
        script["error_status"] = int(os.environ["CLUTCH_MS_ERROR_STATUS"])
    if script["mode"] not in ("write", "loop", "error", "slow"):
        raise SystemExit(f"model_server.py: unknown mode {script['mode']!r}")
    return script


SCRIPT = load_script()
LOG_DIR = os.environ.get("CLUTCH_MS_LOG_DIR")
IDLE_S = float(os.environ.get("CLUTCH_MS_IDLE_S", "120"))
MAX_S = float(os.environ.get("CLUTCH_MS_MAX_S", "1800"))
SLOW_S = float(os.environ.get("CLUTCH_MS_SLOW_S", "30"))

LOCK = threading.Lock()
STATE = {
    "seq": 0,
    "last": time.monotonic(),
    "totals": {
        "anthropic": {"requests": 0, "input_tokens": 0, "output_tokens": 0,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        "openai": {"requests": 0, "input_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0,
                   "reasoning_tokens": 0, "total_tokens": 0},
        "other_requests": 0,
    },
}
SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization"}


def log_request(api: str, record: dict) -> None:
    with LOCK:
        STATE["seq"] += 1
        seq = STATE["seq"]
        if api == "other":
            STATE["totals"]["other_requests"] += 1
    if LOG_DIR:
        os.makedirs(LOG_DIR, exist_ok=True)
        with open(os.path.join(LOG_DIR, f"{seq:04d}-{api}.json"), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
    write_totals()


def add_usage(api: str, usage: dict) -> None:
    with LOCK:
        t = STATE["totals"][api]
        t["requests"] += 1
        for k, v in usage.items():
            if k in t:
                t[k] += v


def write_totals() -> None:
    if not LOG_DIR:
        return
    with LOCK:
        data = json.dumps(STATE["totals"], indent=1)
        os.makedirs(LOG_DIR, exist_ok=True)
        tmp = os.path.join(LOG_DIR, ".usage.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(tmp, os.path.join(LOG_DIR, "usage.json"))


def anthropic_usage(kind: str) -> dict:
    u = SCRIPT["usage"][kind]
    return {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
            "cache_read_input_tokens": u.get("cache_read", 0),
            "cache_creation_input_tokens": u.get("cache_write", 0)}


def openai_usage(kind: str) -> dict:
    u = SCRIPT["usage"][kind]
    # In the Responses API input_tokens INCLUDES the cached (and cache-written) ones.
    inp = u["input_tokens"] + u.get("cache_read", 0) + u.get("cache_write", 0)
    details = {"cached_tokens": u.get("cache_read", 0)}
    if u.get("cache_write"):
        details["cache_write_tokens"] = u["cache_write"]
    return {"input_tokens": inp, "input_tokens_details": details,
            "output_tokens": u["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": u.get("reasoning", 0)},
            "total_tokens": inp + u["output_tokens"]}


def text_of(value) -> str:
    """All the text in a system prompt / message content, flattened."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(text_of(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(text_of(v) for k, v in value.items() if k in ("text", "content", "input"))
    return ""


# ---------------------------------------------------------------- Anthropic Messages API

def anthropic_plan(body: dict) -> tuple[str, dict | None]:
    """('tool', tool_input) | ('final', None) | ('side', None)."""
    tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    if "Write" not in tools:
        return "side", None
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    has_result = isinstance(last.get("content"), list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])
    if has_result and SCRIPT["mode"] != "loop":
        return "final", None
    name = SCRIPT["file"]
    if not os.path.isabs(name):
        m = re.search(r"(?:Primary working directory|Working directory|cwd):\s*(/[^\s<]*)",
                      text_of(body.get("system")) + "\n" + text_of(messages))
        if m:
            name = os.path.join(m.group(1), name)
    return "tool", {"file_path": name, "content": SCRIPT["content"]}


def anthropic_events(body: dict, kind: str, tool_input: dict | None):
    model = body.get("model", "claude-test")
    usage = anthropic_usage(kind)
    msg_id = "msg_" + uuid.uuid4().hex[:24]
    start_usage = dict(usage, output_tokens=1)
    yield "message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}
    yield "ping", {"type": "ping"}
    if kind == "tool":
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "text", "text": ""}}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "text_delta", "text": "I will write the file."}}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        tool_id = "toolu_" + uuid.uuid4().hex[:24]
        yield "content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": tool_id, "name": "Write", "input": {}}}
        raw = json.dumps(tool_input)
        for i in range(0, len(raw), 16):
            yield "content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
                "type": "input_json_delta", "partial_json": raw[i:i + 16]}}
        yield "content_block_stop", {"type": "content_block_stop", "index": 1}
        stop = "tool_use"
    else:
        text = SCRIPT["final"] if kind == "final" else "Title"
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "text", "text": ""}}
        for i in range(0, len(text), 8):
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "text_delta", "text": text[i:i + 8]}}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        stop = "end_turn"
    yield "message_delta", {"type": "message_delta", "delta": {
        "stop_reason": stop, "stop_sequence": None}, "usage": usage}
    yield "message_stop", {"type": "message_stop"}


def anthropic_message(body: dict, kind: str, tool_input: dict | None) -> dict:
    """The non-streaming answer, built from the same events."""
    msg: dict = {}
    blocks: list = []
    partial: dict[int, str] = {}
    for name, ev in anthropic_events(body, kind, tool_input):
        if name == "message_start":
            msg = ev["message"]
        elif name == "content_block_start":
            blocks.append(dict(ev["content_block"]))
        elif name == "content_block_delta":
            d = ev["delta"]
            if d["type"] == "text_delta":
                blocks[ev["index"]]["text"] += d["text"]
            else:
                partial[ev["index"]] = partial.get(ev["index"], "") + d["partial_json"]
        elif name == "message_delta":
            msg.update(ev["delta"])
            msg["usage"] = ev["usage"]
    for i, raw in partial.items():
        blocks[i]["input"] = json.loads(raw)
    msg["content"] = blocks
    return msg


# ---------------------------------------------------------------- OpenAI Responses API

def openai_tools(body: dict) -> dict[str, dict]:
    out = {}
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            name = t.get("name") or (t.get("function") or {}).get("name") or t.get("type")
            out[name] = t
    return out


def openai_plan(body: dict) -> tuple[str, dict | None]:
    items = body.get("input") or []
    has_result = any(isinstance(i, dict) and i.get("type", "").endswith("_call_output") for i in items)
    tools = openai_tools(body)
    if not tools:
        return "side", None
    if has_result and SCRIPT["mode"] != "loop":
        return "final", None
    name, content = SCRIPT["file"], SCRIPT["content"]
    write = f"printf '%s' {shlex.quote(content)} > {shlex.quote(name)}"
    prefer = SCRIPT.get("codex_tool", "auto")
    if prefer != "auto":
        if prefer not in tools:
            raise ValueError(f"codex_tool {prefer!r} is not offered; tools: {sorted(tools)}")
        tools = {prefer: tools[prefer]}
    if "shell_command" in tools:       # {"command": "string", "workdir"?, "timeout_ms"?}
        return "tool", {"type": "function_call", "name": "shell_command",
                        "arguments": json.dumps({"command": write})}
    if "exec_command" in tools:        # unified exec: {"cmd": "string", ...}
        return "tool", {"type": "function_call", "name": "exec_command",
                        "arguments": json.dumps({"cmd": write})}
    if "shell" in tools:               # {"command": ["bash", "-lc", "..."]}
        return "tool", {"type": "function_call", "name": "shell",
                        "arguments": json.dumps({"command": ["bash", "-lc", write]})}
    if "apply_patch" in tools:
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        patch = "*** Begin Patch\n*** Add File: " + name + "\n" + "".join(
            "+" + line + "\n" for line in lines) + "*** End Patch\n"
        t = tools["apply_patch"]
        if t.get("type") == "custom":
            return "tool", {"type": "custom_tool_call", "name": "apply_patch", "input": patch}
        return "tool", {"type": "function_call", "name": "apply_patch",
                        "arguments": json.dumps({"input": patch})}
    return "side", None


def openai_events(body: dict, kind: str, call: dict | None):
    model = body.get("model", "gpt-test")
    resp_id = "resp_" + uuid.uuid4().hex[:24]
    created = int(time.time())
    seq = iter(range(10**9))
    base = {"id": resp_id, "object": "response", "created_at": created, "model": model,
            "status": "in_progress", "output": [], "usage": None}
    yield "response.created", {"type": "response.created", "sequence_number": next(seq), "response": base}
    yield "response.in_progress", {"type": "response.in_progress", "sequence_number": next(seq), "response": base}
    output = []
    if kind == "tool" and call is not None:
        item_id = "fc_" + uuid.uuid4().hex[:24]
        call_id = "call_" + uuid.uuid4().hex[:24]
        if call["type"] == "function_call":
            item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": call["name"],
                    "arguments": "", "status": "in_progress"}
            yield "response.output_item.added", {"type": "response.output_item.added",
                                                 "sequence_number": next(seq), "output_index": 0, "item": item}
            args = call["arguments"]
            for i in range(0, len(args), 16):
                yield "response.function_call_arguments.delta", {
                    "type": "response.function_call_arguments.delta", "sequence_number": next(seq),
                    "item_id": item_id, "output_index": 0, "delta": args[i:i + 16]}
            yield "response.function_call_arguments.done", {
                "type": "response.function_call_arguments.done", "sequence_number": next(seq),
                "item_id": item_id, "output_index": 0, "arguments": args}
            done = dict(item, arguments=args, status="completed")
        else:
            item = {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": call["name"],
                    "input": "", "status": "in_progress"}
            yield "response.output_item.added", {"type": "response.output_item.added",
                                                 "sequence_number": next(seq), "output_index": 0, "item": item}
            yield "response.custom_tool_call_input.delta", {
                "type": "response.custom_tool_call_input.delta", "sequence_number": next(seq),
                "item_id": item_id, "output_index": 0, "delta": call["input"]}
            yield "response.custom_tool_call_input.done", {
                "type": "response.custom_tool_call_input.done", "sequence_number": next(seq),
                "item_id": item_id, "output_index": 0, "input": call["input"]}
            done = dict(item, input=call["input"], status="completed")
        yield "response.output_item.done", {"type": "response.output_item.done",
                                            "sequence_number": next(seq), "output_index": 0, "item": done}
        output.append(done)
    else:
        text = SCRIPT["final"] if kind == "final" else "Title"
        item_id = "msg_" + uuid.uuid4().hex[:24]
        item = {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []}
        yield "response.output_item.added", {"type": "response.output_item.added",
                                             "sequence_number": next(seq), "output_index": 0, "item": item}
        part = {"type": "output_text", "text": "", "annotations": []}
        yield "response.content_part.added", {"type": "response.content_part.added", "sequence_number": next(seq),
                                              "item_id": item_id, "output_index": 0, "content_index": 0, "part": part}
        for i in range(0, len(text), 8):
            yield "response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": next(seq),
                                                 "item_id": item_id, "output_index": 0, "content_index": 0,
                                                 "delta": text[i:i + 8]}
        yield "response.output_text.done", {"type": "response.output_text.done", "sequence_number": next(seq),
                                            "item_id": item_id, "output_index": 0, "content_index": 0, "text": text}
        part = dict(part, text=text)
        yield "response.content_part.done", {"type": "response.content_part.done", "sequence_number": next(seq),
                                             "item_id": item_id, "output_index": 0, "content_index": 0, "part": part}
        done = dict(item, status="completed", content=[part])
        yield "response.output_item.done", {"type": "response.output_item.done",
                                            "sequence_number": next(seq), "output_index": 0, "item": done}
        output.append(done)
    final = dict(base, status="completed", output=output, usage=openai_usage(kind))
    yield "response.completed", {"type": "response.completed", "sequence_number": next(seq), "response": final}


# ---------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clutch-model-server/1"

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        if os.environ.get("CLUTCH_MS_VERBOSE"):
            sys.stderr.write("model_server: " + (fmt % args) + "\n")

    # -- plumbing
    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        enc = self.headers.get("Content-Encoding", "").lower()
        try:
            if enc == "gzip":
                data = gzip.decompress(data)
            elif enc == "deflate":
                data = zlib.decompress(data)
        except Exception:  # noqa: BLE001 - keep the raw bytes
            pass
        return data

    def send_json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def sse(self, events) -> None:
        self.start_sse()
        for name, ev in events:
            self.chunk(f"event: {name}\ndata: {json.dumps(ev)}\n\n".encode())
        self.chunk(b"")

    def record(self, raw: bytes) -> dict:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in self.headers.items()}
        record = {"method": self.command, "path": self.path, "headers": headers, "body": body}
        # Which credential was sent, without keeping it: a test compares the hash.
        if self.headers.get("Authorization") is not None:
            record["authorization_sha256"] = hashlib.sha256(self.headers["Authorization"].encode()).hexdigest()
        return record

    # -- dispatch
    def handle_any(self) -> None:
        STATE["last"] = time.monotonic()
        raw = self.read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        rec = self.record(raw)
        path = self.path.split("?")[0].rstrip("/")
        body = rec["body"] if isinstance(rec["body"], dict) else {}
        try:
            if self.command == "POST" and path == "/v1/messages":
                self.anthropic(body, rec)
            elif self.command == "POST" and path in ("/v1/responses", "/responses"):
                self.openai(body, rec)
            elif path == "/_clutch/usage":
                self.send_json(200, STATE["totals"])
            elif path == "/_clutch/stop":
                self.send_json(200, {"stopping": True})
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self.other(path, rec)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as err:  # noqa: BLE001 - a broken script must show, not hang the client
            rec["answer"] = {"kind": "server_error", "error": repr(err)}
            log_request("other", rec)
            sys.stderr.write(f"model_server: {self.command} {self.path}: {err!r}\n")
            try:
                self.send_json(500, {"type": "error", "error": {"type": "api_error", "message": repr(err)}})
            except OSError:
                pass
        STATE["last"] = time.monotonic()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

    def model_error(self, api: str, rec: dict) -> bool:
        mode = SCRIPT["mode"]
        if mode == "slow":
            time.sleep(SLOW_S)
            return False
        if mode != "error":
            return False
        status = int(SCRIPT["error_status"])
        rec["answer"] = {"kind": "error", "status": status}
        log_request(api, rec)
        if api == "anthropic":
            etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
            self.send_json(status, {"type": "error", "error": {"type": etype, "message": f"scripted error {status}"}})
        else:
            self.send_json(status, {"error": {"message": f"scripted error {status}", "type": "invalid_request_error",
                                              "param": None, "code": None}})
        return True

    def anthropic(self, body: dict, rec: dict) -> None:
        if self.model_error("anthropic", rec):
            return
        kind, tool_input = anthropic_plan(body)
        usage = anthropic_usage(kind)
        rec["answer"] = {"kind": kind, "tool_input": tool_input, "usage": usage}
        add_usage("anthropic", usage)
        log_request("anthropic", rec)
        if body.get("stream"):
            self.sse(anthropic_events(body, kind, tool_input))
        else:
            self.send_json(200, anthropic_message(body, kind, tool_input))

    def openai(self, body: dict, rec: dict) -> None:
        if self.model_error("openai", rec):
            return
        kind, call = openai_plan(body)
        usage = openai_usage(kind)
        rec["answer"] = {"kind": kind, "call": call, "usage": usage}
        add_usage("openai", {"input_tokens": usage["input_tokens"],
                             "cached_tokens": usage["input_tokens_details"]["cached_tokens"],
                             "cache_write_tokens": usage["input_tokens_details"].get("cache_write_tokens", 0),
                             "output_tokens": usage["output_tokens"],
                             "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"],
                             "total_tokens": usage["total_tokens"]})
        log_request("openai", rec)
        self.sse(openai_events(body, kind, call))

    def other(self, path: str, rec: dict) -> None:
        log_request("other", rec)
        if path.endswith("/models"):
            # Both shapes: OpenAI's list ("data") and codex's own ("models").
            self.send_json(200, {"object": "list", "data": [], "models": [], "has_more": False})
        elif path.endswith("/count_tokens"):
            self.send_json(200, {"input_tokens": 100})
        else:
            self.send_json(200, {})


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    started = time.monotonic()

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            if now - STATE["last"] > IDLE_S or now - started > MAX_S:
                server.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    write_totals()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
