"""A process pool for bulk reads: knows processes and tasks, not files.

A task is a list of items (a chunk) and a context the caller gives with it. Each worker has its
own pipe, so the parent always knows which tasks a worker holds. A worker that dies (killed, or
crashed in compiled code) costs only those: its tasks are retried one item at a time in a fresh
worker, and an item that dies a second time gets the result of `lost(item, exitcode)`. The
number of tasks dispatched but not yet handed to the caller is bounded, so memory does not grow
with the number of items, even when one slow task holds back an ordered stream.

Why not `concurrent.futures` or loky: when one of their workers dies, every pending task fails
with the broken pool, and nothing says which task killed it; here a death costs its one file.

What keeps the pool from ever waiting on itself:
- the parent never blocks writing to a busy worker: a task goes to a worker that holds others
  only when the bytes sent ahead fit in its pipe (`PIPE_BUDGET`), so a worker blocked sending
  a large reply can never be waiting for a parent blocked sending it a task;
- the parent waits on every worker's pipe and process at once, and only when a task is in
  flight (checked on every pass);
- workers die with the parent, whatever ends it (`PR_SET_PDEATHSIG` on Linux; elsewhere they
  end at the EOF of their pipe), and are killed at once when the caller stops early (Ctrl-C,
  an error): a graceful stop is only for a run that finished.
"""
import collections
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler

#: Tasks sent ahead to each worker, so that it never waits for the parent between two tasks.
PREFETCH = 2
#: Bytes of tasks a worker may hold unread in its pipe: the smallest pipe buffer of Linux.
PIPE_BUDGET = 65536
_PR_SET_PDEATHSIG = 1


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
    """A task raised in a worker (a bug, or an output that cannot be written; not a bad file):
    the parent re-raises it. `error` is the worker's exception when it could be sent (an
    OSError keeps its errno and file name), else None."""

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error


def _die_with_parent(parent):
    """Ask the kernel to kill this process when the parent dies (Linux), then check the parent
    did not die before that."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    if os.getppid() != parent:
        os._exit(1)


def _worker_main(conn, make_handler, args, parent):
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)     # not the parent's handlers, if it had any
    handler = make_handler(*args)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        task_id, items, offset, context = pickle.loads(message)
        try:
            reply = (task_id, True, handler(items, offset, context))
        except Exception as exc:  # noqa: BLE001 - sent to the parent, which raises it
            reply = (task_id, False, (f"{type(exc).__name__}: {exc}",
                                      exc if isinstance(exc, OSError) else None))
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:   # a bug: say so
            conn.send((task_id, False, (f"cannot send the results of {items!r}: "
                                        f"{type(exc).__name__}: {exc}", None)))


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
    __slots__ = ("process", "conn", "inflight", "unread")

    def __init__(self, context, make_handler, args):
        parent_end, child_end = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, daemon=True,
                                       args=(child_end, make_handler, args, os.getpid()))
        self.process.start()
        child_end.close()
        self.conn = parent_end
        self.inflight = {}  # task id -> (slot, index of the item or None for all, tries, bytes)
        self.unread = 0     # bytes of the tasks in flight

    def holds_retry(self):
        return any(task[2] > 1 for task in self.inflight.values())

    def send(self, task_id, task, data):
        """Send a task, unless it might not fit in the pipe of a worker busy with others."""
        if self.inflight and self.unread + len(data) > PIPE_BUDGET:
            return False
        self.inflight[task_id] = task + (len(data),)
        self.unread += len(data)
        try:
            self.conn.send_bytes(data)
        except OSError:  # it died: found by the caller's wait, and its tasks retried
            pass
        return True


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
    finished = False
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
                    slot, index, items, tries = queue[0]
                    task_id = next(task_ids)
                    data = bytes(ForkingPickler.dumps((task_id, items, index or 0,
                                                       slot.context)))
                    if worker.send(task_id, (slot, index, tries), data):
                        queue.popleft()
            yielded = False
            if ordered:
                while released in unreleased and unreleased[released].missing == 0:
                    slot = unreleased.pop(released)
                    released += 1
                    yielded = True
                    yield _done(slot)
            else:
                for sequence in [s for s, slot in unreleased.items() if slot.missing == 0]:
                    yielded = True
                    yield _done(unreleased.pop(sequence))
            if exhausted and not unreleased:
                finished = True
                return
            if not any(worker.inflight for worker in pool):
                # what was yielded may have made room for more chunks: take and send them
                # before waiting (waiting now, with nothing in flight, would never end)
                if yielded:
                    continue
                raise RuntimeError("the pool has no task in flight and none to send (a bug)")
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
        _stop(pool, finished)


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
        raise TaskFailed(*reply)
    result, notes = reply
    if decode is not None:
        result = decode(result)
    slot, index, _tries, size = worker.inflight.pop(task_id)
    worker.unread -= size
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
    for slot, index, tries, _size in dead.inflight.values():
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


def _stop(pool, graceful):
    """End the workers: after a finished run, each is told to stop and given 2 s; otherwise (the
    caller stopped early: Ctrl-C, a signal, an error) each is killed at once."""
    if graceful:
        for worker in pool:
            try:
                worker.conn.send_bytes(b"")
            except OSError:
                pass
    for worker in pool:
        if graceful:
            worker.process.join(timeout=2)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
