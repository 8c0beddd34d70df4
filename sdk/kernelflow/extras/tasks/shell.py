"""``ShellTask``: a shell script as a task, at Flyte's path (``flytekit.extras.tasks.shell``).

The script is a template: ``{inputs.x}`` and ``{outputs.y}`` are replaced by the
input values (a file or directory by the path of a copy made for this run, as
Flyte downloads inputs) and the output locations,
and nothing else is touched, so ``${VAR}`` and ``{a,b}`` stay the shell's. Each
:class:`OutputLocation` names an output, its type (``FlyteFile`` or
``FlyteDirectory``) and where the script leaves it (itself a template over the
inputs); what is there when the script ends becomes the output, copied into the
store like any file a task returns. The script's text is the task's code for the
cache key. A non-zero exit fails the task with the script's last lines of stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._core.errors import DefinitionError, TaskError
from kernelflow._core.hashing import combine
from kernelflow._core.interface import Interface, type_name
from kernelflow.engine.context import current_context
from kernelflow.exceptions.unsupported import refuse
from kernelflow.types.directory import FlyteDirectory
from kernelflow.types.file import FlyteFile
from kernelflow.workflows.task import CallableTask, task

__all__ = ["OutputLocation", "ShellTask"]

_PLACEHOLDER = re.compile(r"\{\s*(inputs|outputs)\.(\w+)\s*\}")
_STDERR_LINES = 20


@dataclass(frozen=True)
class OutputLocation:
    """Output ``var`` of type ``var_type``, which the script leaves at ``location``."""

    var: str
    var_type: type
    location: str | os.PathLike[str]


class ShellTask(CallableTask):
    """A task whose body is a shell script (Flyte's ``ShellTask``).

    ``script`` or ``script_file`` is the template; ``inputs`` (``kwtypes(x=FlyteFile)``)
    types the inputs; ``output_locs`` lists the outputs; ``shell`` runs it
    (``/bin/sh`` as in Flyte); ``debug`` prints the script before it runs. Other
    keywords are ``@task``'s (``cache``, ``retries``, ``timeout``, ``requests``...).
    """

    def __init__(
        self,
        name: str,
        debug: bool = False,
        script: str | None = None,
        script_file: str | os.PathLike[str] | None = None,
        task_config: Any = None,
        shell: str = "/bin/sh",
        inputs: Mapping[str, type] | None = None,
        output_locs: list[OutputLocation] | None = None,
        **task_options: Any,
    ) -> None:
        self.name = name
        self.debug = debug
        self.shell = shell
        self.script = _script_text(name, script, script_file)
        self.output_locs = tuple(output_locs or ())
        outputs = {loc.var: _output_type(name, loc) for loc in self.output_locs}
        kind = "none" if not outputs else "single" if len(outputs) == 1 else "tuple"
        self.interface = Interface(
            inputs=dict(inputs or {}), outputs=outputs, defaults={}, output_kind=kind
        )
        _check_placeholders(self)
        settings = task(**task_options)(_no_body)  # the options, checked as @task checks them
        self.options = settings.options
        self.requirements = settings.requirements
        self.__module__ = _caller_module()
        self.__qualname__ = name

    def run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        values = {name: _as_text(name, value) for name, value in inputs.items()}
        locations = {
            loc.var: _fill(os.fspath(loc.location), values, {}) for loc in self.output_locs
        }
        script = _fill(self.script, values, locations)
        if self.debug:
            print(f"shell task {self.name!r} runs:\n{script}")
        done = subprocess.run(
            script, shell=True, executable=self.shell, capture_output=True, text=True
        )
        if done.stdout:
            print(done.stdout, end="")
        if done.returncode != 0:
            raise _script_failed(self.name, done)
        return {loc.var: _output(self.name, loc, locations[loc.var]) for loc in self.output_locs}

    @property
    def code_hash(self) -> str:
        locations = [
            (loc.var, type_name(loc.var_type), os.fspath(loc.location)) for loc in self.output_locs
        ]
        return combine("shell-task", self.shell, self.script, repr(locations))


def _no_body() -> None:
    """The stand-in function ``@task`` checks a shell task's options on."""


def _caller_module() -> str:
    import sys

    frame = sys._getframe(2)
    return str(frame.f_globals.get("__name__", "__main__"))


def _script_text(name: str, script: str | None, script_file: str | os.PathLike[str] | None) -> str:
    if (script is None) == (script_file is None):
        raise DefinitionError(
            f"shell task {name!r} needs exactly one of script= and script_file=",
            task=name,
            fix="pass the script's text as script=, or its path as script_file=",
        )
    if script is not None:
        return script
    try:
        return Path(script_file).read_text()  # type: ignore[arg-type]
    except OSError as error:
        raise DefinitionError(
            f"shell task {name!r}: its script_file {str(script_file)!r} cannot be read "
            f"({error.strerror or error})",
            task=name,
            variable="script_file",
            fix="give the path of an existing script (relative to the working directory), "
            "or the script's text as script=",
        ) from error


def _output_type(name: str, location: OutputLocation) -> type:
    if isinstance(location.var_type, type) and issubclass(
        location.var_type, (FlyteFile, FlyteDirectory)
    ):
        return location.var_type
    raise DefinitionError(
        f"shell task {name!r}: output {location.var!r} is declared as "
        f"{type_name(location.var_type)}; a shell task's outputs are files or directories",
        task=name,
        variable=location.var,
        fix="declare it as FlyteFile or FlyteDirectory, at the location the script writes",
    )


def _check_placeholders(made: ShellTask) -> None:
    """Every ``{inputs.x}``/``{outputs.y}`` must name an input or output (a typo would
    otherwise reach the shell as literal text)."""
    templates = [made.script, *(os.fspath(loc.location) for loc in made.output_locs)]
    known = {"inputs": made.interface.inputs, "outputs": made.interface.outputs}
    for template in templates:
        for kind, var in _PLACEHOLDER.findall(template):
            if var not in known[kind]:
                raise DefinitionError(
                    f"shell task {made.name!r} uses {{{kind}.{var}}}, but it has no "
                    f"{kind[:-1]} named {var!r}",
                    task=made.name,
                    variable=var,
                    fix=f"declare it, or use one of: {', '.join(known[kind]) or '(none)'}",
                )


def _as_text(name: str, value: Any) -> str:
    """An input as the script sees it: a file or directory by the path of its own copy.

    As Flyte downloads a task's inputs, the script gets a copy in this attempt's
    working directory: a script that changes its input in place (``echo >> {inputs.x}``)
    changes neither the producer's file nor the store's.
    """
    if not isinstance(value, FlyteFile | FlyteDirectory):
        return str(value)
    source = Path(value.download())
    copy = Path(current_context().working_directory) / "inputs" / name / source.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, copy, dirs_exist_ok=True)
    else:
        shutil.copyfile(source, copy)
    return str(copy)


def _fill(template: str, inputs: Mapping[str, str], outputs: Mapping[str, str]) -> str:
    names = {"inputs": inputs, "outputs": outputs}
    return _PLACEHOLDER.sub(lambda m: names[m.group(1)][m.group(2)], template)


def _output(name: str, location: OutputLocation, path: str) -> Any:
    if not os.path.exists(path):
        raise TaskError(
            f"shell task {name!r}: output {location.var!r} should be at {path!r}, "
            "but the script left nothing there",
            task=name,
            variable=location.var,
            fix="write the output where its OutputLocation says (or fix the location)",
        )
    return location.var_type(path)


def _script_failed(name: str, done: subprocess.CompletedProcess[str]) -> TaskError:
    tail = "\n".join(done.stderr.strip().splitlines()[-_STDERR_LINES:])
    return TaskError(
        f"shell task {name!r}: the script exited with status {done.returncode}"
        + (f"; its last lines of stderr:\n{tail}" if tail else ""),
        task=name,
        fix="run the script by hand with the same inputs (debug=True prints it)",
    )


def __getattr__(name: str) -> object:
    refuse(__name__, name)
