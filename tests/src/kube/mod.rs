//! Kubernetes manifests run the way a kubelet runs them, on the test bed: a workload's pod
//! template (a manifest parsed into JSON) becomes the CRI sandbox and container configs, its
//! volumes come from a [`Node`] directory standing in for the node's root file system.
//!
//! The translation is strict on purpose: a pod or container field it does not know is an error,
//! not silently dropped, so a test built on it notices when a manifest grows something the test
//! does not exercise. Teach it the field (or list it as irrelevant on one node) when that happens.
//!
//! [`PodTemplate`] (here) reads the pod template; [`Node`] is where its volumes come from;
//! `settings` maps a container's `securityContext` and `resources` onto CRI.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use k8s_cri::v1::{Mount, MountPropagation, NamespaceMode};
use serde_json::Value;

use crate::{ContainerSpec, Pod, Testbed};

mod node;
mod settings;

pub use node::{ConfigMap, Node};
use settings::{resources, security_context};

/// Pod spec fields a kubelet turns into CRI calls here.
const POD_FIELDS: &[&str] = &[
    "containers",
    "volumes",
    "hostNetwork",
    "terminationGracePeriodSeconds",
];
/// Pod spec fields that mean nothing on one test node (scheduling, API identity).
const POD_FIELDS_IGNORED: &[&str] = &[
    "serviceAccountName",
    "automountServiceAccountToken",
    "priorityClassName",
    "nodeSelector",
    "tolerations",
    "affinity",
];
/// Container fields translated into the CRI container config.
const CONTAINER_FIELDS: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "env",
    "securityContext",
    "resources",
    "volumeMounts",
];
/// Container fields with no CRI counterpart here: the image is imported (no pull), host network
/// needs no port mapping, and probes are the test's to make ([`PodTemplate::http_probe`]).
const CONTAINER_FIELDS_IGNORED: &[&str] = &[
    "imagePullPolicy",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
];

/// The pod template of a workload object (DaemonSet, Deployment, ...) and where it runs.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    spec: Value,
}

impl PodTemplate {
    /// The template of `workload`, named after the workload and in its namespace (`default`
    /// when the manifest sets none), as the controller would create its pods.
    pub fn of_workload(workload: &Value) -> anyhow::Result<PodTemplate> {
        let name = string(workload, "/metadata/name")?;
        let namespace = workload
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let template = workload
            .pointer("/spec/template")
            .with_context(|| format!("{name}: no spec.template"))?;
        let labels = string_map(template.pointer("/metadata/labels"))?;
        let annotations = string_map(template.pointer("/metadata/annotations"))?;
        let spec = template
            .get("spec")
            .cloned()
            .with_context(|| format!("{name}: no spec.template.spec"))?;
        check_fields(&spec, POD_FIELDS, POD_FIELDS_IGNORED, "the pod spec")?;
        Ok(PodTemplate {
            name,
            namespace,
            labels,
            annotations,
            spec,
        })
    }

    /// The workload's name (its pods are named after it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Kubernetes namespace its pods run in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether the pod uses the node's network namespace.
    pub fn host_network(&self) -> bool {
        self.spec["hostNetwork"].as_bool().unwrap_or(false)
    }

    /// How long a container gets between SIGTERM and SIGKILL (default 30 s, as Kubernetes).
    pub fn termination_grace_seconds(&self) -> i64 {
        self.spec["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    }

    /// The container named `name`.
    pub fn container(&self, name: &str) -> anyhow::Result<&Value> {
        self.containers()
            .find(|c| c["name"] == name)
            .with_context(|| format!("{}: no container {name:?}", self.name))
    }

    fn containers(&self) -> impl Iterator<Item = &Value> {
        self.spec["containers"].as_array().into_iter().flatten()
    }

    /// Whether any container is privileged: a kubelet then makes the sandbox privileged too.
    pub fn privileged(&self) -> bool {
        self.containers()
            .any(|c| c.pointer("/securityContext/privileged") == Some(&Value::Bool(true)))
    }

    /// The path and port of container `name`'s HTTP probe `probe` (`readinessProbe`,
    /// `livenessProbe`), a named port resolved through the container's `ports`.
    pub fn http_probe(&self, name: &str, probe: &str) -> anyhow::Result<(String, u16)> {
        let container = self.container(name)?;
        let get = container
            .get(probe)
            .and_then(|p| p.get("httpGet"))
            .with_context(|| format!("container {name}: no {probe}.httpGet"))?;
        let path = string(get, "/path")?;
        let port = match &get["port"] {
            Value::Number(n) => n.as_u64(),
            Value::String(port_name) => container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == port_name.as_str())
                .and_then(|p| p["containerPort"].as_u64()),
            _ => None,
        };
        let port = port.with_context(|| format!("container {name}: {probe} has no usable port"))?;
        Ok((path, u16::try_from(port)?))
    }

    /// The CRI config of container `name`, its volumes taken from `node`.
    pub fn container_spec(&self, name: &str, node: &Node) -> anyhow::Result<ContainerSpec> {
        let container = self.container(name)?;
        check_fields(
            container,
            CONTAINER_FIELDS,
            CONTAINER_FIELDS_IGNORED,
            &format!("container {name}"),
        )?;
        let image = string(container, "/image")?;
        let mut spec = ContainerSpec::new(name, &image)
            .command(strings(container.get("command"))?)
            .args(strings(container.get("args"))?);
        for variable in container["env"].as_array().into_iter().flatten() {
            let value = variable["value"]
                .as_str()
                .with_context(|| format!("container {name}: env {variable} has no plain value"))?;
            spec = spec.env(&string(variable, "/name")?, value);
        }
        security_context(&mut spec, container.get("securityContext"))?;
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let mount = self.mount(mount, node)?;
            spec = spec.with(|config| config.mounts.push(mount));
        }
        let resources = resources(container.get("resources"))?;
        if let Some(linux) = spec.config_mut().linux.as_mut() {
            linux.resources = Some(resources);
        }
        Ok(spec)
    }

