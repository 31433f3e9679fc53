"""A process pool for bulk reads: knows processes and tasks, not files.

A task is a list of items (a chunk) and a context the caller gives with it. Each worker has its
own pipe, so the parent always knows which tasks a worker holds. A worker that dies (killed, or
crashed in compiled code) costs only those: its tasks are retried one item at a time in a fresh
worker, and an item that dies a second time gets the result of `lost(item, exitcode)`. The
number of tasks dispatched but not yet handed to the caller is bounded, so memory does not grow
with the number of items, even when one slow task holds back an ordered stream.
"""
import collections
import multiprocessing
import os
import pickle
import signal
from multiprocessing.connection import wait

#: Tasks sent ahead to each worker, so that it never waits for the parent between two tasks.
PREFETCH = 2


def default_workers():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _context():
    # fork starts a worker in milliseconds and needs nothing pickled; elsewhere the default.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


class TaskFailed(Exception):
    """A task raised in a worker (a bug, not a bad file): the parent re-raises it."""


def _worker_main(conn, make_handler, args):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    handler = make_handler(*args)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        task_id, items, offset, context = message
        try:
            reply = (task_id, True, handler(items, offset, context))
        except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
            reply = (task_id, False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:   # a bug: say so
            conn.send((task_id, False, f"cannot send the results of {items!r}: "
                                       f"{type(exc).__name__}: {exc}"))


class _Slot:
    """One chunk of the caller's: its items, its context and, once every part is done, the
    results of the tasks that read it."""

    __slots__ = ("items", "context", "results", "notes", "missing")

    def __init__(self, items, context):
        self.items = items
        self.context = context
        self.results = []  # (offset of the task's first item, its result)
        self.notes = []
        self.missing = 1   # tasks not done: 1, or len(items) once split after a worker died


class _Worker:
    __slots__ = ("process", "conn", "inflight")

    def __init__(self, context, make_handler, args):
        parent_end, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, args=(child_end, make_handler, args),
                                       daemon=True)
        self.process.start()
        child_end.close()
        self.conn = parent_end
        self.inflight = {}  # task id -> (slot, index of the item or None for all, tries)

    def holds_retry(self):
        return any(tries > 1 for _slot, _index, tries in self.inflight.values())


def imap(chunks, workers, make_handler, args, lost, ordered=True, decode=None):
    """Yield `(items, context, results, notes)` for each `(items, context)` of `chunks`, where
    the handler `make_handler(*args)`, run in one of `workers` processes, returns `(result,
    notes)` for `handler(items, offset, context)`: its result for those items, and a list of
    notes (log records, say) on them. `results` is a list of `(offset, result)`: normally one,
    `(0, result)`; after a worker died with the chunk, one per item, `offset` being the item's
    index in `items`, and an item lost with its worker a second time has the result
    `lost(item, exitcode)`. In input order with `ordered`, else as they finish. The handler may
    send its result encoded: `decode(result)` gives it back, here."""
    processes = _context()
    pool = [_Worker(processes, make_handler, args) for _ in range(workers)]
    window = workers * PREFETCH * 4      # tasks dispatched but not yet yielded, at most
    queue = collections.deque()          # (slot, index, items, tries) not yet sent
    unreleased = {}                      # sequence number -> slot, until yielded
    source = iter(chunks)
    exhausted = False
    next_sequence = released = 0
    task_ids = iter(range(1 << 62))
    try:
        while True:
            while (not exhausted and len(unreleased) < window and
                   len(queue) < workers * PREFETCH):
                try:
                    items, context = next(source)
                except StopIteration:
                    exhausted = True
                    break
                slot = _Slot(items, context)
                unreleased[next_sequence] = slot
                next_sequence += 1
                queue.append((slot, None, items, 1))
            # every worker gets a task before any gets a second: none waits while another has
            # two (at the start, that was one task's time lost on every worker but the first)
            for level in range(PREFETCH):
                for worker in pool:
                    if not queue or len(worker.inflight) != level:
                        continue
                    # a retry runs alone, so that a second death names its one item
                    if worker.inflight and (queue[0][3] > 1 or worker.holds_retry()):
                        continue
                    slot, index, items, tries = queue.popleft()
                    task_id = next(task_ids)
                    worker.inflight[task_id] = (slot, index, tries)
                    try:
                        worker.conn.send((task_id, items, index or 0, slot.context))
                    except OSError:  # it died: found below, and its tasks retried
                        pass
            if ordered:
                while released in unreleased and unreleased[released].missing == 0:
                    slot = unreleased.pop(released)
                    released += 1
                    yield _done(slot)
            else:
                for sequence in [s for s, slot in unreleased.items() if slot.missing == 0]:
                    yield _done(unreleased.pop(sequence))
            if exhausted and not unreleased:
                return
            ready = set(wait([worker.conn for worker in pool] +
                             [worker.process.sentinel for worker in pool]))
            for number, worker in enumerate(pool):
                if worker.conn in ready or worker.process.sentinel in ready:
                    while _receive(worker, decode):
                        pass
                    if not worker.process.is_alive():
                        pool[number] = _Worker(processes, make_handler, args)
                        _requeue(worker, queue, lost)
    finally:
        _stop(pool)


def _done(slot):
    slot.results.sort(key=lambda part: part[0])
    return slot.items, slot.context, slot.results, slot.notes


def _receive(worker, decode):
    """Take one reply from `worker` if there is one; False when there is none (or it died)."""
    try:
        if not worker.conn.poll():
            return False
        task_id, ok, reply = worker.conn.recv()
    except (EOFError, OSError):
        return False
    if not ok:
        raise TaskFailed(reply)
    result, notes = reply
    if decode is not None:
        result = decode(result)
    slot, index, _tries = worker.inflight.pop(task_id)
    slot.notes.extend(notes)
    slot.results.append((index or 0, result))
    slot.missing -= 1
    return True


def _requeue(dead, queue, lost):
    """The tasks of a dead worker: each item is retried alone, and lost when it was alone."""
    dead.process.join()
    exitcode = dead.process.exitcode
    dead.conn.close()
    retries = []
    for slot, index, tries in dead.inflight.values():
        if index is None:
            slot.missing = len(slot.items)
            parts = range(len(slot.items))
        else:
            parts = (index,)
        for part in parts:
            if tries >= 2:
                slot.results.append((part, lost(slot.items[part], exitcode)))
                slot.missing -= 1
            else:
                retries.append((slot, part, [slot.items[part]], tries + 1))
    queue.extendleft(reversed(retries))


def _stop(pool):
    for worker in pool:
        try:
            worker.conn.send(None)
        except OSError:
            pass
    for worker in pool:
        worker.process.join(timeout=2)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()
