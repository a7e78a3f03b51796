"""python-websockets against ws-mio-server over wss: the server's certificate checked against
the run's CA, echo of text, binary and a large message, compression negotiated and used, a
ping answered, a clean close with 1000. Exits non-zero on any difference.

    python wss_client.py wss://127.0.0.1:PORT CA_FILE
"""

import asyncio
import ssl
import sys

from websockets.asyncio.client import connect


async def main(url, ca):
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["http/1.1"])
    async with connect(url, ssl=context, compression="deflate", max_size=4 << 20) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
        assert tls.selected_alpn_protocol() == "http/1.1", tls.selected_alpn_protocol()
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions, extensions

        await ws.send("hello over wss")
        assert await ws.recv() == "hello over wss"
        await ws.send(b"\x00\x01\x02binary")
        assert await ws.recv() == b"\x00\x01\x02binary"
        # Larger than a TLS record and than the server's read buffer, compressible.
        big = ("wss " * 300_000).encode()
        await ws.send(big)
        assert await ws.recv() == big
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)
        await ws.close(1000, "done")
        assert ws.close_code == 1000, ws.close_code
        print("python-websockets over wss: ok (%s)" % tls.version())


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 60))
