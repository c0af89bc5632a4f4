"""Runs on the VPC peer guest (python3 of the image, standard library only).

Every second, from the moment it starts until it is stopped, it probes the
target and prints one JSON line per second:

    {"t": <seconds since start>, "<probe>": true|false, ...}

true means the target *answered*: a TCP connection was accepted, or sshd
listed "password" among the authentication methods that can continue.
Which answers are violations is decided by the bench, not here.

    python3 exposure_probe.py TARGET_IP IN_VPC_SRC OUTSIDE_SRC PORTS...
"""

import json
import socket
from concurrent.futures import ThreadPoolExecutor
import subprocess
import sys
import threading
import time


def tcp(target: str, port: int, source: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.6)
    try:
        s.bind((source, 0))
        s.connect((target, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def ssh_offers_password(target: str) -> bool:
    try:
        out = subprocess.run(
            ["ssh", "-v", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
             "-o", "PreferredAuthentications=password,keyboard-interactive",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=2", f"probe@{target}", "true"],
            capture_output=True, text=True, timeout=8,
        ).stderr
    except subprocess.TimeoutExpired:
        return False
    for line in out.splitlines():
        if "Authentications that can continue:" in line:
            return "password" in line or "keyboard-interactive" in line
    return False


def main() -> None:
    target, inside, outside, *ports = sys.argv[1:]
    start = time.monotonic()
    state = {"ssh_password": False}

    def ssh_loop() -> None:
        # A handshake costs the emulated target real CPU: one at a time, at
        # most one a second.
        while True:
            t0 = time.monotonic()
            state["ssh_password"] = ssh_offers_password(target)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))

    threading.Thread(target=ssh_loop, daemon=True).start()
    probes = [(f"{where}:{port}", int(port), src) for port in ports for where, src in (("vpc", inside), ("outside", outside))]
    pool = ThreadPoolExecutor(max_workers=len(probes))
    second = 0
    while True:
        # In parallel: a dropped SYN waits out the whole timeout.
        results = pool.map(lambda p: tcp(target, p[1], p[2]), probes)
        row = {"t": second, "wall": round(time.time(), 3)}
        row.update({name: ok for (name, _, _), ok in zip(probes, results)})
        row["ssh_password"] = state["ssh_password"]
        print(json.dumps(row), flush=True)
        second += 1
        time.sleep(max(0.0, start + second - time.monotonic()))


if __name__ == "__main__":
    main()
