"""Local stand-ins for the forwarder's sinks, following each sink's documented API.

  sink_server.py HTTP_PORT UDP_PORT SECRET_DIR

HTTP paths:
  POST /webhook/<name>   Standard Webhooks receiver: verifies webhook-id/-timestamp/-signature
                         with the `standardwebhooks` library and the secret in SECRET_DIR/<name>.
  POST /mixpanel/<name>  Mixpanel /import: Basic auth with the project secret, gzip body, JSON
                         array; strict validation (time, distinct_id, $insert_id) -> 400 failed_records.
  POST /segment/<name>   Segment /v1/batch: Basic auth write key, {"batch": [...]}.
  POST /slack/<name>     Slack incoming webhook: {"text": ..., "blocks": [...]}; "text" required.
  POST /pagerduty/<name> PagerDuty Events API v2 (/v2/enqueue): routing_key must be the key in
                         SECRET_DIR/<name>; trigger needs payload.summary, .source and .severity
                         (critical, error, warning, info); resolve needs dedup_key; 202 on success.
  POST /alerts/<name>    a generic JSON webhook: any JSON object, recorded as is.
  GET  /ping/<name>      a dead man's switch: each ping is recorded as {"at": time}.
  POST /_control/<name>  {"fail": N, "status": 503, "retryAfter": "2", "stall": seconds,
                         "down": true|false}: how the next requests to <name> are answered.
  GET  /_received/<name> {"requests": n, "events": [...], "badSignatures": n, "statuses": [...]}
  GET  /_received/<name>/summary {"requests": n, "events": n, "unique": n, "badSignatures": n} (cheap to poll)
UDP: DogStatsD lines are recorded under the name "statsd".
Prints "ready" when both ports listen.
With SINK_FAST=1 (benchmarks), every request is answered 200 at once and only counted:
GET /_received/<name>/summary then gives requests and events (by counting the batch).
With SINK_IDS=1 as well (make e2e), each webhook event's messageId is kept with its
request's webhook-id. GET /_received/<name>/ids gives [[webhook-id, messageId], ...]
(in either mode).
"""
import base64, gzip, json, os, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from standardwebhooks.webhooks import Webhook

HTTP_PORT, UDP_PORT, SECRETS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
FAST = os.environ.get("SINK_FAST") == "1"
IDS = os.environ.get("SINK_IDS") == "1"
lock = threading.Lock()
state = {}


def sink(name):
    return state.setdefault(name, {"requests": 0, "events": [], "badSignatures": 0, "statuses": [],
                                   "control": {}, "times": [], "ids": []})


