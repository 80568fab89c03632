# -*- coding: utf-8 -*-
"""Scenario for the asyncio test: one event loop with named tasks parked in
every way the issue names, then the loop's thread parks inside a task.

Usage: python asyncio_tasks.py RECORD.json [--python-tasks]

A second thread runs a second event loop (a task awaiting another) and parks
the same way: the recording lists both loops with their threads' TIDs.

With --python-tasks every task is Lib/asyncio/tasks.py's pure-Python Task
(asyncio.tasks._PyTask) instead of _asyncio's C task.

Tasks: a chain of three coroutines parked in asyncio.sleep; a task awaiting
another task; a gather of two tasks; a task blocked on an asyncio.Lock held by
another; one waiting on an Event; one with a non-ASCII name; one in
asyncio.wait_for of another task; a TaskGroup of two (3.11+). Once every task
is suspended, the main task records from inside the process what each task is
(asyncio.all_tasks(): name, state, the cr_await chain innermost first with
each coroutine's function, qualname, file and cr_frame.f_lineno, the names of
the tasks its _fut_waiter stands for) in RECORD.json.asyncio.json, starts the
stack recorder (recording.py) and parks the loop's thread (the main thread)
in a blocking call. Runs on CPython 3.8+.
"""
import asyncio
import json
import os
import sys
import threading

import recording

NON_ASCII = u"tâche-λ-线-\U00020000"
# Both task classes: _asyncio's (asyncio.Task) and the pure-Python one.
TASK_TYPES = (asyncio.Task, asyncio.tasks._PyTask)
PYTHON_TASKS = "--python-tasks" in sys.argv[2:]


def current_task():
    """asyncio.current_task(); 3.14's C one does not see pure-Python tasks."""
    if PYTHON_TASKS and hasattr(asyncio.tasks, "_py_current_task"):
        return asyncio.tasks._py_current_task()
    return asyncio.current_task()


def all_tasks():
    if PYTHON_TASKS and hasattr(asyncio.tasks, "_py_all_tasks"):
        return asyncio.tasks._py_all_tasks()
    return asyncio.all_tasks()
SLEEP = recording.PARK_SECONDS


async def inner():
    await asyncio.sleep(SLEEP)


async def middle():
    await inner()


async def outer():
    await middle()


async def sleeper():
    await asyncio.sleep(SLEEP)


async def await_task(task):
    await task


async def gather_two(a, b):
    await asyncio.gather(a, b)


async def hold_lock(lock, held):
    async with lock:
        held.set()
        await asyncio.sleep(SLEEP)


async def wait_for_lock(lock, held):
    await held.wait()
    async with lock:
        pass


async def wait_for_event(event):
    await event.wait()


async def wait_for_task(task):
    await asyncio.wait_for(task, SLEEP)


async def task_group():
    async with asyncio.TaskGroup() as group:
        group.create_task(sleeper(), name="group-child-1")
        group.create_task(sleeper(), name="group-child-2")


def coroutine_stack(coro):
    """The cr_await chain from the task's coroutine, innermost first."""
    frames = []
    while coro is not None and hasattr(coro, "cr_frame") and coro.cr_frame is not None:
        code = coro.cr_code
        frames.append({
            "function": code.co_name,
            "qualname": coro.__qualname__,
            "file": code.co_filename,
            "line": coro.cr_frame.f_lineno,
        })
        coro = coro.cr_await
    frames.reverse()
    return frames


def innermost_coroutine(coro):
    while getattr(coro, "cr_await", None) is not None and hasattr(coro.cr_await, "cr_frame"):
        coro = coro.cr_await
    return coro


def awaited_names(task):
    """The tasks it waits for: its _fut_waiter (a task, or a gather's children), else what
    asyncio's wait_for (its local `fut`) or TaskGroup.__aexit__ (`self._tasks`) hold."""
    waiter = getattr(task, "_fut_waiter", None)
    if isinstance(waiter, TASK_TYPES):
        return [waiter.get_name()]
    children = getattr(waiter, "_children", None)
    if children is not None:
        return [c.get_name() for c in children if isinstance(c, TASK_TYPES)]
    coro = innermost_coroutine(task.get_coro())
    if coro.cr_frame is None:
        return []
    variables = coro.cr_frame.f_locals
    if coro.__qualname__ == "wait_for" and isinstance(variables.get("fut"), TASK_TYPES):
        return [variables["fut"].get_name()]
    if coro.__qualname__ in ("TaskGroup.__aexit__", "TaskGroup._aexit"):
        return [t.get_name() for t in variables["self"]._tasks]
    return []


