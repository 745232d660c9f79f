import os
import time

_fd = os.open(os.environ.get("TRACE_FILE", "/tmp/trace.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def tr(label, key):
    os.write(_fd, f"{time.time():.6f} {label} {key}\n".encode())
