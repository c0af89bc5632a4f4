"""The wheel, as a stranger gets it.

The wheel is built from a copy of exactly the paths pyproject.toml maps (so
no build artefacts land in the working tree and a path the mapping forgets
fails here), installed into a fresh virtualenv, and used there: import,
render a host's user-data, and run examples/minimal under Pulumi's mocks.

The fresh virtualenv gets only the wheel. Its third-party dependencies come
from the project's virtualenv through a .pth file (installing pulumi and the
providers from PyPI would take minutes); `hardened_do` itself must come from
the wheel, which the tests check through `hardened_do.__file__`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.library.plugin_client import running_plugin, served_schema, served_version

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = "0.1.0"
TIMEOUT = 300


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    if proc.returncode != 0:
        if "Could not find a version that satisfies the requirement setuptools" in proc.stderr:
            pytest.skip("building the wheel needs setuptools from PyPI or pip's cache, and neither answered")
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _pip(*args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def _fresh_venv(path: Path) -> Path:
    """A virtualenv with nothing in it but what the caller installs, plus the
    project's third-party dependencies (see the module docstring)."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    python = path / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    deps = Path(sysconfig.get_path("purelib")).resolve()
    # addsitedir (not a bare path line) so the dependencies' own .pth files
    # are processed too.
    (site / "zz-project-deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    return python


def _sources_to_build(dest: Path) -> Path:
    """Copy what pyproject.toml names (package dirs, readme) to `dest`."""
    setuptools_cfg = PYPROJECT["tool"]["setuptools"]
    tops = {Path(d).parts[0] for d in setuptools_cfg["package-dir"].values()}
    tops |= {"pyproject.toml", PYPROJECT["project"]["readme"]}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "venv", ".venv")
    dest.mkdir(parents=True)
    for top in sorted(tops):
        src = ROOT / top
        if src.is_dir():
            shutil.copytree(src, dest / top, ignore=ignore)
        else:
            shutil.copy2(src, dest / top)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _sources_to_build(tmp / "src")
    _pip("wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(src))
    (built,) = (tmp / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def consumer(tmp_path_factory, wheel) -> Path:
    python = _fresh_venv(tmp_path_factory.mktemp("consumer") / "venv")
    _pip("--python", str(python), "install", "--no-deps", "--quiet", str(wheel))
    return python


def test_wheel_holds_the_packages_templates_and_plugin_but_no_repository_files(wheel):
    assert wheel.name == f"pulumi_hardened_do-{VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hardened_do", f"pulumi_hardened_do-{VERSION}.dist-info"}, tops
    templates = {p.name for p in (ROOT / "cloud_init" / "templates").glob("*.j2")}
    assert templates and {f"hardened_do/cloud_init/templates/{t}" for t in templates} <= names
    for path in ("hardened_do/__init__.py", "hardened_do/components/config.py", "hardened_do/components/host.py",
                 "hardened_do/provider/PulumiPlugin.yaml", "hardened_do/provider/__main__.py"):
        assert path in names, path
    # The SSH-generic components send these scripts to hosts.
    scripts = {p.name for p in (ROOT / "components" / "hostagent").glob("*.sh")}
    assert scripts and {f"hardened_do/components/hostagent/{s}" for s in scripts} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_metadata_declares_bounded_dependencies(wheel):
    meta = zipfile.ZipFile(wheel).read(f"pulumi_hardened_do-{VERSION}.dist-info/METADATA").decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert len(requires) == len(PYPROJECT["project"]["dependencies"])
    for req in requires:
        assert ">=" in req and "<" in req.replace("<=", ""), f"{req}: needs a lower and an upper bound"
    assert "Requires-Python: >=3.11" in meta


def test_installed_package_comes_from_the_wheel_alone(consumer):
    probe = (
        "import importlib.util, json, hardened_do\n"
        "print(json.dumps({'file': hardened_do.__file__, 'version': hardened_do.__version__,\n"
        "  'public': sorted(hardened_do.__all__),\n"
        "  'top_level_components': importlib.util.find_spec('components') is not None,\n"
        "  'top_level_cloud_init': importlib.util.find_spec('cloud_init') is not None}))\n"
    )
    seen = json.loads(_run([str(consumer), "-c", probe], cwd="/").stdout)
    venv = consumer.parent.parent
    assert Path(seen["file"]).is_relative_to(venv), f"hardened_do imported from {seen['file']}, not the wheel"
    assert seen["version"] == VERSION
    assert {"parse_stack_config", "Network", "HardenedHost", "HardenedFleet"} <= set(seen["public"])
    # The repository's own top-level packages must not leak into users' environments.
    assert not seen["top_level_components"] and not seen["top_level_cloud_init"]


def test_every_installed_module_imports(consumer):
    """A module that imports a sibling by its repository name (`import
    hostagent`) works in a checkout and breaks only once installed."""
    probe = (
        "import importlib, pkgutil, hardened_do\n"
        "names = [m.name for m in pkgutil.walk_packages(hardened_do.__path__, 'hardened_do.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    count = int(_run([str(consumer), "-c", probe], cwd="/").stdout)
    assert count >= 15


def test_installed_render_cli_reads_templates_from_the_wheel(consumer, tmp_path, keys):
    public, _ = keys.make()
    stack_file = tmp_path / "Pulumi.lib.yaml"
    stack_file.write_text(json.dumps({"config": {
        "hardened-do:admin_ssh_keys": [public],
        "hardened-do:ssh_allowed_sources": ["203.0.113.7/32"],
        "hardened-do:roles": {"web": {"services": [{"name": "https", "port": 443, "exposure": "public"}]}},
        "hardened-do:hosts": [{"name": "web-1", "role": "web"}],
    }}))
    out = _run([str(consumer), "-m", "hardened_do.cloud_init", "render", "--stack-file", str(stack_file), "--host", "web-1"],
               cwd=tmp_path).stdout
    assert out.startswith("#cloud-config\n# hardened-do: host web-1, role web\n")
    assert "/etc/ssh/sshd_config.d/00-hardened-do.conf" in out and "PermitRootLogin no" in out


# Runs examples/minimal with the mock engine loaded from its file, so that the
# repository is not on the consumer's sys.path.
_RUN_EXAMPLE = """
import importlib.util, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("mock_engine", sys.argv[1])
engine = importlib.util.module_from_spec(spec)
sys.modules["mock_engine"] = engine
spec.loader.exec_module(engine)
plan = engine.run_program(json.loads(sys.argv[3]), program=Path(sys.argv[2]))
import hardened_do
print(json.dumps({"types": [r.type for r in plan.resources], "exports": plan.exports,
                  "hardened_do": hardened_do.__file__}, default=str))
"""


def test_minimal_example_plans_a_hardened_droplet_with_the_installed_wheel(consumer, keys):
    public, _ = keys.make()
    config = {"hardened-do:admin_ssh_key": public, "hardened-do:ssh_allowed_source": "203.0.113.7/32"}
    proc = _run(
        [str(consumer), "-c", _RUN_EXAMPLE, str(ROOT / "offline" / "mock_engine.py"),
         str(ROOT / "examples" / "minimal" / "__main__.py"), json.dumps(config)],
        cwd="/",
        env={"PULUMI_ERROR_OUTPUT_STRING": "true", "PATH": "/usr/bin:/bin"},
    )
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert Path(seen["hardened_do"]).is_relative_to(consumer.parent.parent)
    types = seen["types"]
    for typ in ("digitalocean:index/vpc:Vpc", "digitalocean:index/firewall:Firewall",
                "digitalocean:index/tag:Tag", "digitalocean:index/sshKey:SshKey", "digitalocean:index/droplet:Droplet"):
        assert types.count(typ) == 1, (typ, types)
    assert seen["exports"]["ssh"].startswith("ssh ops@")


def test_installed_plugin_serves_the_schema_over_grpc(consumer):
    """The wheel carries the plugin: its directory in site-packages runs as
    the language host would run it, with hardened_do from the wheel."""
    from hardened_do.provider import package_schema

    site = Path(_run([str(consumer), "-c", "import hardened_do, os; print(os.path.dirname(hardened_do.__file__))"],
                     cwd="/").stdout.strip())
    with running_plugin(consumer, site / "provider", env={"PATH": "/usr/bin:/bin"}) as stub:
        assert served_version(stub) == VERSION
        assert served_schema(stub) == package_schema()


def test_pip_installs_from_a_git_url(tmp_path):
    """`pip install git+file://...` builds from a fresh clone of the committed tree."""
    if shutil.which("git") is None:
        pytest.skip("needs `git`")
    committed = _run(["git", "-C", str(ROOT), "ls-files", "pyproject.toml", "hardened_do/__init__.py"]).stdout.split()
    if len(committed) < 2:
        pytest.skip("pyproject.toml and hardened_do/ are not committed yet; a git URL sees only commits")
    python = _fresh_venv(tmp_path / "venv")
    _pip("--python", str(python), "install", "--no-deps", "--quiet", f"git+file://{ROOT}")
    probe = "import hardened_do; print(hardened_do.__file__, hardened_do.__version__)"
    where, version = _run([str(python), "-c", probe], cwd="/").stdout.split()
    assert Path(where).is_relative_to(tmp_path / "venv") and version == VERSION
