"""A real registry on 127.0.0.1 for the pull, push and login tests: Debian's
docker-registry (the distribution project's server), optionally behind token
authentication served by a small token service here (which may ask for a
user name and password) or behind htpasswd Basic authentication, with its
access log on if asked; a pusher that speaks the distribution API
(monolithic blob uploads, manifest PUT); a TCP proxy that cuts a
connection after so many bytes (an interrupted push); and images made of
the test store's lab image plus a layer of one's own."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import shutil
import socket
import subprocess
import tarfile
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

    def __init__(self, work: Path, users: dict[str, str] | None = None):
        self.work = work
        self.users = users          # None: anyone gets a token; else only these, by Basic auth
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
                pairs = urllib.parse.parse_qsl(url.query)
                query = dict(pairs)
                if len(scopes := [v for k, v in pairs if k == "scope"]) > 1:
                    query["scope"] = " ".join(scopes)
                service.requests.append({"path": url.path, "query": query,
                                         "authorization": self.headers.get("Authorization")})
                if service.users is not None and not service.allowed(self.headers.get("Authorization")):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
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

    def allowed(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(user) == password

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

    def __init__(self, *, token_auth: bool = False, users: dict[str, str] | None = None,
                 htpasswd: dict[str, str] | None = None, access_log: bool = False):
        self.work = Path(tempfile.mkdtemp(prefix="clreg-"))
        self.tokens = TokenService(self.work, users) if token_auth else None
        self.basic = htpasswd
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": not access_log}},
            "storage": {"filesystem": {"rootdirectory": str(self.work / "storage")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.tokens:
            config["auth"] = {"token": {"realm": self.tokens.realm, "service": SERVICE, "issuer": ISSUER,
                                        "rootcertbundle": str(self.tokens.cert)}}
        if htpasswd:
            (self.work / "htpasswd").write_text("".join(f"{u}:{bcrypt(p)}\n" for u, p in htpasswd.items()))
            config["auth"] = {"htpasswd": {"realm": "container-lab-test", "path": str(self.work / "htpasswd")}}
        (self.work / "config.yml").write_text(json.dumps(config))     # JSON is YAML
        self.log = open(self.work / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.work / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2).close()
            except urllib.error.HTTPError:
                pass                      # 401 with token or Basic auth: it is up
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
        elif self.basic:
            user, password = next(iter(self.basic.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        return req

    def log_lines(self) -> list[str]:
        """The registry's log so far (its access log, when on: one request a line)."""
        self.log.flush()
        return (self.work / "registry.log").read_text(errors="replace").splitlines()

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


def bcrypt(password: str) -> str:
    """A bcrypt hash (the only kind docker-registry's htpasswd reads), from the
    system's crypt(3) (libxcrypt); cost 5 keeps the registry's checks quick."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    salt = "$2b$05$" + base64.b64encode(hashlib.sha256(password.encode()).digest(), b"./")[:22].decode()
    hashed = crypt.crypt(password, salt)
    assert hashed and hashed.startswith("$2b$"), "crypt(3) here does not do bcrypt"
    return hashed


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 to ``port``: while ``budget`` is a number,
    the connection whose upstream bytes pass it is cut (both ends shut), as a
    network failure would cut a push half-way."""

    def __init__(self, port: int):
        self.target = port
        self.budget: int | None = None
        self.sent = 0
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if up:
                    with self.lock:
                        self.sent += len(data)
                        cut = self.budget is not None and self.sent > self.budget
                        if cut:
                            self.cuts += 1
                            self.budget = None
                    if cut:
                        for s in (src, dst):
                            s.shutdown(socket.SHUT_RDWR)
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


# -- images of the test store's lab image plus a layer --------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def lab_blobs(root: Path) -> tuple[bytes, dict, dict[str, bytes]]:
    """The lab image as the test store under ``root`` keeps it: manifest bytes, parsed, blobs."""
    base = root / "lib" / "images"
    digest = json.loads((base / "repositories.json").read_text())["lab:latest"]
    manifest = (base / "blobs" / "sha256" / digest[7:]).read_bytes()
    parsed = json.loads(manifest)
    blobs = {d["digest"]: (base / "blobs" / "sha256" / d["digest"][7:]).read_bytes()
             for d in [parsed["config"], *parsed["layers"]]}
    return manifest, parsed, blobs


def layer_with(files: dict[str, bytes]) -> bytes:
    """A layer tar holding ``files`` (name -> content)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def lab_plus(root: Path, files: dict[str, bytes]) -> tuple[bytes, dict[str, bytes]]:
    """An image of the lab layer and a layer holding ``files``: (manifest bytes, blobs to push)."""
    manifest, parsed, blobs = lab_blobs(root)
    extra = layer_with(files)
    config = json.loads(blobs[parsed["config"]["digest"]])
    config["rootfs"]["diff_ids"].append(sha(extra))
    config_bytes = json.dumps(config).encode()
    own = json.dumps(dict(parsed, config=dict(parsed["config"], digest=sha(config_bytes), size=len(config_bytes)),
                          layers=parsed["layers"] + [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                                      "digest": sha(extra), "size": len(extra)}])).encode()
    return own, {**blobs, sha(config_bytes): config_bytes, sha(extra): extra}
