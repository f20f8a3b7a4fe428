"""A real registry on 127.0.0.1 for the pull tests: Debian's docker-registry
(the distribution project's server), optionally behind token authentication
served by a small token service here, plus a pusher that speaks the
distribution API (monolithic blob uploads, manifest PUT)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from waiting import wait_until

SERVICE, ISSUER = "container-lab-test", "container-lab-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """Issues RS256 tokens the registry trusts (the certificate goes in the
    token's x5c header and in the registry's rootcertbundle). Grants what is
    asked; records every request, so a test can see the scopes and headers."""

    def __init__(self, work: Path):
        self.work = work
        self.key, self.cert = work / "token.key", work / "token.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=container-lab-test-token"],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict] = []
        self.port = free_port()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                service.requests.append({"path": url.path, "query": query,
                                         "authorization": self.headers.get("Authorization")})
                body = json.dumps({"token": service.token(query.get("scope", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def token(self, scope: str) -> str:
        access = []
        for item in scope.split(" "):
            parts = item.split(":")
            if len(parts) == 3:
                access.append({"type": parts[0], "name": parts[1], "actions": parts[2].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": "learner", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": hashlib.sha256(f"{now}{scope}{len(self.requests)}".encode()).hexdigest()[:16],
                  "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1, storage in a temp dir; with a
    :class:`TokenService` when ``token_auth``."""

    def __init__(self, *, token_auth: bool = False):
        self.work = Path(tempfile.mkdtemp(prefix="clreg-"))
        self.tokens = TokenService(self.work) if token_auth else None
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.work / "storage")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.tokens:
            config["auth"] = {"token": {"realm": self.tokens.realm, "service": SERVICE, "issuer": ISSUER,
                                        "rootcertbundle": str(self.tokens.cert)}}
        (self.work / "config.yml").write_text(json.dumps(config))     # JSON is YAML
        self.log = open(self.work / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.work / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2).close()
            except urllib.error.HTTPError:
                pass                      # 401 with token auth: it is up
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("it exited") from None
                return False
            return True
        try:
            wait_until(up, timeout=20, message=f"docker-registry to answer on {self.host}")
        except (AssertionError, RuntimeError) as e:
            log = (self.work / "registry.log").read_text()
            self.close()
            raise RuntimeError(f"docker-registry did not start ({e}): {log}") from None

    def _request(self, method: str, url: str, *, data: bytes | None = None, headers: dict | None = None,
                 scope: str = "") -> urllib.request.Request:
        req = urllib.request.Request(url if url.startswith("http") else f"http://{self.host}{url}",
                                     data=data, method=method, headers=headers or {})
        if self.tokens:
            req.add_header("Authorization", f"Bearer {self.tokens.token(scope)}")
        return req

    def push(self, repository: str, tag: str, manifest: bytes, media_type: str, blobs: dict[str, bytes]) -> str:
        """Upload ``blobs`` (digest -> bytes) and the manifest under ``tag``; its digest."""
        scope = f"repository:{repository}:pull,push"
        for digest, data in blobs.items():
            with urllib.request.urlopen(self._request("POST", f"/v2/{repository}/blobs/uploads/",
                                                      data=b"", scope=scope)) as resp:
                location = resp.headers["Location"]
            if not location.startswith("http"):
                location = f"http://{self.host}{location}"
            sep = "&" if "?" in location else "?"
            urllib.request.urlopen(self._request("PUT", f"{location}{sep}digest={digest}", data=data, scope=scope,
                                                 headers={"Content-Type": "application/octet-stream"})).close()
        urllib.request.urlopen(self._request("PUT", f"/v2/{repository}/manifests/{tag}", data=manifest,
                                             scope=scope, headers={"Content-Type": media_type})).close()
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if self.tokens:
            self.tokens.close()
        shutil.rmtree(self.work, ignore_errors=True)
