"""`python -m wan_studio cluster ...`: a Ray cluster whose workers run the studio's jobs
(wan_studio/runtime/cluster.py; needs `pip install 'wan-studio[cluster]'`).

    cluster start [--port 6379]     on the head machine: start Ray's head here, print how to join
    cluster status [--ray ADDRESS]  the cluster's machines, GPUs and CPUs
    cluster stop                    stop Ray on this machine

Then on each GPU machine (with wan-studio installed): `ray start --address HEAD:6379`, and on the
head: `python app.py --ray auto`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from wan_studio.errors import StudioError


def add_cluster_parser(sub) -> None:
    cluster = sub.add_parser("cluster", help="a Ray cluster whose workers run the studio's jobs: start, status, stop")
    actions = cluster.add_subparsers(dest="cluster_command", required=True)
    start = actions.add_parser("start", help="start Ray's head on this machine and print how to join it")
    start.add_argument("--port", type=int, default=6379)
    start.add_argument("--node-ip", help="the address the other machines reach this one at (default: Ray's guess)")
    status = actions.add_parser("status", help="the cluster's machines, GPUs and CPUs")
    status.add_argument("--ray", default="auto", help="its address, host:port (default: the one this machine joined)")
    actions.add_parser("stop", help="stop Ray on this machine")


def _ray_command() -> str:
    found = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if found is None:
        raise StudioError("A cluster needs Ray: pip install 'wan-studio[cluster]' (or: pip install ray).")
    return found


def cmd_cluster(args, settings) -> int:
    if args.cluster_command == "start":
        command = [_ray_command(), "start", "--head", f"--port={args.port}", "--disable-usage-stats",
                   "--include-dashboard=false"]
        if args.node_ip:
            command.append(f"--node-ip-address={args.node_ip}")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise StudioError(f"Ray's head did not start: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        where = args.node_ip or "<this machine's address>"
        print(f"The head runs here (port {args.port}). On each GPU machine, with wan-studio installed:\n"
              f"    ray start --address {where}:{args.port}\n"
              f"Then start the studio here:  python app.py --ray auto")
        return 0
    if args.cluster_command == "stop":
        subprocess.run([_ray_command(), "stop"], capture_output=True, text=True)
        print("Ray stopped on this machine.")
        return 0
    from wan_studio.runtime.cluster import connect

    connect(args.ray)
    import ray

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    total = ray.cluster_resources()
    print(f"{len(nodes)} machine(s), {int(total.get('GPU', 0))} GPU(s), {int(total.get('CPU', 0))} CPU(s)")
    for node in nodes:
        resources = node.get("Resources", {})
        print(f"  {node.get('NodeManagerAddress')}: {int(resources.get('GPU', 0))} GPU(s), "
              f"{int(resources.get('CPU', 0))} CPU(s)")
    return 0
