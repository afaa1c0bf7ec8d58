"""Executes one notebook headless through a Jupyter kernel (tslab by default) with nbclient.

Used by `npm start` (scripts/lab.ts) and the notebook tests (lib/report/notebooks.ts). Unlike
`jupyter execute` it streams what the cells print while they run (long training cells show
their progress in the terminal), and it saves the executed notebook even when a cell fails, so
the error can be read in context.

    .venv/bin/python scripts/execute_notebook.py NOTEBOOK OUTPUT [--kernel tslab] [--timeout SECONDS]

The kernel runs in the notebook's folder with this process's environment (DCF_QUICK etc.).
Exit status: 0 when every cell ran without an error output, 1 when a cell failed (the output
notebook holds the traceback), 2 for bad arguments, 130 when interrupted.

Ctrl-C (SIGINT) is passed on to the kernel as JupyterLab's ■ does (the kernel runs in its own
session, so the terminal's signal does not reach it): a training cell stops at its next step,
keeping what it saved; the executed copy is written and the runner exits 130. A second Ctrl-C
ends the runner at once.
"""

import argparse
import asyncio
import os
import re
import signal
import sys
from datetime import datetime, timezone

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError, CellTimeoutError

from atomic_write import write_atomic  # scripts/atomic_write.py


# "Error: boom", "TypeError: x is not a function", tslab's "1:7 - Cannot find name 'x'."
ERROR_LINE = re.compile(r"^(\w*(Error|Exception)\b.*|\d+:\d+ - .+)$")


def log(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class StreamingClient(NotebookClient):
    """NotebookClient that echoes each cell's output to stdout as it arrives."""

    def process_message(self, msg, cell, cell_index):
        msg_type = msg["msg_type"]
        content = msg.get("content", {})
        if msg_type == "stream":
            log(content.get("text", ""))
        elif msg_type == "update_display_data":
            pass  # an in-place redraw (a progress display): nothing new for a log
        elif msg_type in ("display_data", "execute_result"):
            data = content.get("data", {})
            if "application/vnd.plotly.v1+json" in data:
                log("[plotly figure]\n")
            elif "text/plain" in data:
                log(str(data["text/plain"]).rstrip("\n") + "\n")
            elif "text/html" in data:
                log("[html]\n")
            elif "text/markdown" in data:
                log(str(data["text/markdown"]).rstrip("\n") + "\n")
        elif msg_type == "error":
            log(f"{content.get('ename', 'Error')}: {content.get('evalue', '')}\n")
        return super().process_message(msg, cell, cell_index)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--kernel", default="tslab")
    parser.add_argument("--timeout", type=int, default=-1, help="seconds per cell (-1: no limit)")
    args = parser.parse_args()

    if not os.path.isfile(args.notebook):
        print(f"error: no notebook at {args.notebook}", file=sys.stderr)
        return 2
    nb = nbformat.read(args.notebook, as_version=4)
    folder = os.path.dirname(os.path.abspath(args.notebook))
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    running = {}

    def on_cell_start(cell, cell_index, **_):
        take_over_sigint()  # the kernel runs by now, and nbclient has set its handler
        running.update(cell=cell_index)
        if cell.cell_type == "code":
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            log(f"── cell {code_cells.index(cell_index) + 1}/{len(code_cells)}: {first[:90]}\n")

    failed = {}

    def on_cell_error(cell, cell_index, execute_reply, **_):
        # tslab reports a failing cell by its reply status and prints the error to stderr; it
        # sends no `error` output. Record which cell failed and the error's own line.
        stderr = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
        lines = [line for line in stderr.splitlines() if line.strip()]
        message = next(
            (line for line in lines if ERROR_LINE.match(line)),
            next((line for line in lines if "Error:" in line and not line.lstrip().startswith("at ")), lines[-1] if lines else "the cell failed"),
        )
        failed.update(cell=cell_index, message=message.strip())

    client = StreamingClient(
        nb,
        kernel_name=args.kernel,
        timeout=None if args.timeout < 0 else args.timeout,
        resources={"metadata": {"path": folder}},
        on_cell_start=on_cell_start,
        on_cell_error=on_cell_error,
    )
    interrupted = []

    def on_sigint():
        # Replaces nbclient's own handler, which shuts the kernel down at once.
        if interrupted:
            log("\ninterrupt again: shutting the kernel down\n")
            asyncio.ensure_future(client._async_cleanup_kernel())
            return
        interrupted.append(True)
        log("\ninterrupt: passing Ctrl-C on to the kernel (a training cell stops at its next step; Ctrl-C again ends it at once)\n")
        pid = client.km.provisioner.process.pid
        os.killpg(os.getpgid(pid), signal.SIGINT)

    def take_over_sigint():
        asyncio.get_event_loop().add_signal_handler(signal.SIGINT, on_sigint)

    failure = None
    started = now()
    try:
        client.execute()
    except CellExecutionError as err:
        failure = f"cell {failed.get('cell', '?')} failed: {failed.get('message', err)}"
    except CellTimeoutError as err:
        failure = f"a cell ran past the {args.timeout} s limit: {err}"
    except DeadKernelError as err:
        failure = f"the kernel died: {err}"
    except KeyboardInterrupt:
        interrupted.append(True)
        failure = "interrupted twice: stopped at once"
    if interrupted:
        failure = failure if failure and failure.startswith("interrupted twice") else (
            f"interrupted (Ctrl-C) in cell {failed.get('cell', running.get('cell', '?'))}; what it had saved is kept, run it again to resume"
        )
    # The executed copy says how the run ended: lib/report/notebooks reads it back.
    # started/finished (UTC) and quick (DCF_QUICK=1) are shown by the report.
    nb.metadata["dcf_execution"] = {"status": "error" if (failure or failed) else "ok", "started": started, "finished": now(), "quick": os.environ.get("DCF_QUICK") == "1", **({"failed_cell": failed["cell"], "message": failed["message"]} if failed else {}), **({"failure": failure} if failure else {})}
    write_atomic(args.output, lambda f: nbformat.write(nb, f))

    errors = [
        (i, o)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    if interrupted:
        print(f"interrupted: {args.notebook}: {failure}; executed copy: {args.output}", file=sys.stderr)
        return 130
    if failure or errors:
        for i, o in errors:
            log(f"error output in cell {i}: {o.get('ename')}: {o.get('evalue')}\n")
        if failed:
            log(f"cell {failed['cell']} failed: {failed['message']}\n")
        print(f"error: {args.notebook}: {failure or 'error output(s) above'}; executed copy: {args.output}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
