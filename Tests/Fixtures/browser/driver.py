#!/usr/bin/env python3
"""A headless Chromium driven through the DevTools protocol, for the tracker tests.

    driver.py WORK_DIR

Starts Debian's chromium (--headless, a fresh profile under WORK_DIR) and a small HTTP
server for test pages on 127.0.0.1 (a different origin from the collector's, so CORS
applies as on a real site). Prints one JSON line {"ready": true, "pages": "http://…"},
then reads commands from standard input, one JSON object per line, and answers each
with one JSON line {"ok": true, "value": …} or {"ok": false, "error": "…"}:

    {"cmd": "page", "path": "/a.html", "html": "…"}   serve this HTML at that path
    {"cmd": "open", "url": "…"}                       navigate and wait for the load event
    {"cmd": "eval", "js": "…"}                        evaluate (promises awaited); the value
    {"cmd": "init", "js": "…"}                        run this in every page before its scripts
    {"cmd": "requests"}                               requests sent so far to other origins:
                                                      url, method, type ("Ping" = beacon), status
                                                      (0: failed), retryAfter, time and doneTime
                                                      (s since the epoch), postData
    {"cmd": "quit"}

Exits non-zero with a one-line reason on stderr if Chromium cannot be started.
"""
import ctypes
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import websocket

work = sys.argv[1]
os.makedirs(work, exist_ok=True)
pages = {}


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = pages.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
threading.Thread(target=server.serve_forever, daemon=True).start()
pages_base = f"http://127.0.0.1:{server.server_address[1]}"

binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
if not binary:
    sys.exit("driver.py: chromium is not installed (make test installs Debian's chromium)")
profile = os.path.join(work, "profile")
shutil.rmtree(profile, ignore_errors=True)


def die_with_parent():
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphaned browser


browser = subprocess.Popen([
    binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-extensions",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "chromium.log"), "w"), preexec_fn=die_with_parent)

port_file = os.path.join(profile, "DevToolsActivePort")
deadline = time.time() + 60
while not os.path.exists(port_file) or not open(port_file).read().strip():
    if browser.poll() is not None or time.time() > deadline:
        sys.exit(f"driver.py: chromium did not start (see {work}/chromium.log)")
    time.sleep(0.1)
devtools_port = int(open(port_file).read().split()[0])


def http_json(path):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{devtools_port}{path}", timeout=30) as response:
        return json.loads(response.read())


target = next(t for t in http_json("/json/list") if t["type"] == "page")
ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
lock = threading.Condition()
replies, requests, loads = {}, {}, []
next_id = [0]


def reader():
    while True:
        try:
            message = json.loads(ws.recv())
        except Exception:
            return
        with lock:
            if "id" in message:
                replies[message["id"]] = message
            else:
                method, p = message.get("method"), message.get("params", {})
                if method == "Network.requestWillBeSent" and not p["request"]["url"].startswith(pages_base):
                    requests[p["requestId"]] = {"url": p["request"]["url"], "method": p["request"]["method"],
                                                "type": p.get("type"), "time": p["wallTime"],
                                                "postData": p["request"].get("postData"), "status": None,
                                                "retryAfter": None}
                elif method == "Network.responseReceived" and p["requestId"] in requests:
                    headers = {k.lower(): v for k, v in p["response"].get("headers", {}).items()}
                    requests[p["requestId"]]["status"] = p["response"]["status"]
                    requests[p["requestId"]]["retryAfter"] = headers.get("retry-after")
                    requests[p["requestId"]]["doneTime"] = time.time()
                elif method == "Network.loadingFailed" and p["requestId"] in requests:
                    requests[p["requestId"]]["status"] = 0
                    requests[p["requestId"]]["doneTime"] = time.time()
                elif method == "Page.loadEventFired":
                    loads.append(time.time())
            lock.notify_all()


threading.Thread(target=reader, daemon=True).start()


def call(method, params=None, timeout=60):
    with lock:
        next_id[0] += 1
        i = next_id[0]
    ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
    with lock:
        if not lock.wait_for(lambda: i in replies, timeout):
            raise RuntimeError(f"{method}: no answer in {timeout} s")
        reply = replies.pop(i)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error'].get('message')}")
    return reply.get("result", {})


call("Page.enable")
call("Network.enable")
call("Runtime.enable")


def run(command):
    cmd = command["cmd"]
    if cmd == "page":
        pages[command["path"]] = command["html"]
        return pages_base + command["path"]
    if cmd == "open":
        with lock:
            before = len(loads)
        call("Page.navigate", {"url": command["url"]})
        with lock:
            if not lock.wait_for(lambda: len(loads) > before, 60):
                raise RuntimeError("the page did not load in 60 s")
        return True
    if cmd == "eval":
        result = call("Runtime.evaluate", {"expression": command["js"], "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")
    if cmd == "init":
        call("Page.addScriptToEvaluateOnNewDocument", {"source": command["js"]})
        return True
    if cmd == "requests":
        with lock:
            return sorted(requests.values(), key=lambda r: r["time"])
    raise RuntimeError(f"unknown command {cmd}")


print(json.dumps({"ready": True, "pages": pages_base}), flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    command = json.loads(line)
    if command["cmd"] == "quit":
        break
    try:
        print(json.dumps({"ok": True, "value": run(command)}), flush=True)
    except Exception as error:  # the test reads the reason
        print(json.dumps({"ok": False, "error": str(error)}), flush=True)
browser.terminate()
try:
    browser.wait(10)
except subprocess.TimeoutExpired:
    browser.kill()
