"""A run whose processes attach one ring at the same moment, many times (``test_segments``):
what Python's resource tracker says on stderr is the test's evidence."""

import multiprocessing as mp
import sys

from earwig.shm import segments


def attach_many(name: str, times: int, go) -> None:
    go.wait()
    for _ in range(times):
        segments.attach(name).close()


if __name__ == "__main__":
    name = segments.run_prefix() + "attached"
    segment = segments.create(name, 4096)
    context = mp.get_context("spawn")
    go = context.Event()
    workers = [context.Process(target=attach_many, args=(name, int(sys.argv[1]), go)) for _ in range(4)]
    for worker in workers:
        worker.start()
    go.set()
    for worker in workers:
        worker.join()
    segment.close()
    segments.unlink(segment)
    sys.exit(max(worker.exitcode for worker in workers))
