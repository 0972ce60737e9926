"""Listing a large prefix on an S3-compatible server (issue #14, item 6): `fs.find`, one chain of listing
requests, against `curator_core.listing.find_files`, which lists the prefix's sub-folders side by side.
Prints figures; not a test.

The server is moto's standalone S3 server on 127.0.0.1 (its own process). It answers in well under a
millisecond of network time, so what is measured is mostly the server's own work per request: on object
storage across a network each request also waits a round trip (tens of ms), which concurrency hides and
a chain pays once per 1,000 keys. `--latency-ms` adds that wait to every request (a TCP proxy in front of the
server holds each chunk a client sends), to show the effect at a given round-trip time.

Layout: `--folders` sub-folders (upload batches) of `--files` files each, at two sizes to show growth.

Run: .venv/bin/python benchmarks/listing.py [--sizes 8x500 32x500] [--latency-ms 0 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import time
import uuid


def _server() -> tuple[subprocess.Popen, dict]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _listening(port, "moto server")
    return process, {"key": "k", "secret": "s", "endpoint_url": f"http://127.0.0.1:{port}"}


def _listening(port: int, what: str, timeout_s: float = 60.0) -> None:
    """Return once something accepts connections on `port`."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start on port {port}")


def proxy(listen: int, target: int, latency_s: float) -> None:
    """A TCP proxy to the server that holds every chunk a client sends for `latency_s` before passing it
    on: each request waits a round trip, as across a network. Runs in its own process."""
    import asyncio

    async def pipe(reader, writer, delay: float) -> None:
        try:
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(
            pipe(client_reader, server_writer, latency_s), pipe(server_reader, client_writer, 0)
        )

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_latency(options: dict, latency_ms: float) -> tuple[subprocess.Popen | None, dict]:
    if not latency_ms:
        return None, options
    target = int(options["endpoint_url"].rsplit(":", 1)[1])
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--proxy", str(port), str(target), str(latency_ms / 1000)]
    )
    _listening(port, "latency proxy")
    return process, {**options, "endpoint_url": f"http://127.0.0.1:{port}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["8x500", "32x500"], help="FOLDERSxFILES")
    parser.add_argument("--latency-ms", nargs="+", type=float, default=[0.0, 20.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--proxy", nargs=3, help=argparse.SUPPRESS)  # internal: LISTEN TARGET LATENCY_S
    args = parser.parse_args()
    if args.proxy:
        return proxy(int(args.proxy[0]), int(args.proxy[1]), float(args.proxy[2]))

    import s3fs

    from curator_core.listing import find_files

    process, options = _server()
    try:
        setup = s3fs.S3FileSystem(**options)
        setup.mkdir("bench")
        print(
            "folders x files | latency | fs.find s (median) | find_files s (median) | ratio find_files/find"
        )
        for size in args.sizes:
            folders, files = (int(n) for n in size.split("x"))
            root = f"bench/{uuid.uuid4().hex[:8]}"
            setup.pipe(
                {f"{root}/batch-{f:04d}/v{i:05d}.mp4": b"x" for f in range(folders) for i in range(files)}
            )
            for latency in args.latency_ms:
                relay, reach = _with_latency(options, latency)
                flat, fanned = [], []
                for _ in range(args.repeats):
                    for runner, times in (
                        (lambda fs, root=root: fs.find(root, detail=True, withdirs=False), flat),
                        (lambda fs, root=root: find_files(fs, root), fanned),
                    ):
                        fs = s3fs.S3FileSystem(**reach, skip_instance_cache=True)
                        start = time.perf_counter()
                        found = runner(fs)
                        times.append(time.perf_counter() - start)
                        assert len(found) == folders * files, len(found)
                if relay:
                    relay.terminate()
                a, b = statistics.median(flat), statistics.median(fanned)
                print(f"{folders} x {files} | {latency:g} ms | {a:.3f} | {b:.3f} | {b / a:.2f}")
    finally:
        process.terminate()


if __name__ == "__main__":
    main()
