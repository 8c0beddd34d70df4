"""``flytekit.testing`` at Flyte's path: helpers for running Flyte programs locally.

``SecretsManager`` tells a test where a secret is looked for (the environment
variable and the file), so it can put one there; it is the same lookup that
``current_context().secrets`` does in a running task.
"""

from __future__ import annotations

from kernelflow.engine.secrets import Secrets


class SecretsManager(Secrets):
    """Flyte's ``SecretsManager``: ``get_secrets_env_var``, ``get_secrets_file``."""


__all__ = ["SecretsManager"]
