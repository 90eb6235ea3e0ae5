"""A local SMTP server for the notice tests and bench-notify: it records what it accepts and can
defer, refuse or hold deliveries on purpose.

It runs in a process of its own (`python -m tests.smtp_sink`), so receiving never competes with
the test's or the benchmark's own Python for the GIL. The parent talks to it through a folder:

- `messages.jsonl`: one JSON line per accepted message (envelope recipients, Message-ID, To,
  Subject, Date, MIME boundary, X-Exsync-Notice and the plain-text body), written as each
  DATA is accepted;
- `held`: appears (holding the recipient) when the RCPT of the `hold_at`-th delivery arrives;
  that RCPT is not answered until `release` appears. The client is then mid-transaction,
  before DATA, so if it dies there nothing was delivered, which is SMTP's own meaning.

Behaviour is fixed at start:
- `tempfail={"kim@contoso.com": 2}`: the first 2 RCPTs of that address get
  "451 4.3.0 try again later" ("*" counts every address);
- `reject=["nobody@contoso.com"]`: RCPT of that address gets "550 5.1.1 ... no such user";
- `hold_at=20`: hold the 20th RCPT as described above.

    with SmtpSink(tmp_path, tempfail={"kim@contoso.com": 2}) as sink:
        env["EMAIL_URL"] = sink.url
        ...
        assert [m["to"] for m in sink.messages()] == [...]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import os
import select
import subprocess
import sys
import time
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- the server (in its own process) ------------------------------------------------------


def _text_body(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True) or b""
            return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def _header(message: email.message.Message, name: str) -> str:
    value = message.get(name)
    return str(make_header(decode_header(value))) if value is not None else ""


class Handler:
    """aiosmtpd handler: answers RCPT as configured, writes a line per accepted DATA."""

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        self.tempfail = {k.lower(): int(v) for k, v in config.get("tempfail", {}).items()}
        self.reject = {a.lower() for a in config.get("reject", [])}
        self.hold_at = config.get("hold_at")
        self.rcpts = 0
        self.log = open(folder / "messages.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        self.rcpts += 1
        lower = address.lower()
        if self.rcpts == self.hold_at:
            held = self.folder / "held.tmp"
            held.write_text(lower, encoding="utf-8")
            held.replace(self.folder / "held")
            while not (self.folder / "release").exists():
                await asyncio.sleep(0.02)  # other connections are served meanwhile
        if lower in self.reject:
            return f"550 5.1.1 <{address}>: no such user here"
        for key in (lower, "*"):
            if self.tempfail.get(key, 0) > 0:
                self.tempfail[key] -= 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content)
        record = {
            "rcpt": [a.lower() for a in envelope.rcpt_tos],
            "message_id": message.get("Message-ID", ""),
            "notice": message.get("X-Exsync-Notice", ""),
            "to": _header(message, "To"),
            "subject": _header(message, "Subject"),
            "date": message.get("Date", ""),
            "boundary": message.get_boundary() or "",
            "body": _text_body(message).replace("\r\n", "\n"),
        }
        self.log.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK: queued"


async def _serve(folder: Path, config: dict[str, Any]) -> None:
    from aiosmtpd.smtp import SMTP

    handler = Handler(folder, config)
    loop = asyncio.get_running_loop()
    # A fixed hostname: aiosmtpd otherwise asks DNS for this machine's name on every connection.
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp-sink.test", ident="smtp-sink"), "127.0.0.1", 0
    )
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    parent = os.getppid()
    async with server:
        while os.getppid() == parent:  # a test or bench killed mid-run leaves no sink behind
            await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--config", default="{}", help="JSON: tempfail, reject, hold_at")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(args.folder, json.loads(args.config)))


# --- the parent's handle ------------------------------------------------------------------


class SmtpSink:
    """Starts the server process and reads what it recorded."""

    def __init__(
        self,
        folder: Path,
        *,
        tempfail: dict[str, int] | None = None,
        reject: list[str] | tuple[str, ...] = (),
        hold_at: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.config = {"tempfail": tempfail or {}, "reject": list(reject), "hold_at": hold_at}
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def start(self, timeout: float = 15) -> SmtpSink:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.smtp_sink", str(self.folder)),
                *("--config", json.dumps(self.config)),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the SMTP sink did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message so far, in order of arrival (a line being written is left
        for the next call)."""
        path = self.folder / "messages.jsonl"
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n")[:-1] if line]

    def wait_held(self, timeout: float) -> str:
        """The recipient whose RCPT is being held, once it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.folder / "held").exists():
                return (self.folder / "held").read_text(encoding="utf-8")
            time.sleep(0.02)
        raise TimeoutError(f"no delivery was held within {timeout} s")

    def release(self) -> None:
        (self.folder / "release").touch()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
