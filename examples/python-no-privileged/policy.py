"""The policy, as pure functions of the container view and the config, so it unit-tests natively
(`python3 -m unittest` with the generated bindings on the path, see test.sh).

Outside the namespaces the operator exempts, a container may not be privileged or run as uid 0;
one that passes loses CAP_NET_RAW (raw sockets: packet spoofing, ARP tricks) unless its pod sets
the annotation `KEEP_NET_RAW` to "true" (for `ping` and friends).

Config (`[plugins.config]`, JSON): `exempt-namespaces`, a list of namespace names (default none).
"""

from dataclasses import dataclass
from typing import FrozenSet

from bulkhead_plugin import InvalidConfig, parse_config
from wit_world.imports.types import (
    Container,
    Decision,
    Mutation,
    Mutation_DropCapabilities,
    Verdict_Allow,
    Verdict_Deny,
)

PLUGIN = "python-no-privileged"

# Pod annotation that keeps CAP_NET_RAW for that pod: "true" or "false".
KEEP_NET_RAW = "bulkhead.dev/keep-net-raw"


@dataclass(frozen=True)
class Config:
    """The operator's `[plugins.config]` table, checked."""

    exempt_namespaces: FrozenSet[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "Config":
        """Reads the config JSON; an unknown key or a wrong type is `InvalidConfig` naming the
        key, which `validate_config` reports when bulkhead loads the plugin."""
        table = parse_config(PLUGIN, text)
        for key in table:
            if key not in ("exempt-namespaces",):
                raise InvalidConfig(
                    f"{PLUGIN}: config key `{key}`: unknown key, expected `exempt-namespaces`"
                )
        exempt = table.get("exempt-namespaces", [])
        if not isinstance(exempt, list) or not all(isinstance(ns, str) for ns in exempt):
            raise InvalidConfig(
                f"{PLUGIN}: config key `exempt-namespaces`: expected a list of namespace names,"
                f" got {json_type(exempt)}"
            )
        return cls(exempt_namespaces=frozenset(exempt))


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if isinstance(value, list):
        inner = {json_type(v) for v in value}
        return "a list holding " + " and ".join(sorted(inner)) if inner else "a list"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def allow(*mutations: Mutation) -> Decision:
    """An allow verdict asking for `mutations`."""
    return Decision(verdict=Verdict_Allow(), mutations=list(mutations))


def deny(reason: str) -> Decision:
    """A deny verdict; the reason reaches the CRI caller (cut to 1 KiB)."""
    return Decision(verdict=Verdict_Deny(reason), mutations=[])


def keeps_net_raw(container: Container) -> bool:
    """Whether the pod asked to keep CAP_NET_RAW.

    Deliberately strict and unguarded: a value other than "true" or "false" raises ValueError,
    which the `bulkhead_plugin.guard` on `check_container` turns into `plugin-error.internal`
    with this message (and the operator's failure policy decides). It is the example's way to
    show that path; a production policy would rather deny with a reason.
    """
    value = dict(container.pod.annotations).get(KEEP_NET_RAW)
    if value is None:
        return False
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise ValueError(f"pod annotation {KEEP_NET_RAW}={value!r} is neither 'true' nor 'false'")
    return flag == "true"


def judge(container: Container, config: Config) -> Decision:
    """Judges one container at post-create-container (where privileged-ness and the user are
    known; a deny there is enforced at start)."""
    pod = f"{container.pod.namespace}/{container.pod.name}"
    if container.pod.namespace in config.exempt_namespaces:
        return allow()
    if container.privileged:
        return deny(
            f"container {container.name!r} of pod {pod} is privileged;"
            f" drop `privileged: true` or run it in an exempt namespace"
        )
    if container.process.user.uid == 0:
        return deny(
            f"container {container.name!r} of pod {pod} runs as uid 0;"
            f" set runAsUser or run it in an exempt namespace"
        )
    if keeps_net_raw(container):
        return allow()
    return allow(Mutation_DropCapabilities(["CAP_NET_RAW"]))
