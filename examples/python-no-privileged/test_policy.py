"""Native unit tests of the policy and of the `bulkhead_plugin` glue: plain CPython, no Wasm.

Run by test.sh as `python -m unittest` with the bindings componentize-py generates
(`componentize-py ... bindings target/bindings`) on the path; off Wasm, the generated
`host.log` and `host.config` raise NotImplementedError, so the policy never calls them.
"""

import unittest

from componentize_py_types import Err
from wit_world.imports.types import (
    Capabilities,
    Container,
    DecisionPoint,
    HostNamespaces,
    Image,
    Mutation_DropCapabilities,
    PluginError_Internal,
    PluginError_InvalidConfig,
    PluginError_Unsupported,
    Pod,
    Process,
    User,
    Verdict_Allow,
    Verdict_Deny,
)

import bulkhead_plugin
from bulkhead_plugin import InvalidConfig, Unsupported, guard
from policy import KEEP_NET_RAW, Config, judge


def container(namespace="default", uid=1000, privileged=False, annotations=()):
    """A post-create view with everything not given empty."""
    return Container(
        event=DecisionPoint.POST_CREATE_CONTAINER,
        id="c1",
        name="app",
        pod_sandbox_id="p1",
        pod=Pod(name="web", namespace=namespace, uid="u1", labels=[],
                annotations=list(annotations)),
        image=Image(reference="", normalized="", digest=None, registry="", repository="", tag=None,
                    config=None),
        process=Process(args=[], env=[], user=User(uid=uid, gid=uid, additional_gids=[],
                                                     username=None), cwd="/"),
        capabilities=Capabilities(bounding=[], effective=[], permitted=[], inheritable=[],
                                  ambient=[]),
        seccomp=None,
        no_new_privileges=False,
        readonly_rootfs=False,
        privileged=privileged,
        host_namespaces=HostNamespaces(network=False, pid=False, ipc=False, uts=False, user=False,
                                       cgroup=False),
        mounts=[],
        annotations=[],
        labels=[],
    )


EXEMPT = Config(exempt_namespaces=frozenset({"kube-system"}))


class PolicyTest(unittest.TestCase):
    def test_unprivileged_non_root_is_allowed_without_net_raw(self):
        decision = judge(container(), EXEMPT)
        self.assertEqual(decision.verdict, Verdict_Allow())
        self.assertEqual(decision.mutations, [Mutation_DropCapabilities(["CAP_NET_RAW"])])

    def test_privileged_is_denied(self):
        verdict = judge(container(privileged=True), EXEMPT).verdict
        self.assertIsInstance(verdict, Verdict_Deny)
        self.assertIn("is privileged", verdict.value)

    def test_root_is_denied(self):
        verdict = judge(container(uid=0), EXEMPT).verdict
        self.assertIsInstance(verdict, Verdict_Deny)
        self.assertIn("runs as uid 0", verdict.value)

    def test_exempt_namespace_is_left_alone(self):
        decision = judge(container("kube-system", uid=0, privileged=True), EXEMPT)
        self.assertEqual(decision.verdict, Verdict_Allow())
        self.assertEqual(decision.mutations, [])

    def test_annotation_keeps_net_raw(self):
        decision = judge(container(annotations=[(KEEP_NET_RAW, "true")]), EXEMPT)
        self.assertEqual(decision.mutations, [])
        decision = judge(container(annotations=[(KEEP_NET_RAW, "false")]), EXEMPT)
        self.assertEqual(decision.mutations, [Mutation_DropCapabilities(["CAP_NET_RAW"])])

    def test_malformed_annotation_raises(self):
        with self.assertRaisesRegex(ValueError, "neither 'true' nor 'false'"):
            judge(container(annotations=[(KEEP_NET_RAW, "yes")]), EXEMPT)


class ConfigTest(unittest.TestCase):
    def test_empty_config_exempts_nothing(self):
        self.assertEqual(Config.parse("{}"), Config())
        self.assertEqual(Config.parse(""), Config())

    def test_exempt_namespaces(self):
        self.assertEqual(Config.parse('{"exempt-namespaces": ["kube-system"]}'), EXEMPT)

    def test_unknown_key_is_named(self):
        with self.assertRaisesRegex(InvalidConfig, "config key `exempt-namespace`: unknown key"):
            Config.parse('{"exempt-namespace": []}')

    def test_wrong_types_are_named(self):
        for bad, got in [
            ('"kube-system"', "a string"),
            ('["a", 1]', "a list holding a number and a string"),
            ("null", "null"),
        ]:
            with self.assertRaisesRegex(InvalidConfig, f"`exempt-namespaces`: .*got {got}$"):
                Config.parse(f'{{"exempt-namespaces": {bad}}}')

    def test_not_an_object(self):
        with self.assertRaisesRegex(InvalidConfig, "must be a JSON object, got list"):
            Config.parse("[]")
        with self.assertRaisesRegex(InvalidConfig, "not a JSON document"):
            Config.parse("exempt-namespaces = []")


class GuardTest(unittest.TestCase):
    def raised(self, error):
        @guard
        def export():
            raise error

        with self.assertRaises(Err) as caught:
            export()
        return caught.exception.value

    def test_unexpected_exception_is_internal_with_type_and_message(self):
        self.assertEqual(self.raised(KeyError("x")), PluginError_Internal("KeyError: 'x'"))
        self.assertEqual(self.raised(RuntimeError()), PluginError_Internal("RuntimeError"))

    def test_plugin_errors_keep_their_kind(self):
        self.assertEqual(self.raised(InvalidConfig("k")), PluginError_InvalidConfig("k"))
        self.assertEqual(self.raised(Unsupported("u")), PluginError_Unsupported("u"))
        err = Err(PluginError_Unsupported("as is"))
        self.assertEqual(self.raised(err), PluginError_Unsupported("as is"))

    def test_results_pass_through(self):
        self.assertEqual(guard(lambda: 42)(), 42)

    def test_describe(self):
        self.assertEqual(bulkhead_plugin.describe(ValueError("bad")), "ValueError: bad")


if __name__ == "__main__":
    unittest.main()
