"""A process held in the middle of exiting, for the run lock's tests (test/run-lock.test.ts).

Forks a child that this process traces with PTRACE_O_TRACEEXIT; prints the child's pid; on a
line 'kill' on stdin, SIGKILLs it: the kernel stops the dying child at its exit (PTRACE_EVENT_EXIT,
flags PF_SIGNALED in /proc/<pid>/stat), where it stays, killed but not gone, until released.
Prints 'exiting', holds it there for argv[1] seconds, releases it, reaps it and prints 'gone'.
"""
import ctypes
import os
import signal
import sys
import time

PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS, PTRACE_O_TRACEEXIT = 0, 7, 0x4200, 0x40
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

child = os.fork()
if child == 0:
    libc.ptrace(PTRACE_TRACEME, 0, None, None)
    os.kill(os.getpid(), signal.SIGSTOP)
    time.sleep(600)
    os._exit(0)
os.waitpid(child, 0)
if libc.ptrace(PTRACE_SETOPTIONS, child, None, ctypes.c_void_p(PTRACE_O_TRACEEXIT)) != 0:
    os.kill(child, signal.SIGKILL)
    sys.exit(f'ptrace is not permitted here (errno {ctypes.get_errno()})')
libc.ptrace(PTRACE_CONT, child, None, None)
print(child, flush=True)
sys.stdin.readline()
os.kill(child, signal.SIGKILL)
_, status = os.waitpid(child, 0)
if not (os.WIFSTOPPED(status) and status >> 8 == (signal.SIGTRAP | 6 << 8)):
    sys.exit(f'the child did not stop at its exit (status {status:#x})')
print('exiting', flush=True)
time.sleep(float(sys.argv[1]))
libc.ptrace(PTRACE_CONT, child, None, None)
os.waitpid(child, 0)
print('gone', flush=True)
