#!/usr/bin/env python3
"""A seccomp agent for the tests (runtime-spec "listenerPath"): listens on SOCKET, takes one
container process state with its listener fd (SCM_RIGHTS), writes the state to STATE_FILE,
then answers every notification with -ERRNO until the container is gone.

usage: seccomp_agent.py SOCKET STATE_FILE ERRNO"""
import array
import fcntl
import os
import select
import socket
import struct
import sys

NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes


def take_listener(path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    conn, _ = srv.accept()
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_LEN(fds.itemsize))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    conn.close()
    srv.close()
    return data, fds[0]


def serve(fd, err):
    while True:
        r, _, _ = select.select([fd], [], [], 20)
        if not r:
            return
        buf = bytearray(80)
        try:
            fcntl.ioctl(fd, NOTIF_RECV, buf)
        except OSError:
            return  # the filtered process is gone
        notif_id = struct.unpack_from("=Q", buf, 0)[0]
        resp = bytearray(struct.pack("=QqiI", notif_id, 0, -err, 0))
        try:
            fcntl.ioctl(fd, NOTIF_SEND, resp)
        except OSError:
            pass


def main():
    path, state_file, err = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data, fd = take_listener(path)
    with open(state_file + ".tmp", "wb") as f:
        f.write(data)
    os.rename(state_file + ".tmp", state_file)
    serve(fd, err)


main()
