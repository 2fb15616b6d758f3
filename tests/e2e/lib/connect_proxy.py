"""connect_proxy.py LOG: an HTTP CONNECT proxy on 127.0.0.1 for the e2e tests.

Prints its port on the first line of stdout, then tunnels each CONNECT to the
address it names and appends the request line to LOG ("CONNECT host:port
HTTP/1.1"), so a test can tell which connections went through it. Anything
but CONNECT gets a 405. Idle tunnels end after 60 s, and the proxy itself
after 15 minutes should the test that started it not kill it.
"""
import os, select, socket, sys, threading
threading.Timer(900, lambda: os._exit(0)).start()
log = open(sys.argv[1], "a")
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print(srv.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 60)
            if not r:
                return
            for s in r:
                d = s.recv(65536)
                if not d:
                    return
                (b if s is a else a).sendall(d)
    except OSError:
        pass
    finally:
        a.close(); b.close()
def serve(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            return c.close()
        head += d
    line = head.split(b"\r\n")[0].decode()
    log.write(line + "\n"); log.flush()
    method, target, _ = line.split(" ", 2)
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n"); return c.close()
    host, port = target.rsplit(":", 1)
    u = socket.create_connection((host, int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    pump(c, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
