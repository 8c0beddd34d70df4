"""Projects and domains: whose a run or a cache entry is, and in which environment.

A team shares one installation (one store, one run database) and is separated by
**project**; the environments a workflow moves through, ``development``,
``staging`` and ``production``, are **domains** (Flyte's names). Every run and
cache entry is recorded in one project and one domain, and a cache is shared
within them and never across domains, unless a run asks to also read another
domain's entries (``--cache-from production``): a production result is never
made from a development run's cache by accident.

Which project and domain: ``--project`` / ``--domain`` (the CLI sets the
variables below for the command and the workers it starts, as ``--store`` does),
else ``$KERNELFLOW_PROJECT`` / ``$KERNELFLOW_DOMAIN``, else ``default`` /
``development``. The scope is read from the environment where it is used, so a
worker process started by a run records in the run's scope.

The three domains are all most teams need; ``$KERNELFLOW_DOMAINS`` (names
separated by commas, e.g. ``development,qa,staging,production``) replaces them
for an installation that has others. Every machine of a team should set the same.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from kernelflow._core.environ import environment_variable
from kernelflow._core.errors import ConfigurationError

PROJECT_ENV = "KERNELFLOW_PROJECT"
DOMAIN_ENV = "KERNELFLOW_DOMAIN"
CACHE_FROM_ENV = "KERNELFLOW_CACHE_FROM"
DOMAINS_ENV = "KERNELFLOW_DOMAINS"
DEFAULT_PROJECT = "default"
DEFAULT_DOMAIN = "development"
DOMAINS = ("development", "staging", "production")
ANY = "*"  # a filter that matches every project or every domain
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True, slots=True)
class Scope:
    """The project and domain a run records in, and the other domain whose cache
    entries it may also read (``cache_from``; its own new entries stay in ``domain``)."""

    project: str = DEFAULT_PROJECT
    domain: str = DEFAULT_DOMAIN
    cache_from: str | None = None


def current_scope(
    project: str | None = None, domain: str | None = None, cache_from: str | None = None
) -> Scope:
    """The scope named by the arguments, else by the environment, else the defaults.

    Raises :class:`ConfigurationError` for a domain that does not exist or a project
    name that cannot be one, before anything is written.
    """
    env = os.environ
    return _checked(
        project or env.get(PROJECT_ENV) or DEFAULT_PROJECT,
        domain or env.get(DOMAIN_ENV) or DEFAULT_DOMAIN,
        cache_from or env.get(CACHE_FROM_ENV) or None,
        env.get(DOMAINS_ENV) or None,
    )


@functools.lru_cache(maxsize=32)
def _checked(project: str, domain: str, cache_from: str | None, domains: str | None) -> Scope:
    """One check per combination, as a run may ask for its scope more than once."""
    check_project(project)
    check_domain(domain, option="--domain", variable=DOMAIN_ENV)
    if cache_from is not None:
        check_domain(cache_from, option="--cache-from", variable=CACHE_FROM_ENV)
    return Scope(project, domain, None if cache_from == domain else cache_from)


def known_domains() -> tuple[str, ...]:
    """The domains that exist: ``$KERNELFLOW_DOMAINS``, else :data:`DOMAINS`."""
    configured = os.environ.get(DOMAINS_ENV)
    if not configured:
        return DOMAINS
    return tuple(name for name in (part.strip() for part in configured.split(",")) if name)


def check_domain(domain: str, *, option: str = "--domain", variable: str = DOMAIN_ENV) -> str:
    """``domain`` if it exists; else a :class:`ConfigurationError` naming it and the known ones."""
    domains = known_domains()
    if domain not in domains or not _PROJECT_NAME.fullmatch(domain):
        raise ConfigurationError(
            f"the domain {domain!r} does not exist; the domains are {', '.join(domains)}",
            fix=f"use one of them with {option} (or ${variable}), or add it to "
            f"${DOMAINS_ENV}; nothing was written",
            domain=domain,
        )
    return domain


def check_project(project: str) -> str:
    """``project`` if it can name a project: letters, digits, ``_ . -``, up to 63 characters."""
    if not _PROJECT_NAME.fullmatch(project):
        raise ConfigurationError(
            f"{project!r} cannot name a project: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, up to 63 characters",
            fix=f"pass another name with --project (or ${PROJECT_ENV}); nothing was written",
            project=project,
        )
    return project


def scope_filter(project: str | None, domain: str | None) -> tuple[str | None, str | None]:
    """What a listing filters by: ``None`` (the current project or domain), a name, or
    :data:`ANY`, as ``(project, domain)`` with ``None`` for "do not filter"."""
    here = current_scope(None if project in (None, ANY) else project, _named(domain))
    return (
        None if project == ANY else here.project,
        None if domain == ANY else here.domain,
    )


def _named(domain: str | None) -> str | None:
    return None if domain in (None, ANY) else domain


@contextlib.contextmanager
def in_scope(
    project: str | None = None, domain: str | None = None, cache_from: str | None = None
) -> Iterator[Scope]:
    """The scope named (else the current one), checked, and set in the environment for
    the block: what ``--project``, ``--domain`` and ``--cache-from`` do for a command
    and the workers it starts, as ``--store`` does for the store."""
    scope = current_scope(project, domain, cache_from)
    with contextlib.ExitStack() as stack:
        for variable, value in (
            (PROJECT_ENV, project), (DOMAIN_ENV, domain), (CACHE_FROM_ENV, cache_from)
        ):  # fmt: skip
            stack.enter_context(environment_variable(variable, value))
        yield scope
