"""``worker.parallel``: forked children, their messages, their end (finished, died, failed)
and a stop that lets each finish what it has in hand."""

from __future__ import annotations

import os
import signal
import time

from worker import parallel


def _collect(children):
    got: dict[int, list] = {}
    ended: dict[int, bool] = {}
    for number, kind, payload in children.messages():
        if kind == parallel.ENDED:
            ended[number] = payload
        else:
            got.setdefault(number, []).append((kind, payload))
    return got, ended


def test_each_child_works_sends_and_finishes():
    def work(number, send, stop):
        for k in range(3):
            send("item", (number, k, os.getpid()))

    got, ended = _collect(parallel.fork(2, work))
    assert ended == {0: True, 1: True}
    assert [p[:2] for _, p in got[0]] == [(0, 0), (0, 1), (0, 2)] and [p[:2] for _, p in got[1]] == [(1, 0), (1, 1), (1, 2)]
    pids = {p[2] for items in got.values() for _, p in items}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_child_that_dies_or_raises_has_not_finished():
    def work(number, send, stop):
        send("started", number)
        if number == 0:
            os._exit(9)  # killed in the middle of its work
        raise RuntimeError("a bug")

    got, ended = _collect(parallel.fork(2, work))
    assert ended == {0: False, 1: False}
    assert got == {0: [("started", 0)], 1: [("started", 1)]}


def test_stop_lets_each_child_finish_what_it_has_in_hand():
    def work(number, send, stop):
        send("ready", number)
        while not stop.is_set():  # a batch after another until asked to stop
            time.sleep(0.01)
        send("finished its batch", number)

    children = parallel.fork(2, work)
    messages = children.messages()
    assert {next(messages)[2], next(messages)[2]} == {0, 1}  # both at work
    children.stop(grace_s=10)
    rest = list(messages)
    assert sorted(p for _, kind, p in rest if kind == "finished its batch") == [0, 1]
    assert sorted((n, p) for n, kind, p in rest if kind == parallel.ENDED) == [(0, True), (1, True)]


def test_a_child_that_ignores_the_stop_is_killed_after_the_grace():
    def work(number, send, stop):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to the stop
        send("ready", number)
        time.sleep(60)

    children = parallel.fork(1, work)
    messages = children.messages()
    next(messages)
    t0 = time.monotonic()
    children.stop(grace_s=0.5)
    assert time.monotonic() - t0 < 10
    assert [(kind, p) for _, kind, p in messages] == [(parallel.ENDED, False)]


def test_a_fork_that_fails_stops_the_children_already_started(monkeypatch):
    import multiprocessing.context

    started = []
    real_start = multiprocessing.context.ForkProcess.start

    def start(self):
        if started:
            raise OSError(11, "Resource temporarily unavailable")  # the second fork fails
        real_start(self)
        started.append(self)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start)

    def work(number, send, stop):
        while not stop.is_set():
            time.sleep(0.01)

    try:
        parallel.fork(2, work)
    except OSError:
        pass
    else:
        raise AssertionError("the failed fork was not reported")
    assert len(started) == 1 and not started[0].is_alive()  # asked to stop (before it began, SIGTERM ends it at once)


def test_leaving_the_block_on_an_exception_stops_the_children():
    def work(number, send, stop):
        send("ready", number)
        while not stop.is_set():
            time.sleep(0.01)

    try:
        with parallel.fork(2, work) as children:
            messages = children.messages()
            next(messages), next(messages)  # both at work
            raise KeyboardInterrupt  # Ctrl-C while the command reads their messages
    except KeyboardInterrupt:
        pass
    assert all(not c.process.is_alive() for c in children.children)
    assert all(c.process.exitcode == 0 for c in children.children)  # each finished what it had in hand
