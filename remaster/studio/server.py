"""The studio's local HTTP server (the standard library's `ThreadingHTTPServer`) and its promises:

- it listens on 127.0.0.1 unless told otherwise (`remaster studio --host ... --allow-remote`);
- every request carries the session's random token: `?token=` once (it is then kept in a cookie
  bound to this port, SameSite=Strict, HttpOnly), or an `X-Studio-Token` header; else 403;
- a Host header other than the bound address is refused with 403 (DNS rebinding), and so is a
  POST whose Origin is another site's;
- the routes are fixed: a frame is named by its number, an asset by a name in a fixed table; no
  path from the client is ever used on disk, and nothing but the project folder is read or written
  (the film only through the decoder);
- a request body is capped (32 MiB for an image, 1 MiB for JSON), and an upload is decoded as an
  image or refused in one line.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import socket
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import cv2

from remaster.errors import InputError, RemasterError, one_line
from remaster.studio.engine import MAX_UPLOAD, VIEWS
from remaster.studio.jobs import MAX_WORKERS, Render, preview_carry

MAX_JSON = 1024 * 1024
ASSETS = {"studio.js": "text/javascript", "studio.css": "text/css"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FRAME = re.compile(r"^/api/frame/(\d{1,9})(?:/(edit|undo|redo|clear|keyframe|reference|use)|/(\w+)\.png)?$")
_THUMB = re.compile(r"^/api/thumb/(\d{1,9})\.png$")
_PREVIEW = re.compile(r"^/api/preview/(\d{1,6})\.png$")


def png(rgb) -> bytes:
    """`(H, W, 3)` uint8 RGB (or RGBA, or `(H, W)` gray) -> PNG bytes."""
    if rgb.ndim == 2:
        image = rgb
    else:
        image = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()


class Studio:
    """What the handler serves: the source, the project, the engine, the jobs, the token."""

    def __init__(
        self,
        engine,
        *,
        pipeline: str | None = None,
        token: str | None = None,
        workers: int = 1,
        render_options: dict | None = None,
    ):
        self.engine, self.source, self.project = engine, engine.source, engine.project
        self.pipeline = pipeline
        self.token = token or secrets.token_urlsafe(32)
        self.render = Render(engine, workers=workers, options=render_options)
        self.preview: list = []

    def state(self) -> dict:
        from remaster.run.config import available_presets

        keyframes = self.project.keyframes()
        return {
            "presets": list(available_presets()),
            "source": self.source.describe(),
            "project": str(self.project.folder),
            "keyframes": keyframes,
            "views": list(VIEWS),
            "pipeline": self.pipeline,
            "render": dict(self.render.state),
            "workers": {"default": self.render.workers, "max": MAX_WORKERS},
        }


class Handler(BaseHTTPRequestHandler):
    server_version = "remaster-studio"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    studio: Studio  # set on the server's handler class

    def log_message(self, format, *args):  # quiet: the terminal shows the address and errors only
        pass

    # -- the checks, before anything else --------------------------------------------------------------

    def _allowed(self) -> bool:
        server = self.server
        host = self.headers.get("Host", "")
        if host not in server.hosts:
            self._error(HTTPStatus.FORBIDDEN, f"Host {host[:80]!r} refused: open the address the studio printed")
            return False
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin is not None and origin not in {f"http://{h}" for h in server.hosts}:
            self._error(HTTPStatus.FORBIDDEN, "a request from another site is refused")
            return False
        token = self.studio.token
        given = parse_qs(urlsplit(self.path).query).get("token", [None])[0] or self.headers.get("X-Studio-Token")
        if given is None:
            cookie = SimpleCookie()
            try:
                cookie.load(self.headers.get("Cookie", ""))
            except Exception:  # a malformed cookie header is no token
                cookie = SimpleCookie()
            given = cookie[server.cookie].value if server.cookie in cookie else None
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            self._error(HTTPStatus.FORBIDDEN, "a valid token is needed: open the address the studio printed")
            return False
        return True

    # -- replies ----------------------------------------------------------------------------------------

    def _send(self, status, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {**_HEADERS, **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value, status=HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status, message: str) -> None:
        self.close_connection = True
        self._json({"error": one_line(message)}, status)

    def _body(self, limit: int) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise InputError("a request body needs its Content-Length") from None
        if length > limit:
            raise _TooLarge(f"request body of {length} bytes refused: at most {limit // 2**20} MiB")
        return self.rfile.read(length) if length > 0 else b""

    def _payload(self) -> dict:
        body = self._body(MAX_JSON)
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise InputError("the request body is not JSON") from None
        if not isinstance(value, dict):
            raise InputError("the request body is a JSON object")
        return value

    # -- routes -----------------------------------------------------------------------------------------

    def do_GET(self):
        self._dispatch(self._get)

    def do_HEAD(self):
        self._dispatch(self._get)

    def do_POST(self):
        self._dispatch(self._post)

    def _dispatch(self, route) -> None:
        if not self._allowed():
            return
        try:
            route(urlsplit(self.path))
        except _TooLarge as error:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error))
        except _NotFound:
            self._error(HTTPStatus.NOT_FOUND, "not found")
        except RemasterError as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # a bug: one line in the page, the server goes on
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _get(self, url) -> None:
        path, studio = url.path, self.studio
        if path == "/":
            if "token" in parse_qs(url.query):  # once: keep it in a cookie, take it out of the address bar
                cookie = f"{self.server.cookie}={studio.token}; Path=/; HttpOnly; SameSite=Strict"
                return self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
            return self._send(HTTPStatus.OK, _asset("index.html"), "text/html; charset=utf-8")
        if path.startswith("/assets/") and path[len("/assets/") :] in ASSETS:
            name = path[len("/assets/") :]
            return self._send(HTTPStatus.OK, _asset(name), f"{ASSETS[name]}; charset=utf-8")
        if path == "/api/state":
            return self._json(studio.state())
        if path == "/api/render":
            return self._json(dict(studio.render.state))  # a copy: the render's thread updates it
        if match := _THUMB.match(path):
            shot = int(match[1])
            if shot >= len(studio.source.thumbs):
                raise _NotFound()
            return self._send(HTTPStatus.OK, png(studio.source.thumbs[shot]), "image/png")
        if match := _PREVIEW.match(path):
            k = int(match[1])
            if k >= len(studio.preview):
                raise InputError(f"no preview frame {k}: preview the carry first")
            return self._send(HTTPStatus.OK, png(studio.preview[k]), "image/png")
        if (match := _FRAME.match(path)) and match[2] is None:
            index = studio.source.check(int(match[1]))
            if match[3] is None:
                return self._json(studio.project.frame_state(index))
            if match[3] not in VIEWS:
                raise InputError(f"no view {match[3][:20]!r}: one of {', '.join(VIEWS)}")
            return self._send(HTTPStatus.OK, png(studio.engine.view(index, match[3])), "image/png")
        self._error(HTTPStatus.NOT_FOUND, "not found")

    def _post(self, url) -> None:
        from remaster.studio.project import check_edit

        path, studio = url.path, self.studio
        project, source = studio.project, studio.source
        if path == "/api/preview":
            index = source.check(int(self._payload().get("frame", 0)))
            studio.preview = preview_carry(studio.engine, index, pipeline=studio.pipeline)
            return self._json({"frames": len(studio.preview), "fps": float(source.rate)})
        if path == "/api/render":
            payload = self._payload()
            pipeline = payload.get("preset") or studio.pipeline
            codec, workers = str(payload.get("codec", "libx264")), payload.get("workers")
            return self._json(studio.render.start(pipeline=pipeline, codec=codec, workers=workers))
        if path == "/api/render/stop":
            self._body(MAX_JSON)
            return self._json(studio.render.stop())
        match = _FRAME.match(path)
        if not match or match[2] is None:
            return self._error(HTTPStatus.NOT_FOUND, "not found")
        index, action = source.check(int(match[1])), match[2]
        if action == "reference":
            use = parse_qs(url.query).get("use", ["hints"])[0]
            index = studio.engine.set_reference(index, self._body(MAX_UPLOAD), use)  # the frame it matched
        elif action == "use":
            studio.engine.set_reference_use(index, str(self._payload().get("use", "")))
        elif action == "edit":
            height, width = source.frame(index).shape
            project.add(index, check_edit(self._payload(), width, height))
        elif action == "keyframe":
            studio.engine.mark_keyframe(index, bool(self._payload().get("marked", True)))
        else:
            self._body(MAX_JSON)
            getattr(project, action)(index)
        self._json(project.frame_state(index))


class _TooLarge(InputError):
    pass


class _NotFound(InputError):
    pass


def _asset(name: str) -> bytes:
    return resources.files("remaster.studio").joinpath("assets", name).read_bytes()


class StudioServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, studio: Studio, host: str = "127.0.0.1", port: int = 0):
        handler = type("StudioHandler", (Handler,), {"studio": studio})
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)
        self.port = self.server_address[1]
        names = LOOPBACK if host in LOOPBACK else (host,)
        self.hosts = {f"[{h}]:{self.port}" if ":" in h else f"{h}:{self.port}" for h in names}
        self.cookie = f"remaster-studio-{self.port}"
        self.studio = studio

    def url(self, *, token: bool = True) -> str:
        host = self.server_address[0]
        shown = "127.0.0.1" if host in LOOPBACK else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self.port}/" + (f"?token={self.studio.token}" if token else "")