def secret(name):
    with open(os.path.join(SECRETS, name)) as f:
        return f.read().strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and the client's
    # delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=None):
        data = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] == "_received":
            with lock:
                s = sink(parts[1])
                if len(parts) > 2 and parts[2] == "ids":
                    answer = list(s["ids"]) if FAST else [[e.get("_webhookId", ""), e.get("messageId", "")]
                                                          for e in s["events"] if isinstance(e, dict)]
                elif len(parts) > 2 and parts[2] == "summary" and FAST:
                    count = sum(e if isinstance(e, int) else 1 for e in s["events"])
                    answer = {"requests": s["requests"], "events": count, "unique": count, "badSignatures": 0}
                elif len(parts) > 2 and parts[2] == "summary":
                    ids = [e.get("messageId") or e.get("properties", {}).get("$insert_id") for e in s["events"]
                           if isinstance(e, dict)]
                    answer = {"requests": s["requests"], "events": len(s["events"]), "unique": len(set(ids)),
                              "badSignatures": s["badSignatures"]}
                else:
                    answer = {k: list(s[k]) if isinstance(s[k], list) else s[k]
                              for k in ("requests", "events", "badSignatures", "statuses", "times")}
            self.reply(200, answer)
        elif parts[0] == "ping" and len(parts) > 1:
            with lock:
                s = sink(parts[1])
                s["requests"] += 1
                s["events"].append({"at": time.time()})
            self.reply(200, {"ok": True})
        else:
            self.reply(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        parts = self.path.split("?")[0].strip("/").split("/")
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "_control":
            with lock:
                sink(name)["control"] = json.loads(body or b"{}")
            return self.reply(200)
        if FAST:
            if kind == "mixpanel" and self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            payload = json.loads(body)
            n = len(payload) if isinstance(payload, list) else len(payload.get("batch") or payload.get("data", {}).get("events", []))
            with lock:
                s = sink(name)
                s["requests"] += 1
                s["events"].append(n)
                if IDS and kind == "webhook":
                    wid = self.headers.get("webhook-id", "")
                    s["ids"].extend([wid, e.get("messageId", "")] for e in payload["data"]["events"])
            return self.reply(200, {"code": 200, "status": "OK"} if kind == "mixpanel" else {})
        with lock:
            s = sink(name)
            s["requests"] += 1
            s["times"].append(time.time())
            control = s["control"]
            stall = control.get("stall", 0)
            failing = control.get("down") or control.get("fail", 0) > 0
            if control.get("fail", 0) > 0:
                control["fail"] -= 1
        if stall:
            time.sleep(stall)
        if failing:
            status = control.get("status", 503)
            with lock:
                s["statuses"].append(status)
            headers = {"Retry-After": control["retryAfter"]} if "retryAfter" in control else None
            return self.reply(status, {"error": "told to fail"}, headers)
        status, answer, events = getattr(self, "handle_" + kind)(name, body)
        with lock:
            s["statuses"].append(status)
            if 200 <= status < 300 or kind == "mixpanel":
                s["events"].extend(events)
        self.reply(status, answer)

    def basic_user(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        return base64.b64decode(auth[6:]).decode().split(":", 1)

    def handle_webhook(self, name, body):
        try:
            Webhook(secret(name)).verify(body, {k: self.headers[k] for k in
                                                 ("webhook-id", "webhook-timestamp", "webhook-signature")})
        except Exception as e:
            with lock:
                sink(name)["badSignatures"] += 1
            return 401, {"error": str(e)}, []
        payload = json.loads(body)
        events = payload["data"]["events"]
        for e in events:
            e["_webhookId"] = self.headers["webhook-id"]
        return 200, {}, events

    def handle_mixpanel(self, name, body):
        user = self.basic_user()
        if user is None or user[0] != secret(name):
            return 401, {"error": "Invalid credentials"}, []
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        records = json.loads(body)
        failed, ok = [], []
        for i, r in enumerate(records):
            p = r.get("properties", {})
            missing = [f for f in ("time", "distinct_id", "$insert_id") if f not in p]
            if missing or p.get("reject"):
                failed.append({"index": i, "$insert_id": p.get("$insert_id"), "field": (missing or ["properties.reject"])[0],
                               "message": "invalid record"})
            else:
                ok.append(r)
        if failed:
            return 400, {"code": 400, "status": "Bad Request", "num_records_imported": len(ok),
                         "failed_records": failed}, ok
        return 200, {"code": 200, "status": "OK", "num_records_imported": len(ok)}, ok

    def handle_segment(self, name, body):
        user = self.basic_user()
        if user is None or user[0] != secret(name):
            return 401, {"error": "Invalid write key"}, []
        payload = json.loads(body)
        return 200, {"success": True}, payload["batch"]


    def handle_slack(self, name, body):
        payload = json.loads(body)
        if not isinstance(payload.get("text"), str) or not payload["text"]:
            return 400, {"error": "no_text"}, []
        return 200, {}, [payload]

    def handle_pagerduty(self, name, body):
        e = json.loads(body)
        errors = []
        if e.get("routing_key") != secret(name):
            errors.append("routing_key is invalid")
        action = e.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("event_action must be trigger, acknowledge or resolve")
        if action in ("acknowledge", "resolve") and not e.get("dedup_key"):
            errors.append("dedup_key is required for " + str(action))
        if action == "trigger":
            p = e.get("payload") or {}
            for f in ("summary", "source", "severity"):
                if not p.get(f):
                    errors.append("payload." + f + " is missing")
            if p.get("severity") not in ("critical", "error", "warning", "info"):
                errors.append("payload.severity is invalid")
            if len(p.get("summary", "")) > 1024:
                errors.append("payload.summary is too long")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, []
        return 202, {"status": "success", "message": "Event processed", "dedup_key": e.get("dedup_key", "")}, [e]

    def handle_alerts(self, name, body):
        return 200, {}, [json.loads(body)]


def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", UDP_PORT))
    while True:
        data, _ = sock.recvfrom(65535)
        with lock:
            sink("statsd")["events"].extend(data.decode().split("\n"))


threading.Thread(target=udp, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", HTTP_PORT), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
