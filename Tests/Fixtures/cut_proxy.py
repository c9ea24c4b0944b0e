#!/usr/bin/env python3
"""A TCP proxy that loses one reply, for tests of what happens when a command ran on the
server but its answer never came back (a server shutting down, a connection breaking).

    cut_proxy.py LISTEN_PORT UPSTREAM_PORT TRIGGER

Forwards every connection to 127.0.0.1:UPSTREAM_PORT. The first time a client sends bytes
that contain TRIGGER, the proxy forwards them, gives the server a moment to run the
command, then closes both sides without passing any reply back. Later connections are
forwarded untouched. Prints "ready" once listening and "cut" after the cut.
"""
import socket
import sys
import threading
import time

listen_port, upstream_port, trigger = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
cut_done = threading.Event()
lock = threading.Lock()


def pump(src, dst, watch, pair):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if watch:
                with lock:
                    fire = not cut_done.is_set() and trigger in data
                    if fire:
                        cut_done.set()
                        pair["cut"] = True
                if fire:
                    dst.sendall(data)
                    time.sleep(0.3)
                    print("cut", flush=True)
                    break
            elif pair.get("cut"):
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        pair = {}
        threading.Thread(target=pump, args=(client, upstream, True, pair), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False, pair), daemon=True).start()


main()
