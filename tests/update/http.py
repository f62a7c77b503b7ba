#!/usr/bin/env python3
"""HTTP helper of the live-update load tests (tests/update/update-load*.sh).

  http.py get PORT PATH
      one request; prints "STATUS<TAB>X-Served-By<TAB>BODY" (body stripped)
  http.py steady PORT CONNS STOPFILE
      CONNS keep-alive connections, each asking GET /count in a loop until
      STOPFILE exists. Each request is written in two pieces with a pause
      between them, so an update often freezes the server between the
      halves (a partially read request must survive the handover). Checks
      that every answer is 200 and that each connection sees the counter
      grow. Prints "requests=N errors=E reconnects=R" and exits 1 when
      E > 0. A connection is reopened only when the server said
      "Connection: close" (notify-http drains that way); any other end of
      a connection is an error.
"""
import os
import socket
import sys
import threading
import time


def read_response(f):
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body.decode()


def get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    r = read_response(s.makefile("rb"))
    s.close()
    if r is None:
        print("no answer")
        return 1
    status, headers, body = r
    print(f"{status}\t{headers.get('x-served-by', '')}\t{body.strip()}")
    return 0


def steady(port, conns, stopfile):
    totals = {"requests": 0, "errors": 0, "reconnects": 0}
    lock = threading.Lock()

    def worker(n):
        req, err, rec, last = 0, 0, 0, -1
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        while not os.path.exists(stopfile):
            try:
                s.sendall(b"GET /count HTTP/1.1\r\nHost: t\r\n")
                time.sleep(0.002)
                s.sendall(b"\r\n")
                r = read_response(f)
            except OSError as e:
                print(f"# connection {n}: {e}", file=sys.stderr)
                r = None
            if r is None:
                err += 1
                print(f"# connection {n}: closed without an answer", file=sys.stderr)
                break
            status, headers, body = r
            req += 1
            value = int(body) if body.strip().isdigit() else -1
            if status != 200 or value <= last:
                err += 1
                print(f"# connection {n}: status {status} body {body!r} after {last}",
                      file=sys.stderr)
            last = value
            if headers.get("connection", "").lower() == "close":
                s.close()
                rec += 1
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                f = s.makefile("rb")
        s.close()
        with lock:
            totals["requests"] += req
            totals["errors"] += err
            totals["reconnects"] += rec

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("requests={requests} errors={errors} reconnects={reconnects}".format(**totals))
    return 1 if totals["errors"] else 0


if __name__ == "__main__":
    if sys.argv[1] == "get":
        sys.exit(get(int(sys.argv[2]), sys.argv[3]))
    if sys.argv[1] == "steady":
        sys.exit(steady(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
    sys.exit(2)
