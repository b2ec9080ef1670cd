#!/usr/bin/env python3
"""QEMU guestfwd's command (`guestfwd=tcp:IP:PORT-cmd:relay.py PORT`): one
guest connection on stdin/stdout, relayed to 127.0.0.1:PORT."""
import os
import socket
import sys
import threading

server = socket.create_connection(("127.0.0.1", int(sys.argv[1])))


def upstream():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        server.sendall(data)
    try:
        server.shutdown(socket.SHUT_WR)
    except OSError:
        pass


threading.Thread(target=upstream, daemon=True).start()
while True:
    data = server.recv(65536)
    if not data:
        break
    os.write(1, data)
