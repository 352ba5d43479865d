"""Promises about the project itself: the public API, lazy imports, the README."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys

import pytest

import midiexport
from conftest import ROOT, names_a_flag, package_env


def test_all_is_sorted_and_every_name_imports():
    assert midiexport.__all__ == sorted(midiexport.__all__)
    for name in midiexport.__all__:
        assert getattr(midiexport, name) is not None


def test_help_loads_neither_numpy_nor_httpx_nor_mido():
    heavy = ("numpy", "httpx", "mido", "orjson", "pretty_midi", "midiexport.gm")  # gm: the GM tables, about 3 ms
    code = (
        "import sys\nfrom midiexport.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_converting_json_loads_no_http_mido_server_tempo_clean_or_midi_reader(tmp_path):
    code = (
        "import sys\nfrom midiexport.cli import main\n"
        f"try:\n    main(['convert', {str(ROOT / 'samples' / 'sample-song.json')!r}, '-o', {str(tmp_path / 'x.mid')!r}, '-q'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('httpx', 'mido', 'msgspec', 'uvicorn', 'starlette', 'midiexport.jobs.serve', 'midiexport.io.http',"
        " 'midiexport.stages.tempo', 'midiexport.stages.midifile', 'midiexport.stages.onsets',"
        " 'midiexport.stages.clean', 'midiexport.stages.key', 'midiexport.io.archive', 'midiexport.jobs.report',"
        " 'traceback')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "x.mid").exists()
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_readme_main_command_converts_the_sample(tmp_path):
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"(midiexport convert samples/[^\n`]*)", readme)
    assert commands, "the README shows the main command on the bundled sample"
    for command in commands:
        args = shlex.split(command)
        done = subprocess.run([sys.executable, "-m", "midiexport", *args[1:], "-o", str(tmp_path / "x.mid"), "--overwrite"],
                              cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr


FOUNDATION = {"errors", "model", "options", "gm", "defaults", "protocol", "__init__"}
LAYER = {"stages": 1, "outputs": 1, "io": 1, "jobs": 2, "cli": 3}  # foundation modules are layer 0


def _layer_of(parts: tuple[str, ...]) -> tuple[int, str]:
    """Return (layer, group) of a module path inside the package, e.g. ('stages', 'tempo')."""
    head = parts[0] if parts else "__init__"
    if head in LAYER:
        return LAYER[head], head
    return 0, "foundation"


def _package_imports(path):
    """Yield the package-relative module paths that a module imports, anywhere in it."""
    import ast

    package_parts = path.relative_to(ROOT / "midiexport").with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = (*base, *(node.module.split(".") if node.module else ()))
            elif node.module and node.module.split(".")[0] == "midiexport":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            names = [alias.name for alias in node.names] if not node.module or not target else [None]
            for name in names:
                yield target if name is None else (*target, name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "midiexport":
                    yield tuple(alias.name.split(".")[1:])


def test_imports_run_one_way_from_cli_to_the_foundation():
    """cli -> jobs -> io/outputs/stages -> foundation: a module imports only its own group or below."""
    broken = []
    for path in sorted((ROOT / "midiexport").rglob("*.py")):
        if path.name == "__main__.py" or path == ROOT / "midiexport" / "__init__.py":
            continue  # the entry point and the lazy public API may name anything
        parts = path.relative_to(ROOT / "midiexport").with_suffix("").parts
        layer, group = _layer_of(parts if len(parts) > 1 else (parts[0].removesuffix(".py"),))
        for target in _package_imports(path):
            t_layer, t_group = _layer_of(target)
            if target and target[0] in FOUNDATION:
                t_layer, t_group = 0, "foundation"
            if t_layer > layer or (t_layer == layer and t_group != group and layer > 0):
                broken.append(f"{'/'.join(parts)} imports {'.'.join(target)}")
    assert broken == []


def test_type_checkers_see_every_public_name_the_lazy_loader_serves():
    import ast

    tree = ast.parse((ROOT / "midiexport" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == midiexport._EXPORTS


USER_SCRIPT = """
import midiexport

