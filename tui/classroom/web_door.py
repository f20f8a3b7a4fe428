"""The browser door: ``http://SERVER:8080/``, a name and the room code, then the course in the page.

textual-serve draws a Textual app in the browser (its page and websocket,
the app started per connection with Textual's web driver). In front of it,
our join page: ``GET /`` is the form (name, room code), ``POST /join``
checks the code (constant time; failures counted per address with the SSH
door's limiter) and, when right, sets a session cookie (random, HttpOnly,
SameSite=Strict; Secure when the request came through HTTPS) and sends the
browser to ``/app``. ``/app`` and ``/ws`` need that cookie; the app each
websocket starts is the seat's (:mod:`tui.classroom.seat_app`: root until
the course is loaded, then the seat's uid), with an environment of its own,
none of root's.

HTTPS: put a reverse proxy in front (README), which also sets
``X-Forwarded-Proto``; the websocket URL follows the page's own scheme and host.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import secrets
import shlex

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from tui.i18n import t

from .room import NAME_RE, Room, RoomError, seat_argv, seat_env

COOKIE = "container_lab_seat"


class _SeatAppService(AppService):
    """textual-serve's app process, with the seat's environment instead of ours."""

    def __init__(self, command: str, env: dict[str, str], **kw):
        super().__init__(command, **kw)
        self.seat_env = env

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        base = super()._build_environment(width, height)
        textual = {k: v for k, v in base.items() if k.startswith(("TEXTUAL", "TERM_PROGRAM")) or
                   k in ("COLUMNS", "ROWS")}
        return self.seat_env | textual


class WebDoor(Server):
    def __init__(self, room: Room, limiter, host: str, port: int):
        super().__init__("container-lab", host=host, port=port, title="container-lab")
        self.room, self.limiter = room, limiter
        self.sessions: dict[str, str] = {}          # cookie value -> seat name
        self.runner: web.AppRunner | None = None
        self.services: set = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        # The page textual-serve made "/" is ours now; its app page moves to /app.
        new = web.Application()
        import aiohttp_jinja2
        import jinja2

        aiohttp_jinja2.setup(new, loader=jinja2.FileSystemLoader(self.templates_path))
        new.add_routes([
            web.get("/", self.handle_join_page, name="join"),
            web.post("/join", self.handle_join),
            web.get("/app", self.handle_app, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.static("/static", self.statics_path, name="static"),
        ])
        del app
        return new

    async def start(self) -> int:
        self.runner = web.AppRunner(await self._make_app(), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for service in list(self.services):
            try:
                await service.stop()
            except Exception:  # noqa: BLE001 - closing every other one all the same
                pass
        if self.runner is not None:
            await self.runner.cleanup()

    # -- join ----------------------------------------------------------------------------

    def page(self, error: str = "", status: int = 200) -> web.Response:
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>container-lab</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:1rem 0 .3rem}}input{{font-size:1.1rem;width:100%;padding:.4rem}}
button{{margin-top:1.2rem;font-size:1.1rem;padding:.4rem 1.2rem}}.error{{color:#b00}}</style></head>
<body><h1>container-lab</h1><p>{html.escape(t("en", "serve.web_intro"))}<br>{html.escape(t("zh", "serve.web_intro"))}</p>
{f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ''}
<form method="post" action="/join">
<label for="name">{html.escape(t("en", "serve.web_name"))} · {html.escape(t("zh", "serve.web_name"))}</label>
<input id="name" name="name" autocomplete="username" required pattern="[A-Za-z][A-Za-z0-9_-]{{0,31}}">
<label for="code">{html.escape(t("en", "serve.web_code"))} · {html.escape(t("zh", "serve.web_code"))}</label>
<input id="code" name="code" type="password" autocomplete="current-password" required>
<button type="submit">{html.escape(t("en", "serve.web_join"))} · {html.escape(t("zh", "serve.web_join"))}</button>
</form></body></html>"""
        return web.Response(text=body, content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "frame-ancestors 'none'"})

    async def handle_join_page(self, request: web.Request) -> web.Response:
        return self.page()

    async def handle_join(self, request: web.Request) -> web.Response:
        address = request.remote or "?"
        form = await request.post()
        name, code = str(form.get("name", "")).strip().lower(), str(form.get("code", ""))
        if self.limiter.locked_for(address):
            self.room.log(f"web {address} {name[:40]!r}: refused, too many wrong codes")
            return self.page(f'{t("en", "serve.web_locked")} · {t("zh", "serve.web_locked")}', status=429)
        if not hmac.compare_digest(code.encode(), self.room.code.encode()):
            self.limiter.failed(address)
            self.room.log(f"web {address} {name[:40]!r}: wrong code")
            await asyncio.sleep(1.0)
            return self.page(f'{t("en", "serve.web_wrong_code")} · {t("zh", "serve.web_wrong_code")}', status=403)
        if not NAME_RE.fullmatch(name):
            return self.page(f'{t("en", "serve.bad_name", name=name[:40])} · {t("zh", "serve.bad_name", name=name[:40])}', status=400)
        self.limiter.succeeded(address)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.room.seat, name)
        except (RoomError, OSError) as e:
            return self.page(str(e), status=503)
        token = secrets.token_urlsafe(32)
        self.sessions[token] = name
        self.room.log(f"web {address} {name}: joined")
        response = web.HTTPSeeOther("/app")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                            secure=request.headers.get("X-Forwarded-Proto") == "https" or request.secure)
        return response

    def seat_of(self, request: web.Request) -> str | None:
        return self.sessions.get(request.cookies.get(COOKIE, ""))

    # -- the app -------------------------------------------------------------------------

    async def handle_app(self, request: web.Request) -> web.StreamResponse:
        if self.seat_of(request) is None:
            raise web.HTTPSeeOther("/")
        import aiohttp_jinja2

        scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
        base = f"{scheme}://{request.host}"
        context = {"font_size": 16,
                   "app_websocket_url": ("wss" if scheme == "https" else "ws") + f"://{request.host}/ws",
                   "config": {"static": {"url": f"{base}/static/"}},
                   "application": {"name": "container-lab"}}
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        name = self.seat_of(request)
        if name is None or name not in self.room.seats:
            raise web.HTTPForbidden(text="join first")
        seat = self.room.seats[name]
        websocket = web.WebSocketResponse(heartbeat=15)
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        service = None
        try:
            await websocket.prepare(request)
            service = _SeatAppService(shlex.join(seat_argv(self.room, seat)), seat_env(seat),
                                      write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                      close=websocket.close, download_manager=self.download_manager)
            self.services.add(service)
            service.door = "web"
            self.room.enter(seat, service)
            await service.start(width, height)
            try:
                await self._process_messages(websocket, service)
            finally:
                await service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        finally:
            if service is not None:
                self.services.discard(service)
                self.room.leave(seat, service)
        return websocket


def _int(value, default: int) -> int:
    try:
        return max(10, min(1000, int(value)))
    except (TypeError, ValueError):
        return default
