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

from kernelflow._core.errors import ParameterError
from kernelflow._core.scope import check_domain, current_scope
from kernelflow.notebook.versions import DEFAULT_OUT, versions
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
