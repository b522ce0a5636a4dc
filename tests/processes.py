"""Which operating-system processes are earwig's actors, for tests that look at them."""

from __future__ import annotations

import psutil


def actor_processes(supervisor_pid: int) -> list[psutil.Process]:
    """The actors of the supervisor in process ``supervisor_pid``: the children of its fork
    server (multiprocessing's, which forks every actor), not the server itself nor the
    resource tracker."""
    servers = [child for child in psutil.Process(supervisor_pid).children()
               if "multiprocessing.forkserver" in " ".join(child.cmdline())]
    return [actor for server in servers for actor in server.children()]
