#!/usr/bin/env python3
"""An A2A agent for testing clutch's `http` runtime, built on the real `a2a-sdk` server.

Requires `a2a-sdk[http-server]` and `uvicorn` (tests/requirements.txt). The agent card, the
JSON-RPC endpoint, task storage and state handling are the SDK's own (`DefaultRequestHandler`,
`InMemoryTaskStore`, `create_agent_card_routes`, `create_jsonrpc_routes`, `TaskUpdater`); only
the AgentExecutor below is ours. The endpoint speaks A2A 1.0 (`SendMessage`, `GetTask`,
`CancelTask` with the `A2A-Version: 1.0` header) and, with --v03, also 0.3 (`message/send`,
`tasks/get`, `tasks/cancel`) on the same URL, with a card that advertises 0.3.

Usage:  a2a_server.py --mode MODE --log FILE [--v03]
The first line on stdout is the port (127.0.0.1, picked by the system), flushed.
With $A2A_TEST_TOKEN set, every JSON-RPC request must carry `Authorization: Bearer <token>`,
else 401 (the card stays public, as A2A cards are: they say how to authenticate). Each request
is appended to the log as one JSON line: method, path, headers without Authorization, whether
a bearer token came and matched ("ok", "wrong", "missing"), and the body.

What the agent does with a message (`metadata["clutch/purpose"]` says work or review):
* work    - a review gets the message "APPROVE …" (a Message, no task); work goes submitted →
            working → an artifact `hello.txt` (raw bytes, filename) and `notes/readme.md`
            (text part with a filename, also in its metadata for 0.3) → completed, with the message "Wrote hello.txt." whose
            metadata carries `clutch/cost` {input_tokens: 1200, output_tokens: 80, usd_micros: 4200}
* fail    - working → failed, message "cannot build: no compiler here"
* hang    - working, then nothing until cancelled (CancelTask makes it canceled)
* hostile - completed with an artifact whose filename is "../escaped.txt"
* input   - working → input-required, message "which branch?"
* symlink - completed with an artifact "out/pwned.txt" (for a checkout where `out` is a link)

`GET /bogus-card.json` answers JSON that is no agent card, for the tests of a bad card.

It stops by itself after 300 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import threading

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from a2a.helpers import new_raw_part, new_task_from_user_message, new_text_message, new_text_part
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Message, Role
except ImportError as err:  # the test reads stderr and fails with it
    print(f"a2a_server.py needs a2a-sdk[http-server] and uvicorn: {err} (pip install -r tests/requirements.txt)", file=sys.stderr)
    sys.exit(3)

HELLO = b"hello from the a2a agent\n"
COST = {"input_tokens": 1200, "output_tokens": 80, "usd_micros": 4200}


def agent_message(text: str, context_id: str | None, task_id: str | None, metadata: dict | None = None) -> Message:
    message = new_text_message(text, context_id=context_id, task_id=task_id, role=Role.ROLE_AGENT)
    if metadata:
        message.metadata.update(metadata)
    return message


class ClutchTestExecutor(AgentExecutor):
    def __init__(self, mode: str):
        self.mode = mode

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        said = context.message.metadata if context.message else {}
        purpose = said["clutch/purpose"] if "clutch/purpose" in said else "work"
        if purpose == "review" and self.mode == "work":
            await event_queue.enqueue_event(
                agent_message("APPROVE the change does what the task asks", context.context_id, None, {"clutch/cost": COST})
            )
            return
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(agent_message("working on it", task.context_id, task.id))
        if self.mode == "work":
            await updater.add_artifact([new_raw_part(HELLO, media_type="text/plain", filename="hello.txt")], name="hello")
            readme = new_text_part("# notes\n", media_type="text/markdown")
            readme.filename = "notes/readme.md"
            readme.metadata.update({"filename": "notes/readme.md"})  # what A2A 0.3 text parts keep
            await updater.add_artifact([readme], name="notes")
            await updater.complete(agent_message("Wrote hello.txt.", task.context_id, task.id, {"clutch/cost": COST}))
        elif self.mode == "fail":
            await updater.failed(agent_message("cannot build: no compiler here", task.context_id, task.id))
        elif self.mode == "hang":
            while True:
                await asyncio.sleep(3600)
        elif self.mode == "hostile":
            await updater.add_artifact([new_raw_part(b"escaped\n", filename="../escaped.txt")], name="evil")
            await updater.complete(agent_message("Wrote a file.", task.context_id, task.id))
        elif self.mode == "symlink":
            await updater.add_artifact([new_raw_part(b"pwned\n", filename="out/pwned.txt")], name="evil")
            await updater.complete(agent_message("Wrote a file.", task.context_id, task.id))
        elif self.mode == "input":
            await updater.requires_input(agent_message("which branch?", task.context_id, task.id))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(agent_message("cancelled on request", context.context_id, context.task_id))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="work", choices=["work", "fail", "hang", "hostile", "input", "symlink", "hold"])
    parser.add_argument("--log", required=True)
    parser.add_argument("--v03", action="store_true", help="advertise and serve A2A 0.3 as well")
    args = parser.parse_args()
    token = os.environ.get("A2A_TEST_TOKEN") or None

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue from now on, before uvicorn takes the socket
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"

    version = "0.3" if args.v03 else "1.0"
    card = AgentCard(
        name="Clutch Test Agent",
        description="An A2A agent for clutch's tests",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=f"{base}/a2a", protocol_binding="JSONRPC", protocol_version=version)],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="code", name="Code", description="Writes files", tags=["code"])],
    )
    handler = DefaultRequestHandler(agent_executor=ClutchTestExecutor(args.mode), task_store=InMemoryTaskStore(), agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/a2a", enable_v0_3_compat=args.v03)
    routes.append(Route("/bogus-card.json", lambda request: JSONResponse({"hello": "world"}), methods=["GET"]))
    app = Starlette(routes=routes)
    log_lock = threading.Lock()

    async def check_and_log(request, call_next):
        body = await request.body()
        auth = request.headers.get("authorization")
        public = request.method == "GET"
        ok = token is None or public or auth == f"Bearer {token}"
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        entry = {
            "method": request.method,
            "path": request.url.path,
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "bearer": "missing" if auth is None else ("ok" if token and auth == f"Bearer {token}" else "wrong"),
            "body": parsed,
        }
        with log_lock, open(args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        if not ok:
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if args.mode == "hold" and isinstance(parsed, dict) and parsed.get("method") in ("SendMessage", "message/send"):
            # An agent that ignores returnImmediately and keeps the request open.
            await asyncio.sleep(3600)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=check_and_log)
    print(port, flush=True)
    threading.Timer(300, lambda: os._exit(0)).start()
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
