"""Run a notebook's cells in a kernel that cannot reach the course: the grader's sandbox.

Each submission gets its own kernel, started inside bubblewrap (``bwrap``: Linux
namespaces, no root needed) with

- a file system of read-only system folders, Python and the cnncourse library only: the
  course folder (gradebook, solutions, other students' work) and the grader's home are
  not there; the working folder is a small private tmpfs holding only the files the
  instructor released with the assignment;
- no network (a private network namespace; the kernel talks to the grader over Unix
  sockets in a folder shared with it), its own process and IPC namespaces, and an
  unprivileged user (nobody);
- limits: address space and file size per process (``setrlimit``), and for the whole
  sandbox a watchdog on resident memory, number of processes and wall time per cell and
  per notebook. A cell past its time is interrupted (SIGINT, as Jupyter's stop button);
  a kernel that ignores the interrupt, or breaks a limit, is killed with everything it
  started, and the cells after it are marked as not run.

The executor is the grader's own code, outside the sandbox: the kernel only ever sees the
code of one cell at a time, and whatever it prints lands in that cell's outputs, capped
in size. Without bubblewrap the same kernel runs unsandboxed (only the limits and the
timeouts apply), and the caller must say so loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import write_connection_file

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """What one submission's kernel may use."""

    memory: int = 4 * GiB  # address space per process, and resident memory of the sandbox
    processes: int = 32  # live processes in the sandbox (the kernel is one)
    file_size: int = 64 * MiB  # largest file a cell may write
    disk: int = 256 * MiB  # size of the private working folder (a tmpfs)
    output: int = 1 * MiB  # notebook output kept; the rest is dropped with a note
    threads: int = 1  # OMP_NUM_THREADS for torch in the kernel
    start_timeout: float = 60.0  # for the kernel to answer its first request
    interrupt_grace: float = 3.0  # after SIGINT, before the kernel is killed


@dataclass
class CellRun:
    """What happened to one code cell."""

    index: int
    status: str  # "ok", "error", "timeout" (interrupted), "not run"
    seconds: float = 0.0
    completed: bool | None = None  # reached its last line (checked on cells asked for)
    hidden_error: bool = False  # the reply said error but no traceback was shown
    expressions: dict = field(default_factory=dict)  # {name: text/plain value or None}


@dataclass
class NotebookRun:
    """The outcome of executing a notebook: per-cell records, why it stopped early if it
    did, and what was cut."""

    cells: list[CellRun] = field(default_factory=list)
    stopped: str = ""  # why the kernel was stopped before the end ("" if it was not)
    dropped_output: int = 0  # bytes of output dropped past the cap
    sandboxed: bool = True
    seconds: float = 0.0
    start_seconds: float = 0.0  # kernel start and prelude, before the first cell


_BWRAP_OK: bool | None = None


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and can make a sandbox here (user namespaces may be
    switched off, as in some containers): tried once, then remembered."""
    global _BWRAP_OK
    if _BWRAP_OK is None:
        exe = shutil.which("bwrap")
        _BWRAP_OK = False
        if exe:
            probe = [exe, *_namespaces(), "--ro-bind", "/", "/", "--proc", "/proc", "true"]
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _BWRAP_OK = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    return _BWRAP_OK


def _namespaces() -> list[str]:
    return ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
            "--disable-userns", "--die-with-parent"]  # fmt: skip


def _readable_roots() -> list[str]:
    """The folders a kernel needs to start: Python (the venv and the interpreter it was
    made from), the site-packages of both, and the cnncourse package (an editable install
    points into the course folder: only the package itself is mounted, not its parent)."""
    import cnncourse

    roots = {sys.prefix, sys.base_prefix, str(Path(cnncourse.__file__).resolve().parent)}
    roots |= {p for p in sys.path if p.endswith("site-packages")}
    # Without a parent of another (a sub-folder of a mounted one comes along anyway).
    ordered = sorted(str(Path(r).resolve()) for r in roots if Path(r).exists())
    return [r for i, r in enumerate(ordered) if not any(r.startswith(o + os.sep)
                                                          for o in ordered[:i])]  # fmt: skip


def _sandbox_argv(rundir: Path, env: dict[str, str], data: Iterable[Path], disk: int) -> list[str]:
    args = [shutil.which("bwrap") or "bwrap", *_namespaces(), "--clearenv"]
    for system in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(system)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), system]
        elif path.exists():
            args += ["--ro-bind", system, system]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in _readable_roots():
        if not any(root == s or root.startswith(s + "/") for s in ("/usr", "/etc")):
            args += ["--ro-bind", root, root]
    home = "/home/student"
    args += ["--size", str(disk), "--tmpfs", home, "--chdir", home]
    for f in data:
        args += ["--ro-bind", str(f), f"{home}/{f.name}"]
    args += ["--bind", str(rundir), str(rundir)]  # the kernel's sockets, shared with us
    for k, v in env.items():
        args += ["--setenv", k, v]
    return [*args, "--"]


def _set_limits(limits: Limits, cpu_seconds: int) -> None:
    """In the child, before exec: limits every process of the sandbox inherits."""
    # torch, numpy and their libraries map about 4 GiB of address space before any work
    # (1-2 GiB resident): the watchdog holds resident memory to `memory`, this catches
    # a single huge allocation at once (a clean RuntimeError in the cell).
    space = limits.memory + 4 * GiB
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _process_table() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, resident bytes)} for every process on the machine."""
    page = os.sysconf("SC_PAGE_SIZE")
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[21]) * page)
    return table


