#!/usr/bin/env python3
"""An acknowledgement writer for fleetcast's tests, written apart from
fleetcast: it copies the REQACK lines an emulator writes (SRC, a file that
grows) into the file or FIFO a job reads (DST), and does to DST what log
rotation and careless writers do.

usage: ack_relay.py SRC DST [--rotate-after N] [--truncate-after N WAIT_FILE SAID_FILE]
                            [--fifo-partial WAIT_FILE TEXT] [--stop-file F]

--rotate-after N: after N lines, DST is renamed to DST.1 and a new DST is
  written from its start (logrotate's create mode).
--truncate-after N WAIT_FILE SAID_FILE: after N lines, once WAIT_FILE (the
  job's deliveries.ndjson) holds N outcomes (the reader has them), DST is cut
  to zero bytes (copytruncate), and written on from its start once SAID_FILE
  (the job's standard error) says the reader saw the cut: lines written
  past the old size before the reader looks cannot be told from the old
  ones by any reader of a file cut in place (tail -F neither).
--fifo-partial WAIT_FILE TEXT: DST is a FIFO; a first writer opens it,
  writes the start of a line without its end and closes it; once WAIT_FILE
  holds TEXT (the reader said it dropped the half line), the lines go
  through as a second writer's.
Runs until the file --stop-file names exists; each action is a line on
standard output ("rotated", "truncated", "partial").
"""
import os
import sys
import time


def outcomes_in(path):
    """The outcome lines of a deliveries.ndjson ({"index":N,...}): an early
    acknowledgement is journalled twice (as {"index":null,"message":...}
    when it comes, then its outcome once applied), so a plain line count
    runs ahead of the lines the reader has read."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line[:9] == b'{"index":' and line[9:10].isdigit())
    except FileNotFoundError:
        return 0


def main():
    src, dst, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    rotate = truncate = None
    wait_file = stop_file = None
    fifo_partial = False
    i = 0
    while i < len(args):
        if args[i] == "--rotate-after":
            rotate = int(args[i + 1]); i += 2
        elif args[i] == "--truncate-after":
            truncate, wait_file, said_file = int(args[i + 1]), args[i + 2], args[i + 3]; i += 4
        elif args[i] == "--fifo-partial":
            fifo_partial, wait_file, wait_text = True, args[i + 1], args[i + 2]; i += 3
        elif args[i] == "--stop-file":
            stop_file = args[i + 1]; i += 2
        else:
            sys.exit(f"ack_relay: unknown argument {args[i]}")
    if fifo_partial:
        with open(dst, "wb") as w:  # blocks until the reader has it open
            w.write(b'{"type":"REQACK","productKey":"half-a-line')
        print("partial", flush=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if wait_text in open(wait_file, errors="replace").read():
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        else:
            sys.exit(f"ack_relay: {wait_file} never said {wait_text!r}")
    out = open(dst, "ab", buffering=0)
    copied = 0
    pending = b""
    with open(src, "rb") as r:
        while not (stop_file and os.path.exists(stop_file)):
            chunk = r.read(65536)
            if not chunk:
                time.sleep(0.02)  # a relay's poll, not a test's wait
                continue
            pending += chunk
            *whole, pending = pending.split(b"\n")
            for line in whole:
                out.write(line + b"\n")
                copied += 1
                if rotate is not None and copied == rotate:
                    out.close()
                    os.rename(dst, dst + ".1")
                    out = open(dst, "ab", buffering=0)
                    print("rotated", flush=True)
                if truncate is not None and copied == truncate:
                    deadline = time.time() + 60
                    while outcomes_in(wait_file) < truncate and time.time() < deadline:
                        time.sleep(0.02)
                    if outcomes_in(wait_file) < truncate:
                        sys.exit(f"ack_relay: {wait_file} never held {truncate} outcomes")
                    os.truncate(dst, 0)
                    print("truncated", flush=True)
                    deadline = time.time() + 60
                    while time.time() < deadline:
                        try:
                            if "was truncated" in open(said_file, errors="replace").read():
                                break
                        except FileNotFoundError:
                            pass
                        time.sleep(0.02)
                    else:
                        sys.exit(f"ack_relay: {said_file} never said the file was truncated")
    out.close()


if __name__ == "__main__":
    main()
