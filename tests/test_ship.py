"""The node helper is standard-library only and runs isolated, as shipped."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from fleet import ship

NODE = Path(ship.NODE_DIR)


def test_zipapp_is_reproducible():
    assert ship.zipapp_bytes() == ship.zipapp_bytes()


def test_every_node_module_imports_under_isolated_python():
    modules = sorted(path.stem for path in NODE.glob("*.py") if path.stem != "__main__")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        "for name in sys.argv[2:]: importlib.import_module('fleet.node.' + name)\n"
        "allowed = sys.stdlib_module_names | {'fleet', '__main__'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] not in allowed)\n"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(NODE.parents[1]), *modules],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(modules) >= 10


def test_node_never_imports_the_control_side():
    import ast

    for path in NODE.glob("*.py"):
        for item in ast.walk(ast.parse(path.read_text())):
            if isinstance(item, ast.ImportFrom) and item.level == 0:
                names = [item.module or ""]
            elif isinstance(item, ast.Import):
                names = [alias.name for alias in item.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "fleet" or name.startswith("fleet.node"), f"{path.name} imports {name}"


def test_built_zipapp_runs_isolated(tmp_path):
    target = tmp_path / "baleine.pyz"
    digest = ship.build(str(target))
    assert digest == hashlib.sha256(target.read_bytes()).hexdigest()
    done = subprocess.run([sys.executable, "-I", "-S", str(target), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("baleine ")
    done = subprocess.run([sys.executable, "-I", "-S", str(target), "--help"], capture_output=True, text=True)
    assert "container" in done.stdout and "network" in done.stdout and "image" in done.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "baleine"
    assert script.exists(), "pip install -e . should install the baleine command"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_node_helper_needs_nothing_newer_than_python_3_9():
    """Hosts may run Debian 11's Python 3.9: vermin knows which release added each feature."""
    vermin = Path(sys.executable).parent / "vermin"
    done = subprocess.run([str(vermin), "--target=3.9-", "--violations", "--no-tips", "--eval-annotations",
                           str(NODE)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cached_build_is_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(ship, "_current", [])
    first = ship.current()
    cached = list((tmp_path / "baleine").glob("helper-*.pyz"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.data == ship.zipapp_bytes()
    monkeypatch.setattr(ship, "_current", [])
    assert ship.current().sha == first.sha  # read back from the cache
    cached[0].write_bytes(b"marked")  # a later process takes the cache as it is, without building again
    monkeypatch.setattr(ship, "_current", [])
    assert ship.current().data == b"marked"


def test_a_cache_write_that_fails_part_way_leaves_no_file(tmp_path):
    """A disk that fills mid-write (here a file-size limit): the build is right and the cache stays empty."""
    code = (
        "import resource, signal, sys; sys.path.insert(0, sys.argv[1])\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then write() fails with EFBIG, as on a full disk\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from fleet import ship\n"
        "assert ship.current().data == ship.zipapp_bytes()\n"
    )
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(NODE.parents[1])], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "baleine").iterdir()) == []


def test_a_build_that_fails_part_way_leaves_nothing(tmp_path):
    """`invoke build` on a full disk (here a file-size limit): an error, and no half-written file."""
    import errno

    code = (
        "import resource, signal, sys; sys.path.insert(0, sys.argv[1])\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from fleet import ship\n"
        "try:\n"
        "    ship.build(sys.argv[2])\n"
        "except OSError as error:\n"
        "    sys.exit(error.errno)\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", code, str(NODE.parents[1]), str(out / "baleine.pyz")],
                          env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == errno.EFBIG, done.stderr
    assert list(out.iterdir()) == []


def test_the_cache_key_follows_the_sources(tmp_path):
    node = tmp_path / "node"
    node.mkdir()
    (node / "a.py").write_text("x = 1\n")
    before = ship.sources_key(str(node))
    (node / "a.py").write_text("x = 2\n")
    assert ship.sources_key(str(node)) != before


def test_the_boot_line_runs_the_helper_without_runpy_and_argv_as_a_zipapp_run_leaves_it(tmp_path):
    """The control side's way in (boot.argv): same helper, 3.5 ms less than running the zipapp through runpy."""
    from fleet.node import boot

    target = tmp_path / "baleine.pyz"
    ship.build(str(target))
    line = [*boot.argv(sys.executable, str(target)), "--version"]
    done = subprocess.run([line[0], "-X", "importtime", *line[1:]], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("baleine "), done.stderr
    loaded = {row.rsplit("|", 1)[-1].strip() for row in done.stderr.splitlines() if "|" in row}
    assert "fleet.node.cli" in loaded and "runpy" not in loaded
    done = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", str(target), "--version"],
                          capture_output=True, text=True)  # fmt: skip
    assert "runpy" in done.stderr  # what the boot line saves: a zipapp run always goes through it
    # cron install names the helper from sys.argv[0]: the boot line leaves the zipapp there
    cron_file = tmp_path / "baleine.cron"
    env = {"BALEINE_ROOT": str(tmp_path / "root"), "BALEINE_CRON_FILE": str(cron_file), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([*boot.argv(sys.executable, str(target)), "cron", "install"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"-I -S {target} check >> " in cron_file.read_text()


def test_the_boot_entry_refuses_an_old_python_in_words(monkeypatch, capsys):
    import pytest

    from fleet.node import boot

    monkeypatch.setattr("sys.version_info", (3, 7, 3, "final", 0))
    with pytest.raises(SystemExit) as raised:
        boot.run()
    assert raised.value.code == boot.PYTHON_TOO_OLD
    assert "python3 is 3.7 on this host; baleine needs 3.9 or later" in capsys.readouterr().err


def test_the_helper_unpacks_into_a_directory_of_this_python_s_bytecode(tmp_path):
    """What the control side runs on a host: no zipimport, no compiling, nothing written by a command."""
    import importlib.util
    import marshal

    from fleet.node import boot

    zipapp = tmp_path / "baleine-1.pyz"
    ship.build(str(zipapp))
    tree = tmp_path / "baleine-1"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", boot.UNPACK_LINE, str(zipapp), str(tree)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    modules = sorted(path.name for path in (tree / "fleet" / "node").glob("*.py"))
    assert modules == sorted(path.name for path in NODE.glob("*.py"))
    pyc = tree / "fleet" / "node" / "__pycache__" / f"cli.{sys.implementation.cache_tag}.pyc"
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER and data[4:8] == (1).to_bytes(4, "little")  # unchecked hash
    assert marshal.loads(data[16:]).co_filename == str(tree / "fleet" / "node" / "cli.py")  # tracebacks: its place
    assert sorted(path.name for path in tmp_path.iterdir()) == ["baleine-1", "baleine-1.pyz"]  # no work left

    def files():
        return {str(path): path.stat().st_mtime_ns for path in tree.rglob("*")}

    before = files()
    line = [*boot.argv(sys.executable, str(tree)), "--version"]
    done = subprocess.run([line[0], "-v", *line[1:]], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("baleine "), done.stderr
    assert f"code object from '{pyc}'" in done.stderr  # its bytecode, from a plain file
    assert files() == before  # nothing compiled or written
    again = subprocess.run([sys.executable, "-I", "-S", "-c", boot.UNPACK_LINE, str(zipapp), str(tree)],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0 and files() == before  # another upload of the same build: left as it is
    assert sorted(path.name for path in tmp_path.iterdir()) == ["baleine-1", "baleine-1.pyz"]


def test_unpacking_writes_only_modules_and_only_inside_its_directory(tmp_path):
    import zipfile

    from fleet.node import unpack

    zipapp = tmp_path / "odd.pyz"
    with zipfile.ZipFile(zipapp, "w") as archive:
        archive.writestr("fleet/__init__.py", "")
        archive.writestr("fleet/__init__.pyc", b"the builder's bytecode")
        archive.writestr("../escaped.py", "x = 1\n")
        archive.writestr("fleet//twice.py", "x = 1\n")
        archive.writestr("NOTES", "not a module")
    unpack.unpack(str(zipapp), str(tmp_path / "tree"))
    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert written == [
        "odd.pyz",
        "tree/fleet/__init__.py",
        f"tree/fleet/__pycache__/__init__.{sys.implementation.cache_tag}.pyc",
    ]


def test_unpacking_refuses_an_old_python_in_words(monkeypatch, capsys):
    import pytest

    from fleet.node import boot

    monkeypatch.setattr("sys.version_info", (3, 7, 3, "final", 0))
    with pytest.raises(SystemExit) as raised:
        boot.unpack("x.pyz", "x")
    assert raised.value.code == boot.PYTHON_TOO_OLD
    assert "python3 is 3.7 on this host; baleine needs 3.9 or later" in capsys.readouterr().err


def test_unpacking_removes_what_a_killed_upload_left_but_not_another_s_work(tmp_path):
    import zipfile

    from fleet.node import unpack

    zipapp = tmp_path / "a.pyz"
    with zipfile.ZipFile(zipapp, "w") as archive:
        archive.writestr("fleet/__init__.py", "")
    left, busy = tmp_path / ".unpacking-left", tmp_path / ".unpacking-busy"
    for folder in (left, busy):
        (folder / "fleet").mkdir(parents=True)
    hour_ago = os.stat(left).st_mtime - unpack.STALE - 60
    os.utime(left, (hour_ago, hour_ago))
    unpack.unpack(str(zipapp), str(tmp_path / "tree"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [".unpacking-busy", "a.pyz", "tree"]
