"""python-no-privileged: a bulkhead plugin in Python that refuses privileged and root containers
outside exempt namespaces and drops CAP_NET_RAW from the rest.

This module is only the export glue componentize-py wraps (`componentize ... app`): the class
must be called `WitWorld` and implement the generated `wit_world.WitWorld` protocol. The policy
lives in `policy.py`, where it unit-tests natively.
"""

import wit_world
from bulkhead_plugin import guard
from wit_world.imports import host
from wit_world.imports.types import Container, Decision, DecisionPoint, PluginInfo

import policy

VERSION = "0.1.0"


class WitWorld(wit_world.WitWorld):
    """The exports of the `security-plugin` world. A fresh instance runs every call, so nothing
    kept here survives to the next container."""

    def metadata(self) -> PluginInfo:
        # Privileged-ness and the user are only known from post-create-container on.
        return PluginInfo(
            name=policy.PLUGIN,
            version=VERSION,
            decision_points=[DecisionPoint.POST_CREATE_CONTAINER],
        )

    @guard
    def validate_config(self, config: str) -> None:
        # Called once at load: a mistyped key fails `bulkhead check-config`, not every container.
        policy.Config.parse(config)

    @guard
    def check_container(self, container: Container) -> Decision:
        return policy.judge(container, policy.Config.parse(host.config()))