def _descendants(root: int, table: dict[int, tuple[int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _mpl_cache(rundir: Path) -> Path:
    """A copy of Matplotlib's font list for the kernel, so it does not rebuild it (a second
    or more) in every sandbox, and never warns on stderr that it could not write one."""
    target = rundir / "mpl"
    target.mkdir()
    try:
        import matplotlib
        from matplotlib import font_manager  # noqa: F401 -- builds the cache if missing

        for f in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy(f, target / f.name)
    except Exception:  # noqa: BLE001 -- a missing cache only costs time
        pass
    return target


class Kernel:
    """One IPython kernel in its own sandbox (or, with ``sandbox=False``, without one)."""

    def __init__(
        self, limits: Limits, *, sandbox: bool = True, data: Iterable[Path] = (),
        cpu_seconds: int = 3600,
    ) -> None:  # fmt: skip
        self.limits = limits
        self.sandbox = sandbox
        self.data = list(data)
        self.cpu_seconds = cpu_seconds
        self.proc: subprocess.Popen | None = None
        self.kc: AsyncKernelClient | None = None
        self.stopped = ""  # why the watchdog or a timeout killed it
        self._rundir = Path(tempfile.mkdtemp(prefix="cg-"))  # short: socket paths ≤ 107 bytes
        self._workdir: Path | None = None

    async def start(self) -> None:
        rundir = self._rundir
        os.chmod(rundir, 0o700)
        conn = rundir / "kernel.json"
        write_connection_file(str(conn), transport="ipc", ip=str(rundir / "k"),
                              key=secrets.token_hex(16).encode())  # fmt: skip
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "NBGRADER_EXECUTION": "autograde",
            "OMP_WAIT_POLICY": "PASSIVE",
            "OMP_NUM_THREADS": str(self.limits.threads),
            "MKL_NUM_THREADS": str(self.limits.threads),
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(_mpl_cache(rundir)),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        argv = [sys.executable, "-P", "-m", "ipykernel_launcher", "-f", str(conn),
                "--HistoryManager.hist_file=:memory:"]  # fmt: skip
        if self.sandbox:
            home = "/home/student"
            env |= {"HOME": home, "IPYTHONDIR": "/tmp/ipython",
                    "JUPYTER_RUNTIME_DIR": "/tmp/jupyter", "TMPDIR": "/tmp"}  # fmt: skip
            argv = _sandbox_argv(rundir, env, self.data, self.limits.disk) + argv
            popen_env, cwd = {}, "/"
        else:
            self._workdir = rundir / "work"
            self._workdir.mkdir()
            for f in self.data:
                shutil.copy(f, self._workdir / f.name)
            env |= {"HOME": str(self._workdir), "IPYTHONDIR": str(rundir / "ipython"),
                    "JUPYTER_RUNTIME_DIR": str(rundir / "jupyter")}  # fmt: skip
            popen_env, cwd = env, str(self._workdir)
        limits, cpu = self.limits, self.cpu_seconds
        self.proc = subprocess.Popen(
            argv, env=popen_env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=lambda: _set_limits(limits, cpu),
        )  # fmt: skip
        self.kc = AsyncKernelClient()
        self.kc.load_connection_file(str(conn))
        self.kc.start_channels()
        deadline = time.monotonic() + limits.start_timeout
        while True:  # wait_for_ready, but notice a kernel that died while starting
            try:
                await self.kc.wait_for_ready(timeout=min(5.0, limits.start_timeout))
                return
            except RuntimeError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the kernel did not start (exit status {self.proc.poll()})"
                    ) from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.stopped

    def _inner_pids(self) -> list[int]:
        """Every process the kernel's launcher started (bwrap's own two are left out)."""
        if self.proc is None:
            return []
        pids = _descendants(self.proc.pid, _process_table())
        if not self.sandbox:
            return [self.proc.pid, *pids]
        names = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        return [p for p in pids if names.get(p) != "bwrap"]

    def interrupt(self) -> None:
        for pid in self._inner_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    def kill(self, why: str = "") -> None:
        if why and not self.stopped:
            self.stopped = why
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap: its pid namespace goes too
            for pid in self._inner_pids():  # anything that left the process group
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def check_limits(self) -> None:
        """The watchdog's look: kill the sandbox when it holds too many processes or too
        much resident memory (rlimits bound each process, not their sum)."""
        if not self.alive():
            return
        table = _process_table()
        pids = _descendants(self.proc.pid, table)
        if len(pids) > self.limits.processes + 2:  # + bwrap's own two
            self.kill(f"it started more than {self.limits.processes} processes")
        elif sum(table[p][1] for p in pids if p in table) > self.limits.memory:
            self.kill(f"it used more than {self.limits.memory / GiB:.1f} GiB of memory")

    def close(self) -> None:
        self.kill()
        if self.kc is not None:
            self.kc.stop_channels()
        shutil.rmtree(self._rundir, ignore_errors=True)


def _stream_into(outputs: list, name: str, text: str) -> None:
    if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1]["name"] == name:
        outputs[-1]["text"] += text
    else:
        outputs.append(nbformat.v4.new_output("stream", name=name, text=text))


async def run_cell(
    kernel: Kernel, cell, index: int, timeout: float, *, check_completion: bool, cap: list[int],
    expressions: dict[str, str] | None = None,
) -> CellRun:  # fmt: skip
    """Execute one code cell, collecting its outputs into ``cell.outputs``.

    ``cap`` is ``[bytes still allowed, bytes dropped]``, shared by the notebook's cells.
    With ``check_completion`` the cell gets a last line that sets a random name, read back
    through ``user_expressions``: a cell whose errors something swallowed (an AST
    transformer wrapping it in try/except, say) is caught not reaching it. ``expressions``
    are more ``user_expressions`` (evaluated after a cell that succeeded, without the
    shell's cell transformers); their values land in the record's ``expressions``.
    """
    kc = kernel.kc
    code, token = cell.source, None
    wanted = dict(expressions or {})
    if check_completion:
        token = f"_cg_{secrets.token_hex(8)}"
        code = f"{code}\n{token} = True"
        wanted["_done"] = token
    start = time.monotonic()
    msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False,
                        user_expressions=wanted or None)  # fmt: skip
    outputs: list = []
    run = CellRun(index, "ok")
    clear_pending, idle, reply = False, False, None
    deadline, interrupted, dropped_before = start + timeout, None, cap[1]
    while not idle or reply is None:
        now = time.monotonic()
        if interrupted is None and now > deadline:
            kernel.interrupt()
            interrupted = now
            run.status = "timeout"
        if interrupted is not None and now > interrupted + kernel.limits.interrupt_grace:
            kernel.kill(f"cell {index} ran past its {timeout:.0f} s and ignored the interrupt")
        if not kernel.alive():
            kernel.stopped = kernel.stopped or (
                f"the kernel died in cell {index} (exit status {kernel.proc.returncode})"
            )
            run.status = "timeout" if interrupted else "error"
            break
        if not idle:
            try:
                msg = await kc.get_iopub_msg(timeout=0.2)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status":
                idle = content["execution_state"] == "idle"
                continue
            if kind == "clear_output":
                if content.get("wait"):
                    clear_pending = True
                else:
                    outputs.clear()
                continue
            if kind not in ("stream", "display_data", "execute_result", "error"):
                continue
            if clear_pending:
                outputs.clear()
                clear_pending = False
            size = len(str(content))
            if size > cap[0] and kind != "error":
                cap[1] += size
                continue
            cap[0] -= size
            if kind == "stream":
                _stream_into(outputs, content["name"], content["text"])
            else:
                outputs.append(nbformat.v4.output_from_msg(msg))
        else:
            try:
                msg = await kc.get_shell_msg(timeout=0.2)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                reply = msg["content"]
    run.seconds = time.monotonic() - start
    if reply is not None:
        if reply.get("status") == "error":
            run.status = "timeout" if interrupted else "error"
            if not any(o.get("output_type") == "error" for o in outputs):
                run.hidden_error = True  # showtraceback silenced: show it anyway
                outputs.append(nbformat.v4.new_output(
                    "error", ename=reply.get("ename", "Error"), evalue=reply.get("evalue", ""),
                    traceback=reply.get("traceback") or [f"{reply.get('ename')}: "
                                                         f"{reply.get('evalue')}"],
                ))  # fmt: skip
        else:
            values = reply.get("user_expressions") or {}
            for name in wanted:
                got = values.get(name) or {}
                text = got.get("data", {}).get("text/plain") if got.get("status") == "ok" else None
                run.expressions[name] = text
            if token:
                run.completed = run.expressions.pop("_done", None) == "True"
    if run.status == "timeout":
        outputs.append(nbformat.v4.new_output(
            "error", ename="TimeoutError", evalue=f"cell stopped after {timeout:.0f} s",
            traceback=[f"TimeoutError: this cell ran for more than {timeout:.0f} s (the "
                       "grader's limit for it, a multiple of the reference solution's time) "
                       "and was interrupted; look for an endless loop"],
        ))  # fmt: skip
    if cap[1] > dropped_before:
        _stream_into(
            outputs,
            "stdout",
            f"\n[grader: {cap[1] - dropped_before} bytes of output "
            f"dropped here; it keeps {kernel.limits.output // 1024} KiB per notebook]\n",
        )
    cell.outputs = outputs
    return run