options = midiexport.ConvertOptions(bpm=120, ppq=480)
records = midiexport.normalize_payload(b"{}", source="x.json")
song = midiexport.convert_record(records[0], options)
reveal_type(midiexport.convert_record)
reveal_type(song)
midiexport.convert_record("not a record", options)
"""


def test_mypy_strict_sees_the_real_signatures_through_the_lazy_imports(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
                          cwd=tmp_path, env=package_env(MYPYPATH=str(ROOT)),
                          capture_output=True, text=True, check=False)  # fmt: skip
    out = done.stdout
    assert 'Revealed type is "def (record: midiexport.model.Record, options: midiexport.options.ConvertOptions' in out
    assert 'Revealed type is "midiexport.model.Song"' in out
    assert 'Argument 1 to "convert_record" has incompatible type "str"; expected "Record"' in out
    assert "Any" not in out.split("Revealed type is")[1].split("\n")[0]


def test_library_strings_name_no_command_line_flag():
    # A message of the library reaches a Python caller, serve's log and answers and the --report:
    # it names a setting in words; only cli/ rewords them as flags (cli/report.py's hints).
    import ast

    found = []
    for path in sorted((ROOT / "midiexport").rglob("*.py")):
        if path.parent.name == "cli":
            continue
        tree = ast.parse(path.read_text())
        docs = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}  # docstrings may name flags
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            and names_a_flag(node.value)
        ]  # fmt: skip
    assert found == []


def _readme_python(readme: str) -> list[str]:
    """Return the README's Python snippets that need no network, in order."""
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    return [block for block in blocks if "fetch_record" not in block]


def test_readme_python_snippets_run_in_order_and_return_what_they_say(tmp_path):
    # The snippets run one after another on the bundled sample as task.json (and songs.jsonl):
    # a snippet's expression whose comment opens with a repr ("# []", "# [PosixPath(...)]")
    # must return exactly that, and the sample must give no warning.
    sample = (ROOT / "samples" / "sample-song.json").read_bytes()
    (tmp_path / "task.json").write_bytes(sample)
    (tmp_path / "songs.jsonl").write_text(json.dumps(json.loads(sample)) + "\n")
    code = "\n".join(_readme_python((ROOT / "README.md").read_text()))
    promised = {}
    for number, line in enumerate(code.splitlines(), 1):
        comment = re.search(r"#\s*(\[[^\]]*\])", line)
        if comment:
            promised[number] = comment.group(1)
    tree = ast.parse(code)
    for at, node in enumerate(tree.body):  # each expression statement prints its line and its repr
        if isinstance(node, ast.Expr) and node.lineno in promised:
            shown = ast.parse(f"print({node.lineno}, repr(_))").body[0]
            tree.body[at] = ast.Module(body=[ast.Assign([ast.Name("_", ast.Store())], node.value), shown],
                                       type_ignores=[])  # fmt: skip
    runner = ast.fix_missing_locations(ast.Module(body=_flat(tree.body), type_ignores=[]))
    done = subprocess.run([sys.executable, "-c", ast.unparse(runner)], cwd=tmp_path, env=package_env(),
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.split(" ", 1)[0].isdigit())
    assert promised and {int(k): v for k, v in printed.items() if int(k) in promised} == promised
    assert done.stdout.splitlines()[0].endswith(" ()"), done.stdout  # song.report.warnings: none on the sample


def _flat(body):
    out = []
    for node in body:
        out += node.body if isinstance(node, ast.Module) else [node]
    return out


@pytest.mark.parametrize("song", ["samples/sample-song.json", "fixtures/record-info.json"])  # and the API's example
def test_readme_program_and_shift_examples_name_the_samples_instruments(tmp_path, song):
    # The README's --program and --shift examples, run on the bundled sample as task.json: no warning.
    (tmp_path / "task.json").write_bytes((ROOT / song).read_bytes())
    readme = (ROOT / "README.md").read_text()
    commands = [c for c in re.findall(r"^(midiexport convert task\.json [^#\n]*)", readme, flags=re.M)
                if "--program" in c or "--shift" in c]  # fmt: skip
    assert len(commands) >= 2
    for command in commands:
        args = [*shlex.split(command)[1:], "-o", "x.mid", "--overwrite"]
        done = subprocess.run([sys.executable, "-m", "midiexport", *args], cwd=tmp_path, env=package_env(),
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0 and "warning" not in done.stderr, (command, done.stderr)
