"""`rgbt-track` starts fast: the parser is built without importing torch, and the commands
that need no model (info, evaluate, bag from-sequence, synth) never import it."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rgbt_tracking_ros import cli

REPO = Path(__file__).resolve().parents[1]

# Runs commands in one fresh interpreter and reports whether torch got imported after each.
SCRIPT = """
import json, sys
from rgbt_tracking_ros.cli import main
report = []
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    report.append([argv, code, "torch" in sys.modules])
print(json.dumps(report))
"""


def _run(commands: list[list[str]], cwd: Path) -> list:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_commands_without_a_model_do_not_import_torch(tmp_path):
    data, results = tmp_path / "data", tmp_path / "results" / "copy"
    commands = [
        ["--help"],
        ["info"],
        ["evaluate", "--help"],
        ["bag", "from-sequence", "--help"],
        ["synth", "--help"],
        ["synth", str(data), "--seeds", "3", "--frames", "4", "--height", "48", "--width", "64"],
        ["evaluate", "--dataset", "lasher", "--root", str(data), str(results)],
    ]
    if importlib.util.find_spec("rosbags") is not None:
        commands.append(["bag", "from-sequence", "--dataset", "lasher", str(data / "synth_3"), str(tmp_path / "bag"), "-q"])
    results.mkdir(parents=True)
    # The evaluation scores a copy of the synthetic ground truth, made between two runs.
    first = _run(commands[:6], tmp_path)
    (results / "synth_3.txt").write_text((data / "synth_3" / "visible.txt").read_text())
    report = first + _run(commands[6:], tmp_path)
    assert [code for _, code, _ in report] == [0] * len(commands), report
    assert [argv for argv, _, torch in report if torch] == []
    # A model command does import it (the check above can see an import).
    assert _run([["info", "--models"]], tmp_path)[0][2] is True


def test_placeholder_help_lines_match_the_commands():
    """`rgbt-track --help` lists the commands from cli.COMMANDS; each module's own help line agrees."""
    parser = cli.build_parser(complete=True)
    subcommands = next(action for action in parser._actions if action.dest == "command")
    helps = {action.dest: action.help for action in subcommands._choices_actions}
    assert helps == {name: help_line for name, (_, _, help_line) in cli.COMMANDS.items()}


@pytest.mark.parametrize("argv", [["-v", "info"], ["info"]])
def test_the_running_command_is_found_after_options(argv, capsys):
    assert cli.main(argv) == 0
    assert "models" in capsys.readouterr().out


def test_no_command_imports_another():
    """Each command's module in rgbt_tracking_ros/cli/ stands alone: what two commands share
    lives in cli/options.py or in the core, so changing one command cannot break another."""
    import ast

    commands = {f"rgbt_tracking_ros.cli.{module}" for module, _, _ in cli.COMMANDS.values()}
    offenders = []
    for module in sorted(commands):
        path = REPO / (module.replace(".", "/") + ".py")
        package = module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module or ""
                names = {base} | {f"{base}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            else:
                continue
            offenders += [f"{module} imports {hit}" for hit in sorted((commands - {module}) & names)]
    assert not offenders, offenders
