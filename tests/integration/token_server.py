#!/usr/bin/env python3
"""A token server for docker-registry's `auth: token` mode, for tests only.

It answers GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] the way the docker
token protocol says: a JWT signed RS256 with --key, whose header carries --cert in `x5c` (the
same certificate is the registry's rootcertbundle, so the registry trusts it).

Policy: without --user, everybody gets what they ask for. With --user/--pass, Basic credentials
that match get what they ask for, wrong ones get 401, and no credentials get a token without
access (the registry then answers 401, as Docker Hub does for a private repository) unless
--anonymous-pull, which grants anonymous pulls.

Python's standard library and the `openssl` command only (for the RS256 signature).
"""
import argparse
import base64
import binascii
import json
import os
import secrets
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(path):
    with open(path) as f:
        pem = f.read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    der = base64.b64decode("".join(body.split()))
    return base64.b64encode(der).decode()


def sign_rs256(key, data):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return out.stdout


def parse_scope(scope):
    """repository:foo/bar:pull,push -> {type, name, actions}; the name may hold ':' (a port)."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last == first:
        return None
    return {"type": scope[:first], "name": scope[first + 1:last],
            "actions": [a for a in scope[last + 1:].split(",") if a]}


class Handler(BaseHTTPRequestHandler):
    server_version = "cella-test-token/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("token_server: " + (fmt % args) + "\n")

    def credentials(self):
        """(user, password) from a Basic header, None without one, False when malformed."""
        h = self.headers.get("Authorization", "")
        if not h:
            return None
        scheme, _, value = h.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, pw = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (user, pw) if sep else False

    def reply(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        cfg = self.server.cfg
        q = parse_qs(urlsplit(self.path).query)
        creds = self.credentials()
        subject = ""
        grant = True
        if cfg.user is not None:
            if creds is None:
                grant = "pull" if cfg.anonymous_pull else False
            elif creds is False or creds != (cfg.user, cfg.password):
                self.reply(401, {"details": "incorrect username or password"},
                           {"WWW-Authenticate": 'Basic realm="cella-test-token"'})
                return
            else:
                subject = cfg.user
        elif creds:
            subject = creds[0]
        access = []
        for s in q.get("scope", []):
            for one in s.split(" "):
                a = parse_scope(one)
                if a is None:
                    continue
                if grant is False:
                    a["actions"] = []
                elif grant == "pull":
                    a["actions"] = [x for x in a["actions"] if x == "pull"]
                access.append(a)
        now = int(time.time())
        claims = {"iss": cfg.issuer, "sub": subject, "aud": q.get("service", [cfg.service])[0],
                  "exp": now + cfg.ttl, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(16),
                  "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [cfg.x5c]}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        token = signing_input + "." + b64url(sign_rs256(cfg.key, signing_input.encode()))
        out = {"expires_in": cfg.ttl, "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        if cfg.field in ("token", "both"):
            out["token"] = token
        if cfg.field in ("access_token", "both"):
            out["access_token"] = token
        self.reply(200, out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--key", required=True, help="RSA private key (PEM)")
    p.add_argument("--cert", required=True, help="its self-signed certificate (PEM): the registry's rootcertbundle")
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user")
    p.add_argument("--pass", dest="password")
    p.add_argument("--anonymous-pull", action="store_true")
    p.add_argument("--field", choices=["token", "access_token", "both"], default="both",
                   help="which JSON field(s) carry the token")
    p.add_argument("--ttl", type=int, default=300, help="token lifetime in seconds")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the port here once listening")
    cfg = p.parse_args()
    cfg.x5c = cert_der_b64(cfg.cert)
    srv = ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    if cfg.port_file:
        tmp = cfg.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, cfg.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
