"""Boot time of a Debian 12 guest under QEMU (TCG) for a given user-data.

Prints, per user-data, seconds from qemu start to: sshd answering, the first
successful login (when we can log in), and cloud-init's final stage being
done, plus the guest's own uptime at that point and cloud-init's status.

    python -m bench.vm_boot                              # the stock minimal config
    python -m bench.vm_boot --user-data minimal --user-data hardened=web-1.yaml
    python -m bench.vm_boot --user-data b.yaml --user ops --key ~/.ssh/id_ed25519 --runs 3 --json

Without --user/--key a fresh key is handed to the guest as the droplet's SSH
key (meta-data, root login as on a fresh droplet); if the user-data forbids
that, the login column stays empty and cloud-init's status comes from the
console. Guests boot one after another so they do not compete for the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path


from tests.testbed.image import build_image
from tests.testbed.userdata import minimal_user_data
from tests.testbed.vm import Cluster, GuestError, make_ssh_key

COLUMNS = ("ssh_banner", "ssh_login", "cloud_init_done", "cloud_init_done_guest_uptime")


def boot_once(image, label: str, user_data: str, *, user: str, key, public_keys, timeout: float) -> dict:
    row: dict = {"user_data": label}
    with Cluster(image=image) as cluster:
        guest = cluster.add("bench", user_data, ssh_user=user, ssh_key=key, public_keys=public_keys)
        cluster.start()
        try:
            guest.wait_for_ssh(timeout, login=False)
            try:
                # a bounded wait: a config that locks this login out must not stall the bench
                guest.wait_for_ssh(min(timeout, 180), login=True)
            except GuestError:
                pass
            status = guest.wait_for_cloud_init(timeout, key=key if "ssh_login" in guest.timings else False)
            row["status"] = status.status
            if not status.ok:
                row["detail"] = status.detail
        except GuestError as e:
            row["status"] = "failed"
            row["detail"] = str(e)
        row.update({k: round(v, 1) for k, v in guest.timings.items()})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--user-data", action="append", default=[], metavar="[LABEL=]FILE",
                    help="user-data to boot (repeatable); `minimal` is the built-in stock config, the default")
    ap.add_argument("--user", help="user to log in as with a user-data file (default root; tester for `minimal`)")
    ap.add_argument("--key", help="private key for that user (default: a fresh key)")
    ap.add_argument("--runs", type=int, default=1, help="boots per user-data; the table shows the median")
    ap.add_argument("--timeout", type=float, default=1500, help="seconds to wait for each stage")
    ap.add_argument("--json", action="store_true", help="print every run as JSON lines instead of a table")
    args = ap.parse_args(argv)

    image = build_image()
    with tempfile.TemporaryDirectory(prefix="hardened-do-bench-") as tmp:
        key = Path(args.key).expanduser() if args.key else make_ssh_key(tmp).path
        pub = Path(f"{key}.pub")
        if not pub.exists():
            ap.error(f"--key {key}: the public key {pub} must sit next to it")
        public_keys = [pub.read_text().strip()]
        inputs: list[tuple[str, str, str]] = []
        for spec in args.user_data or ["minimal"]:
            if spec == "minimal":
                inputs.append(("minimal", minimal_user_data(public_keys[0], user="tester"), "tester"))
                continue
            label, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
            inputs.append((label, Path(path).read_text(), args.user or "root"))

        rows = []
        for label, user_data, user in inputs:
            for run in range(args.runs):
                row = boot_once(image, label, user_data, user=user, key=key,
                                public_keys=public_keys, timeout=args.timeout)
                row["run"] = run + 1
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"# {label} run {run + 1}: " + ", ".join(
                        f"{k}={row[k]}" for k in (*COLUMNS, "status") if k in row), file=sys.stderr, flush=True)

    if not args.json:
        header = f"{'user-data':<16}{'runs':>5}{'ssh answers':>13}{'ssh login':>11}{'cloud-init done':>17}{'guest uptime':>14}  status"
        print(header)
        for label, _, _ in inputs:
            mine = [r for r in rows if r["user_data"] == label]

            def med(col: str) -> str:
                vals = [r[col] for r in mine if col in r]
                return f"{statistics.median(vals):.1f}" if vals else "-"

            statuses = ",".join(sorted({r["status"] for r in mine}))
            print(f"{label:<16}{len(mine):>5}{med('ssh_banner'):>13}{med('ssh_login'):>11}"
                  f"{med('cloud_init_done'):>17}{med('cloud_init_done_guest_uptime'):>14}  {statuses}")
        print("seconds from qemu start (TCG); guest uptime = cloud-init's own 'Up N seconds'")
    return 0 if all(r["status"] == "done" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
