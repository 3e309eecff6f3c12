"""A webhook receiver as a user would run one, for costd's delivery tests: its own process, standard library only.

It checks each call's `X-Costd-Signature` (`t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`) and
answers 401 to a bad one; it drops a repeat of a delivery it already has (`X-Costd-Delivery`), as costd's
docs tell receivers to, since delivery is at least once. Every call is appended to `--log` as one JSON line
(`accepted`, `duplicate` or `bad_signature`, with the delivery id and body), so a restarted receiver
remembers what it had.

`--die-on N` makes it crash on its Nth call after recording it and before answering (os._exit: no
response, the connection drops), the case where costd cannot know that the message arrived and must send it
again.
"""

import argparse
import hashlib
import hmac
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--die-on", type=int, default=0)
    args = parser.parse_args()

    seen = set()
    if os.path.exists(args.log):
        with open(args.log) as f:
            for line in f:
                entry = json.loads(line)
                if entry["outcome"] == "accepted":
                    seen.add(entry["delivery"])
    calls = [0]

    def record(entry):
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            calls[0] += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            delivery = self.headers.get("X-Costd-Delivery", "")
            parts = dict(p.split("=", 1) for p in self.headers.get("X-Costd-Signature", "").split(",") if "=" in p)
            expected = hmac.new(
                args.secret.encode(), parts.get("t", "").encode() + b"." + body, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, parts.get("v1", "")):
                record({"outcome": "bad_signature", "delivery": delivery})
                self.send_response(401)
                self.end_headers()
                return
            outcome = "duplicate" if delivery in seen else "accepted"
            seen.add(delivery)
            record({"outcome": outcome, "delivery": delivery, "body": json.loads(body)})
            if calls[0] == args.die_on:
                os._exit(3)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
