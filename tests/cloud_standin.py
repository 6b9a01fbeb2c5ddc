"""A stand-in for Prefect Cloud's API, for tests: a real Prefect server behind the shape of a Cloud
workspace, checking what each client sends.

    python cloud_standin.py --port 4300 --upstream http://127.0.0.1:4200 \
        --account <uuid> --workspace <uuid> --key-file key [--workspace <uuid> --key-file key2 ...] \
        --log requests.jsonl

It serves only /api/accounts/<account>/workspaces/<workspace>/..., as Cloud does, and forwards it to
the server's /api/... (HTTP and websockets); each workspace has its key (one server behind them all:
what it shows is who sent which key where). Every request, websocket upgrades included, must carry
`Authorization: Bearer <that workspace's key>` (Prefect's client sends `bearer`; the scheme is case-insensitive);
A websocket may instead send the key in its first message, as Prefect's events subscriber and
worker channel do ({"type": "auth", "token": <key>}, on the "prefect" subprotocols). Anything else
gets 401 (or the socket is closed) and is not forwarded. Each request is one JSON line in the log:
method, path, whether it was a websocket, how it authenticated (header or message) and the verdict:
ok, missing, basic (a server's basic auth sent to Cloud), wrong-key, wrong-workspace. The key
itself is never logged.

It runs with the Python of a Prefect install (Starlette, uvicorn, httpx and websockets come with
Prefect). It is not Prefect Cloud: Cloud's own endpoints (accounts, users, webhooks, ...) are not
there, and what a real workspace accepts may differ.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

HOP_BY_HOP = {"host", "authorization", "content-length", "connection", "transfer-encoding", "content-encoding"}


def build(upstream: str, account: str, keys: dict[str, str], log_path: str) -> Starlette:
    """keys: {workspace id: its API key}."""
    prefix = re.compile(r"^/api/accounts/(?P<account>[^/]+)/workspaces/(?P<workspace>[^/]+)(?P<rest>/.*)?$")
    client = httpx.AsyncClient(base_url=upstream, timeout=60)
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 -- one line per request, for the app's lifetime

    def judge(path: str, authorization: str) -> tuple[str, str]:
        """The verdict on a request's workspace and credentials, and the server's path for it."""
        match = prefix.match(path)
        scheme, _, token = authorization.partition(" ")
        if not match or match["account"] != account or match["workspace"] not in keys:
            verdict = "wrong-workspace"
        elif scheme.lower() == "basic":
            verdict = "basic"
        elif scheme.lower() != "bearer" or not token:
            verdict = "missing"
        elif token != keys[match["workspace"]]:
            verdict = "wrong-key"
        else:
            verdict = "ok"
        return verdict, "/api" + ((match["rest"] or "/") if match else "/")

    def record(method: str, path: str, websocket: bool, verdict: str, auth: str = "header") -> None:
        match = prefix.match(path)
        entry = {
            "t": time.time(),
            "method": method,
            "path": path,
            "workspace": match["workspace"] if match else None,
            "websocket": websocket,
            "verdict": verdict,
            "auth": auth,
        }
        log.write(json.dumps(entry) + "\n")

    async def forward(request: Request) -> Response:
        verdict, path = judge(request.url.path, request.headers.get("authorization", ""))
        record(request.method, request.url.path, False, verdict)
        if verdict != "ok":
            return JSONResponse({"detail": f"stand-in for Prefect Cloud: {verdict}"}, status_code=401)
        answer = await client.request(
            request.method,
            path,
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
        )
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    async def tunnel(socket: WebSocket) -> None:
        # Prefect's clients authenticate a websocket in one of two ways: the Authorization header of
        # the upgrade (the events client), or, on the "prefect" subprotocols, a first message
        # {"type": "auth", "token": <key>} (the events subscriber, the worker channel).
        verdict, path = judge(socket.url.path, socket.headers.get("authorization", ""))
        protocols = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        by_message = verdict == "missing" and bool(protocols)
        if verdict != "ok" and not by_message:
            record("GET", socket.url.path, True, verdict)
            await socket.close(code=4401)
            return
        url = upstream.replace("http", "ws", 1) + path + (f"?{socket.url.query}" if socket.url.query else "")
        async with websockets.connect(url, subprotocols=protocols or None) as server:
            await socket.accept(subprotocol=server.subprotocol)
            if by_message:
                first = await socket.receive_text()
                try:
                    token = json.loads(first).get("token") if json.loads(first).get("type") == "auth" else None
                except ValueError:
                    token = None
                match = prefix.match(socket.url.path)
                key = keys.get(match["workspace"]) if match else None
                verdict = "ok" if key and token == key else ("missing" if not token else "wrong-key")
                record("GET", socket.url.path, True, verdict, auth="message")
                if verdict != "ok":
                    await socket.send_text(json.dumps({"type": "auth_failure", "reason": "stand-in: " + verdict}))
                    await socket.close(code=4401)
                    return
                await server.send(first)
            else:
                record("GET", socket.url.path, True, verdict)

            async def client_to_server() -> None:
                try:
                    while True:
                        message = await socket.receive()
                        if message["type"] == "websocket.disconnect":
                            break
                        await server.send(message.get("text") if message.get("text") is not None else message["bytes"])
                except WebSocketDisconnect:
                    pass
                await server.close()

            async def server_to_client() -> None:
                try:
                    async for message in server:
                        if isinstance(message, str):
                            await socket.send_text(message)
                        else:
                            await socket.send_bytes(message)
                except websockets.ConnectionClosed:
                    pass
                await socket.close()

            await asyncio.gather(client_to_server(), server_to_client(), return_exceptions=True)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods), WebSocketRoute("/{path:path}", tunnel)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--workspace", required=True, action="append", help="a workspace id (repeat for several)")
    parser.add_argument(
        "--key-file",
        required=True,
        action="append",
        help="a file holding that workspace's key (never on a command line)",
    )
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    if len(args.workspace) != len(args.key_file):
        parser.error("give one --key-file per --workspace, in the same order")
    keys = {}
    for workspace, key_file in zip(args.workspace, args.key_file, strict=True):
        with open(key_file) as handle:
            keys[workspace] = handle.read().strip()
    app = build(args.upstream.rstrip("/"), args.account, keys, args.log)
    uvicorn.run(app, host="0.0.0.0", port=args.port, log_level="warning", ws="websockets")


if __name__ == "__main__":
    main()