    /// One `volumeMounts` entry as a CRI mount of its volume's source on `node`.
    fn mount(&self, mount: &Value, node: &Node) -> anyhow::Result<Mount> {
        check_fields(
            mount,
            &["name", "mountPath", "readOnly", "mountPropagation"],
            &[],
            "a volumeMount",
        )?;
        let volume_name = string(mount, "/name")?;
        let volume = self.spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == volume_name.as_str())
            .with_context(|| format!("volumeMount {volume_name}: no such volume"))?;
        let (host_path, forced_readonly) = node.volume_source(volume)?;
        let propagation = match mount["mountPropagation"].as_str() {
            None | Some("None") => MountPropagation::PropagationPrivate,
            Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => MountPropagation::PropagationBidirectional,
            Some(other) => bail!("volumeMount {volume_name}: unknown mountPropagation {other}"),
        };
        Ok(Mount {
            container_path: string(mount, "/mountPath")?,
            host_path: host_path.display().to_string(),
            readonly: forced_readonly || mount["readOnly"].as_bool().unwrap_or(false),
            propagation: propagation as i32,
            ..Default::default()
        })
    }
}

impl Testbed {
    /// Runs the sandbox of a pod of `template`, as its controller and a kubelet would: named
    /// after the workload, in its namespace, with its labels and annotations, the host network
    /// if it asks for it, privileged if a container is.
    pub async fn run_pod_from_template(&self, template: &PodTemplate) -> anyhow::Result<Pod> {
        let network = if template.host_network() {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        };
        let privileged = template.privileged();
        self.run_pod_with(template.name(), template.namespace(), |config| {
            config.labels.extend(template.labels.clone());
            config.annotations.extend(template.annotations.clone());
            if let Some(context) = config
                .linux
                .as_mut()
                .and_then(|linux| linux.security_context.as_mut())
            {
                context.privileged = privileged;
                if let Some(namespaces) = context.namespace_options.as_mut() {
                    namespaces.network = network as i32;
                }
            }
        })
        .await
    }
}

/// Fails on a field of `object` that is neither `known` nor `ignored`.
pub(super) fn check_fields(
    object: &Value,
    known: &[&str],
    ignored: &[&str],
    what: &str,
) -> anyhow::Result<()> {
    let Some(fields) = object.as_object() else {
        bail!("{what} is not an object: {object}");
    };
    match fields
        .keys()
        .find(|key| !known.contains(&key.as_str()) && !ignored.contains(&key.as_str()))
    {
        Some(key) => bail!(
            "{what} has `{key}`, which the e2e kit does not translate to CRI yet (tests/src/kube/)"
        ),
        None => Ok(()),
    }
}

pub(super) fn string(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no string at {pointer} in {value}"))
}

pub(super) fn strings(value: Option<&Value>) -> anyhow::Result<Vec<String>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .as_array()
        .with_context(|| format!("not a list: {value}"))?
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .with_context(|| format!("not a string: {item}"))
        })
        .collect()
}

pub(super) fn string_map(value: Option<&Value>) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    value
        .as_object()
        .with_context(|| format!("not a map: {value}"))?
        .iter()
        .map(|(key, item)| {
            let item = item
                .as_str()
                .with_context(|| format!("{key}: not a string: {item}"))?;
            Ok((key.clone(), item.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn daemonset() -> Value {
        json!({
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ops"},
            "spec": {"template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": "agent",
                        "image": "example.com/agent:1",
                        "args": ["run"],
                        "env": [{"name": "LOG", "value": "info"}],
                        "securityContext": {"privileged": true},
                        "ports": [{"name": "metrics", "containerPort": 9464}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
                        "resources": {"requests": {"cpu": "50m"}, "limits": {"memory": "256Mi"}},
                    }],
                },
            }},
        })
    }

    #[test]
    fn a_template_keeps_the_workload_s_identity_and_pod_settings() {
        let template = PodTemplate::of_workload(&daemonset()).unwrap();
        assert_eq!((template.name(), template.namespace()), ("agent", "ops"));
        assert!(template.host_network());
        assert!(template.privileged());
        assert_eq!(template.termination_grace_seconds(), 30);
        assert_eq!(
            template.http_probe("agent", "readinessProbe").unwrap(),
            ("/readyz".to_string(), 9464)
        );
    }

    #[test]
    fn an_unknown_pod_field_is_an_error_not_a_silent_gap() {
        let mut workload = daemonset();
        workload["spec"]["template"]["spec"]["hostPID"] = json!(true);
        let error = PodTemplate::of_workload(&workload).unwrap_err().to_string();
        assert!(error.contains("hostPID"), "{error}");
    }
}
