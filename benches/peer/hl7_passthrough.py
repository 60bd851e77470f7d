"""The pass-through a team would write instead of an integration engine: Python asyncio
with the `hl7` package (PyPI). It is the comparison peer of `cargo bench --bench e2e`.

For every inbound MLLP connection it opens one connection to the downstream system,
then for each message: parse it, set MSH-5 (receiving application), forward it, wait
for the downstream ACK, and answer the sender with AA (or AE if the downstream did
not accept it).

    python hl7_passthrough.py LISTEN_PORT DOWNSTREAM_HOST DOWNSTREAM_PORT

LISTEN_PORT 0 picks a free port. The port listened on is printed on stdout once the
server accepts connections. Ends on SIGTERM/SIGINT.
"""

import asyncio
import signal
import sys

import hl7
from hl7.mllp import open_hl7_connection, start_hl7_server

# asyncio's default 64 KiB buffer limit refuses larger messages
LIMIT = 16 * 1024 * 1024

# The running handlers. asyncio keeps only weak references to tasks, and the hl7
# package's server does not keep the handler task it creates: without this set, a
# handler waiting for the downstream ACK is a garbage cycle (task, reader, waiter),
# the collector destroys it mid-message and the sender's connection is reset (seen
# at 64 connections: about 1 % of the connections, each losing its message's ACK).
HANDLERS = set()


def main():
    listen_port, down_host, down_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    async def handle(reader, writer):
        task = asyncio.current_task()
        HANDLERS.add(task)
        down_reader, down_writer = await open_hl7_connection(
            down_host, down_port, limit=LIMIT
        )
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                message.assign_field("PAS", "MSH", 1, 5)
                down_writer.writemessage(message)
                await down_writer.drain()
                ack = await down_reader.readmessage()
                code = str(ack.segment("MSA")[1])
                writer.writemessage(message.create_ack("AA" if code == "AA" else "AE"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            down_writer.close()
            writer.close()
            HANDLERS.discard(task)

    async def serve():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await start_hl7_server(handle, "127.0.0.1", listen_port, limit=LIMIT)
        print(server.sockets[0].getsockname()[1], flush=True)
        async with server:
            await stop.wait()
            for task in list(HANDLERS):
                task.cancel()
            await asyncio.gather(*HANDLERS, return_exceptions=True)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
