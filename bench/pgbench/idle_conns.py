#!/usr/bin/python3
"""Open N keep-alive connections to 127.0.0.1:PORT, make one request on each
(so each is a real HTTP keep-alive connection that went through the proxy),
then hold them idle until SIGTERM/SIGINT or stdin closes.

Prints `READY <ok> <failed>` on stdout once every connection is set up.
stdlib only; run as a script by pgbench.scenarios (idle-connection scenario and memory test).
"""
import argparse
import asyncio
import resource
import signal
import sys


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def one(port, path, sem, conns):
    async with sem:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            w.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle\r\n\r\n".encode())
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(r.readexactly(length), 10)
            conns.append((r, w))
            return True
        except Exception:
            return False


async def main(args):
    conns = []
    sem = asyncio.Semaphore(args.parallel)
    results = await asyncio.gather(*(one(args.port, args.path, sem, conns) for _ in range(args.count)))
    ok = sum(1 for x in results if x)
    print(f"READY {ok} {len(results) - ok}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
    try:
        await asyncio.wait_for(stop.wait(), args.max_hold)
    except asyncio.TimeoutError:
        pass
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--path", default="/ok")
    ap.add_argument("--parallel", type=int, default=256)
    ap.add_argument("--max-hold", type=float, default=600.0, help="hard upper bound on holding time (s)")
    raise_nofile()
    asyncio.run(main(ap.parse_args()))
