"""Resources, an image, and a secret: a task that calls an API with a token."""

from __future__ import annotations

import os
from typing import Annotated

import pandas as pd

from kernelflow import ImageSpec, Resources, Secret, current_context, task, workflow
from kernelflow.deck import Deck, TopFrameRenderer

TOKEN = Secret(group="weather-api", key="token")
IMAGE = ImageSpec(name="weather", packages=["pandas"], registry="localhost:30000")


@task(
    requests=Resources(cpu="1", mem="100Mi"),
    limits=Resources(cpu="1", mem="200Mi", ephemeral_storage="1Gi"),
    container_image=IMAGE,
    secret_requests=[TOKEN],
)
def token_length(city: str) -> int:
    token = current_context().secrets.get("weather-api", "token")
    return len(token) + len(city)


@workflow
def weather_wf(city: str = "Lyon") -> int:
    return token_length(city=city)


@task(requests=Resources(cpu=str((os.cpu_count() or 1) + 1)))
def greedy(x: int) -> int:
    return x


@task(requests=Resources(mem="64Ti"))
def hungry(x: int) -> int:
    return x


@workflow
def greedy_wf(x: int = 1) -> int:
    return greedy(x=x)


@workflow
def lowered_wf(x: int = 1) -> int:
    # The task asks for more CPUs than any machine here has; this use asks for one.
    return greedy(x=x).with_overrides(requests=Resources(cpu="1"), container_image="lean:1")


@workflow
def raised_wf(x: int = 1) -> int:
    return token_length(city="x").with_overrides(requests=Resources(mem="64Ti"))


@task(enable_deck=True, secret_requests=[TOKEN])
def profile(rows: int) -> int:
    token = current_context().secrets.get("weather-api", "token")
    current_context().default_deck.append(f"<p>{rows} rows</p>")
    Deck("Details", f"<p>token used: {token}</p>")  # the page shows [secret] instead
    return rows * 2


@task
def quiet(rows: int) -> int:
    Deck("Ignored", "<p>not kept: this task has no deck</p>")
    return rows


@workflow
def deck_wf(rows: int = 3) -> int:
    return quiet(rows=profile(rows=rows))


@task(enable_deck=True)
def top_cities(n: int) -> Annotated[pd.DataFrame, TopFrameRenderer(2)]:
    """Flyte's renderer annotation: the deck shows the first two rows of the output."""
    return pd.DataFrame({"city": [f"city-{i}" for i in range(n)], "rank": list(range(n))})


@workflow
def top_wf(n: int = 5) -> Annotated[pd.DataFrame, TopFrameRenderer(2)]:
    return top_cities(n=n)
