"""Promotion: an exported version of a workflow moves on from one domain to the next.

An export (``exports/<workflow>/<version>.ipynb``, indexed in ``versions.json``)
is what a domain runs; promoting it to ``production`` is a decision a team wants
to be able to read back: who made it, when, from which domain, which version. It
is recorded in the run database, beside the runs, so that every machine of the
team sees it (``kernelflow promotions``). Only a version that was exported can be
promoted: a record naming a notebook nobody can find would mislead.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import Any

from kernelflow._core.errors import ParameterError
from kernelflow._core.scope import (
    ANY,
    DEFAULT_DOMAIN,
    DEFAULT_PROJECT,
    check_domain,
    current_scope,
)
from kernelflow.notebook.versions import DEFAULT_OUT, Record, versions
from kernelflow.store.home import Store


def promote(
    store: Store,
    workflow: str,
    version: str,
    *,
    to: str,
    out: str | os.PathLike[str] = DEFAULT_OUT,
) -> dict[str, object]:
    """Record the promotion of ``workflow`` ``version`` from the current domain to ``to``.

    Raises a :class:`~kernelflow._core.errors.ConfigurationError` for an unknown
    domain and a :class:`ParameterError` for a version that was never exported or a
    domain promoted to itself; nothing is recorded then.
    """
    scope = current_scope()
    check_domain(to, option="--to")
    if to == scope.domain:
        raise ParameterError(
            f"{workflow} {version} cannot be promoted from {to!r} to itself",
            fix=f"name the domain it comes from with --domain (it is {to!r} now)",
            workflow=workflow,
            version=version,
        )
    exported = [record["version"] for record in versions(workflow, out)]
    if version not in exported:
        raise ParameterError(
            f"{workflow} has no exported version {version!r} under {os.fspath(out)!r}; "
            f"its versions: {', '.join(exported)}",
            fix=f"export it first (kernelflow export NOTEBOOK --out {os.fspath(out)}), or "
            "promote one of the versions listed",
            workflow=workflow,
            version=version,
        )
    return store.runs.record_promotion(
        project=scope.project,
        workflow=workflow,
        version=version,
        from_domain=scope.domain,
        to_domain=to,
        promoted_by=_user(),
    )


def _user() -> str:
    """Who runs this: the login name, or the uid where there is no name to find."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def versions_in(
    store: Store,
    workflow: str,
    out: str | os.PathLike[str] = DEFAULT_OUT,
    *,
    domain: str | None = None,
) -> list[Record]:
    """The exported versions of ``workflow`` in the current project, each with the
    ``domains`` it is in: the one it was exported in, then those it was promoted to.

    ``domain`` keeps only the versions in that domain (``None``: the current one;
    :data:`~kernelflow._core.scope.ANY`: all). An export made before projects and
    domains existed is in ``default`` / ``development``, as its runs are.
    """
    scope = current_scope()
    promoted = _promoted(store, workflow, scope.project)
    wanted = None if domain == ANY else (domain or scope.domain)
    listed = []
    for record in versions(workflow, out):
        if (record.get("project") or DEFAULT_PROJECT) != scope.project:
            continue
        domains = _domains(record, promoted.get(record["version"], []))
        if wanted is None or wanted in domains:
            listed.append({**record, "domains": domains})
    return listed


def _promoted(store: Store, workflow: str, project: str) -> dict[str, list[str]]:
    """The domains each version of ``workflow`` was promoted to, oldest first."""
    promoted: dict[str, list[str]] = {}
    for record in reversed(store.runs.promotions(workflow, project=project)):
        promoted.setdefault(str(record["version"]), []).append(str(record["to_domain"]))
    return promoted


def _domains(export: Mapping[str, Any], promoted_to: list[str]) -> list[str]:
    """The domains a version is in: the one it was exported in (its record's or its
    notebook's ``domain``; ``development`` before domains), then those it was promoted to."""
    return list(dict.fromkeys([export.get("domain") or DEFAULT_DOMAIN, *promoted_to]))


def check_in_domain(store: Store, metadata: Mapping[str, Any], path: str) -> None:
    """Refuse to schedule an export in a domain it was never exported in nor promoted to.

    A plan in ``production`` runs what was promoted there, so that a version reaches
    production by one recorded decision (:func:`promote`), not by a path typed in a
    ``schedule add``. Raises :class:`ParameterError` naming the version, its domains
    and the command that promotes it; notebooks without export metadata pass.
    """
    workflow, version = metadata.get("workflow"), metadata.get("version")
    if not isinstance(workflow, str) or not isinstance(version, str):
        return
    scope = current_scope()
    project = metadata.get("project") or DEFAULT_PROJECT
    domains = _domains(metadata, _promoted(store, workflow, project).get(version, []))
    if project == scope.project and scope.domain in domains:
        return
    raise ParameterError(
        f"{path!r} is {workflow} version {version} of project {project!r}, in "
        f"{', '.join(domains)}; it cannot be scheduled in {scope.project}/{scope.domain}",
        fix=(
            f"promote it first: kernelflow --project {project} --domain {domains[0]} "
            f"promote {workflow} {version} --to {scope.domain}"
            if project == scope.project
            else f"schedule it with --project {project}"
        ),
        workflow=workflow,
        version=version,
        domain=scope.domain,
    )
