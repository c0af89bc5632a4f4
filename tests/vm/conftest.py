"""Fixtures for tests that boot real Debian 12 guests under QEMU (marker `vm`).

The host tools are installed with apt when we are root (CI on this project's
machines), so these tests run rather than skip there; elsewhere they skip and
name what is missing. Set HARDENED_DO_SKIP_VM=1 to skip them on purpose.

    vm_image      the cached guest image (built on first use, ~2 min)
    vm_ssh_key    an ed25519 key pair generated for this run
    vm_cluster    factory: vm_cluster(**Cluster kwargs) -> Cluster, shut down after the test
    vm_clusters   the same factory for module/session fixtures (use it as a context manager)

On a failed test, the last console lines of every running guest are added to
the report, and the full console logs are kept under pytest's basetemp.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path

import pytest

from tests.testbed import host
from tests.testbed.image import build_image, cached_image
from tests.testbed.vm import Cluster, SshKey, make_ssh_key

HERE = Path(__file__).resolve().parent

# every cluster a fixture made, for failure reports
_clusters: list[Cluster] = []


def pytest_configure(config):
    if any(line.split(":", 1)[0].strip() == "vm" for line in config.getini("markers")):
        return  # registered by the project's pytest.ini
    config.addinivalue_line(
        "markers",
        "vm: boots QEMU guests from the cached Debian 12 image (slow under TCG; "
        "needs qemu, vde2, genisoimage, and debootstrap or a cached image)",
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.vm)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed and rep.when in ("setup", "call"):
        factory = getattr(item.config, "_tmp_path_factory", None)
        base = Path(factory.getbasetemp()) if factory is not None else Path(tempfile.gettempdir())
        keep = base / "vm-consoles" / item.name
        for cluster in _clusters:
            for guest in cluster:
                log = guest.console_log()
                if not guest.running or not log:
                    continue
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{guest.name}.log").write_text(log)
                rep.sections.append(
                    (f"console of {guest.name} (full log: {keep / (guest.name + '.log')})", guest.console_tail(60))
                )
    return rep


def _sigterm_as_interrupt() -> None:
    # A CI timeout sends SIGTERM; turning it into KeyboardInterrupt lets
    # pytest run fixture teardown, which kills the guests.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        def handler(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, handler)


@pytest.fixture(scope="session")
def vm_image():
    if os.environ.get("HARDENED_DO_SKIP_VM"):
        pytest.skip("HARDENED_DO_SKIP_VM is set")
    image = cached_image()
    problems = host.ensure_tools(build=image is None)
    if problems:
        pytest.skip("VM tests need: " + "; ".join(problems))
    _sigterm_as_interrupt()
    # a failed build is a test failure, not a skip: the tools are there
    return image or build_image()


@pytest.fixture(scope="session")
def vm_ssh_key(tmp_path_factory) -> SshKey:
    return make_ssh_key(tmp_path_factory.mktemp("vm-ssh"))


class ClusterFactory:
    def __init__(self, image):
        self.image = image
        self.made: list[Cluster] = []

    def __call__(self, **kwargs) -> Cluster:
        kwargs.setdefault("image", self.image)
        cluster = Cluster(**kwargs)
        self.made.append(cluster)
        _clusters.append(cluster)
        return cluster

    def close(self) -> None:
        for cluster in self.made:
            cluster.shutdown()
            if cluster in _clusters:
                _clusters.remove(cluster)
        self.made.clear()


@pytest.fixture(scope="session")
def vm_clusters(vm_image):
    factory = ClusterFactory(vm_image)
    yield factory
    factory.close()


@pytest.fixture
def vm_cluster(vm_image):
    factory = ClusterFactory(vm_image)
    yield factory
    factory.close()
