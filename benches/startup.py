#!/usr/bin/env python3
"""Start-up to the first 200: spawn `otk-mock serve`, poll get-journey over a raw socket (no
client process per attempt, so the poll itself costs well under a millisecond), print the
median and every run in milliseconds. Used by benches/load.sh.

    benches/startup.py target/release/otk-mock PORT [RUNS]
"""
import socket, subprocess, sys, time, os
binary, port = sys.argv[1], int(sys.argv[2])
req = (b"POST /api/v3/otk-service/get-journey/startup-1 HTTP/1.1\r\nHost: x\r\n"
       b"Authorization: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
times = []
for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 5):
    env = dict(os.environ, RUST_LOG="warn")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}"], env=env)
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.sendall(req)
            head = s.recv(12)
            s.close()
            if head.startswith(b"HTTP/1.1 200"):
                break
        except OSError:
            time.sleep(0.0005)
        if time.perf_counter() - t0 > 10:
            p.kill(); sys.exit("not ready within 10 s")
    times.append((time.perf_counter() - t0) * 1000)
    p.terminate(); p.wait()
times.sort()
print(f"{times[len(times)//2]:.0f} " + " ".join(f"{t:.0f}" for t in times))