def waiting_on(task, stack, awaiting):
    """pycore's documented rule, from what the process holds."""
    waiter = getattr(task, "_fut_waiter", None)
    if awaiting or waiter is None or hasattr(waiter, "_children"):
        return None
    innermost = stack[0]
    if "/asyncio/" in innermost["file"].replace("\\", "/"):
        return "asyncio." + innermost["qualname"].split(".")[0]
    kind = type(waiter)
    return kind.__name__ if kind.__module__ == "builtins" else kind.__module__ + "." + kind.__name__


def state(task):
    if task.cancelled():
        return "cancelled"
    return "done" if task.done() else "pending"


async def main(record_path):
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()
    held = asyncio.Event()
    never = asyncio.Event()
    awaited = loop.create_task(sleeper(), name="awaited")
    child_1 = loop.create_task(sleeper(), name="gather-child-1")
    child_2 = loop.create_task(sleeper(), name="gather-child-2")
    tasks = [
        loop.create_task(outer(), name="chain"),
        awaited,
        loop.create_task(await_task(awaited), name="awaiter"),
        child_1,
        child_2,
        loop.create_task(gather_two(child_1, child_2), name="gatherer"),
        loop.create_task(hold_lock(lock, held), name="lock-holder"),
        loop.create_task(wait_for_lock(lock, held), name="lock-waiter"),
        loop.create_task(wait_for_event(never), name="event-waiter"),
        loop.create_task(sleeper(), name=NON_ASCII),
    ]
    inner = loop.create_task(sleeper(), name="wait-for-inner")
    tasks += [inner, loop.create_task(wait_for_task(inner), name="wait-for")]
    if hasattr(asyncio, "TaskGroup"):  # 3.11+
        tasks.append(loop.create_task(task_group(), name="group-parent"))
    current_task().set_name("main")
    for _ in range(20):
        await asyncio.sleep(0)
    first = loop_truth(len(tasks) + (2 if hasattr(asyncio, "TaskGroup") else 0),
                       "# PARK: first loop")
    if not SECOND_READY.wait(PARK_TIMEOUT):
        raise SystemExit("the second loop did not record itself")
    with open(record_path + ".asyncio.json", "w") as out:
        json.dump({"loops": [first, SECOND]}, out, ensure_ascii=True, indent=1)
    recorder = threading.Thread(name="recorder", target=recording.record_parked_threads,
                                args=(record_path, 2), daemon=True)
    recorder.start()
    recording.announce()
    __import__("time").sleep(recording.PARK_SECONDS)  # PARK: first loop


def loop_truth(others, marker):
    """The running loop's tasks as the process sees them: `others` tasks besides the running
    one (the caller's), which parks on the line marked `marker`."""
    me = current_task()
    expected = []
    for task in all_tasks():
        if task is me:
            continue
        stack = coroutine_stack(task.get_coro())
        awaiting = awaited_names(task)
        expected.append({
            "name": task.get_name(),
            "state": state(task),
            "stack": stack,
            "awaiting": awaiting,
            "waiting_on": waiting_on(task, stack, awaiting),
        })
    assert len(expected) == others, expected
    with open(__file__, encoding="utf-8") as source:
        park_line = 1 + [i for i, text in enumerate(source)
                         if text.rstrip().endswith(marker)][-1]
    caller = sys._getframe(1).f_code
    expected.append({
        "name": me.get_name(),
        "state": "pending",
        "stack": [{"function": caller.co_name, "qualname": caller.co_name,
                   "file": caller.co_filename, "line": park_line}],
        "awaiting": [],
        "waiting_on": None,
    })
    return {"thread": recording.native_tid(), "tasks": expected}


SECOND = {}
SECOND_READY = threading.Event()
PARK_TIMEOUT = 20


async def second_main():
    """A second event loop, in its own thread: one task awaiting another."""
    loop = asyncio.get_running_loop()
    first = loop.create_task(sleeper(), name="second-loop-sleeper")
    loop.create_task(await_task(first), name="second-loop-awaiter")
    current_task().set_name("second-main")
    for _ in range(20):
        await asyncio.sleep(0)
    SECOND.update(loop_truth(2, "# PARK: second loop"))
    SECOND_READY.set()
    recording.announce()
    __import__("time").sleep(recording.PARK_SECONDS)  # PARK: second loop


if __name__ == "__main__":
    if PYTHON_TASKS:
        asyncio.tasks.Task = asyncio.tasks._PyTask
        if hasattr(asyncio.tasks, "_py_current_task"):
            # 3.14+: the C current_task (which asyncio.timeout asks) sees only C tasks.
            asyncio.tasks.current_task = asyncio.tasks._py_current_task
    threading.Thread(name="second-loop", target=asyncio.run, args=(second_main(),),
                     daemon=True).start()
    asyncio.run(main(sys.argv[1]))
    os._exit(0)