def not_run_output(why: str):
    return nbformat.v4.new_output(
        "error", ename="NotRun", evalue=why, traceback=[f"NotRun: this cell did not run: {why}"]
    )


async def execute_notebook(
    nb,
    *,
    limits: Limits,
    cell_timeout: dict[int, float],
    notebook_timeout: float,
    check_completion: set[int] = frozenset(),
    expressions: dict[int, dict[str, str]] | None = None,
    prelude: str = "",
    sandbox: bool = True,
    data: Iterable[Path] = (),
) -> NotebookRun:
    """Execute the code cells of ``nb`` in place, in a fresh sandboxed kernel.

    ``cell_timeout`` maps a cell index to its limit in seconds (``notebook_timeout`` for
    cells not in it; the notebook's total is capped at ``notebook_timeout`` too).
    ``prelude`` runs first, silently (no outputs kept); ``expressions`` maps a cell index
    to the ``user_expressions`` to evaluate after it (see :func:`run_cell`).
    """
    result = NotebookRun(sandboxed=sandbox)
    kernel = Kernel(limits, sandbox=sandbox, data=data,
                    cpu_seconds=int(notebook_timeout * max(1, limits.threads)) + 10)  # fmt: skip
    start = time.monotonic()
    cap = [limits.output, 0]

    async def watchdog():
        while True:
            await asyncio.sleep(0.25)
            kernel.check_limits()

    dog = None
    try:
        try:
            await kernel.start()
        except RuntimeError as err:
            kernel.stopped = str(err)
        dog = asyncio.ensure_future(watchdog())
        if prelude and kernel.alive():
            first = nbformat.v4.new_code_cell(prelude)
            await run_cell(kernel, first, -1, notebook_timeout, check_completion=False, cap=[0, 0])
        result.start_seconds = time.monotonic() - start
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs, cell.execution_count = [], None
            if kernel.stopped or not kernel.alive():
                kernel.stopped = kernel.stopped or "the kernel died"
                cell.outputs = [not_run_output(kernel.stopped)]
                result.cells.append(CellRun(index, "not run"))
                continue
            if not cell.source.strip():
                continue
            left = notebook_timeout - (time.monotonic() - start)
            if left <= 0:
                kernel.kill(f"the notebook ran past its {notebook_timeout:.0f} s")
                cell.outputs = [not_run_output(kernel.stopped)]
                result.cells.append(CellRun(index, "not run"))
                continue
            limit = min(cell_timeout.get(index, notebook_timeout), left)
            run = await run_cell(kernel, cell, index, limit, cap=cap,
                                 check_completion=index in check_completion,
                                 expressions=(expressions or {}).get(index))  # fmt: skip
            result.cells.append(run)
    finally:
        if dog is not None:
            dog.cancel()
        result.stopped = kernel.stopped
        kernel.close()
    result.dropped_output = cap[1]
    result.seconds = time.monotonic() - start
    return result
