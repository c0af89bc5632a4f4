"""Program evaluation cost under Pulumi's mocks, hardened vs bare.

For 1, 10, 50 and 200 hosts, runs the hardened program and a bare program
that creates the same number of plain droplets, in the same process, and
prints the median wall time of each, their ratio, and the user_data size per
host. Target: ratio under 1.5 at every size, growing no faster than linearly.

    .venv/bin/python -m bench.program_eval [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
warnings.filterwarnings("ignore", category=DeprecationWarning)

from offline.mock_engine import config_from_stack_file, run_program

ROLES = ("web", "web", "web", "db")


def config_for(n: int) -> dict:
    config = copy.deepcopy(config_from_stack_file(ROOT / "Pulumi.dev.yaml"))
    hosts = [{"name": "bastion-1", "role": "bastion"}]
    hosts += [{"name": f"h-{i}", "role": ROLES[i % len(ROLES)]} for i in range(1, n)]
    config["hardened-do:hosts"] = hosts
    # One reboot minute per host of a role: 150 web hosts need a wider window.
    config["hardened-do:unattended_upgrades"] = {
        **config.get("hardened-do:unattended_upgrades", {}), "reboot_window_minutes": 180,
    }
    return config


def timed(config: dict, program: Path) -> tuple[float, object]:
    start = time.perf_counter()
    plan = run_program(config, program=program)
    return time.perf_counter() - start, plan


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="1,10,50,200")
    args = parser.parse_args()
    print(
        f"{'hosts':>5} {'hardened s':>11} {'bare s':>8} {'ratio':>6} {'resources':>10} "
        f"{'ms/res hardened':>16} {'ms/res bare':>12} {'user_data B/host (max)':>23}"
    )
    for n in [int(s) for s in args.sizes.split(",")]:
        config = config_for(n)
        hardened, bare = [], []
        for _ in range(args.repeat):
            # Interleaved so drift on a busy machine hits both sides alike.
            t, plan = timed(config, ROOT / "__main__.py")
            hardened.append(t)
            t, bare_plan = timed(config, ROOT / "bench" / "bare_program.py")
            bare.append(t)
        h, b = statistics.median(hardened), statistics.median(bare)
        droplets = plan.of_type("digitalocean:index/droplet:Droplet")
        sizes = [len(d.inputs["userData"].encode()) for d in droplets]
        per_h = 1000 * h / len(plan.resources)
        per_b = 1000 * b / len(bare_plan.resources)
        print(
            f"{n:>5} {h:>11.3f} {b:>8.3f} {h / b:>6.2f} {len(plan.resources):>10} "
            f"{per_h:>16.2f} {per_b:>12.2f} {max(sizes):>23}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
