//! CRI helpers on [`Testbed`]: pods and containers the way a kubelet makes them, reduced to
//! what bulkhead's tests need, with every knob of the CRI config still reachable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, Int64Value, KeyValue, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, SecurityProfile, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest, security_profile::ProfileType,
};
use tonic::Status;

use crate::Testbed;

/// How long [`Testbed::exec_sync`] lets a command run.
const EXEC_TIMEOUT_SECONDS: i64 = 30;

/// A running pod sandbox: its CRI id and the config it was made with (CreateContainer needs
/// the config again).
#[derive(Debug, Clone)]
pub struct Pod {
    /// The sandbox id containerd assigned.
    pub id: String,
    /// The config passed to RunPodSandbox.
    pub config: PodSandboxConfig,
}

/// A container to create: a CRI [`ContainerConfig`] with kubelet-like defaults and builder
/// methods for the fields security tests change (annotations, privileged, capabilities, user).
///
/// Anything else can be set through [`ContainerSpec::with`] or [`ContainerSpec::config_mut`].
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    config: ContainerConfig,
}

impl ContainerSpec {
    /// A container named `name` running `image` with the image's own command.
    ///
    /// Like a kubelet, it uses the pod's host network, its own PID namespace and the pod's IPC
    /// namespace, logs to `<name>.log` in the pod's log directory, and passes `image` as
    /// `user_specified_image` too, which is what containerd copies into the
    /// `io.kubernetes.cri.image-name` annotation (without it, containerd names the image by
    /// the first of its references, which is another tag when several share one digest).
    /// Seccomp is left unset, which containerd treats as unconfined, as a kubelet without
    /// `seccompDefault` does; see [`ContainerSpec::seccomp_runtime_default`].
    pub fn new(name: &str, image: &str) -> Self {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.to_string(),
                user_specified_image: image.to_string(),
                ..Default::default()
            }),
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig {
                resources: None,
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        ContainerSpec { config }
    }

    /// Replaces the image's entrypoint (CRI `command`, Kubernetes `command`).
    pub fn command<I, S>(mut self, command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.command = command.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the image's cmd (CRI `args`, Kubernetes `args`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.config.envs.push(KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// Adds a container annotation (what bulkhead policies read).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.config
            .annotations
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Adds a container label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.config
            .labels
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Bind-mounts `host_path` at `container_path`.
    pub fn mount(mut self, host_path: &str, container_path: &str, readonly: bool) -> Self {
        self.config.mounts.push(Mount {
            host_path: host_path.to_string(),
            container_path: container_path.to_string(),
            readonly,
            ..Default::default()
        });
        self
    }

    /// Sets `privileged` (all capabilities, all devices, no seccomp).
    ///
    /// containerd only grants privileged containers when the pod is privileged too: use
    /// [`Testbed::run_privileged_pod`] for the pod.
    pub fn privileged(mut self, privileged: bool) -> Self {
        self.security_context().privileged = privileged;
        self
    }

    /// Adds capabilities (names as Kubernetes writes them, e.g. `NET_ADMIN` or `CAP_NET_ADMIN`).
    pub fn add_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let caps = self.capabilities();
        caps.add_capabilities
            .extend(capabilities.into_iter().map(Into::into));
        self
    }

    /// Drops capabilities (`ALL` drops every one).
    pub fn drop_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let caps = self.capabilities();
        caps.drop_capabilities
            .extend(capabilities.into_iter().map(Into::into));
        self
    }

    /// Runs as this uid (Kubernetes `runAsUser`), overriding the image's `User`.
    pub fn run_as_user(mut self, uid: i64) -> Self {
        self.security_context().run_as_user = Some(Int64Value { value: uid });
        self
    }

    /// Runs with this primary gid (Kubernetes `runAsGroup`; needs a user to be set too).
    pub fn run_as_group(mut self, gid: i64) -> Self {
        self.security_context().run_as_group = Some(Int64Value { value: gid });
        self
    }

    /// Mounts the root filesystem read-only.
    pub fn readonly_rootfs(mut self, readonly: bool) -> Self {
        self.security_context().readonly_rootfs = readonly;
        self
    }

    /// Sets `no_new_privs` (Kubernetes `allowPrivilegeEscalation: false`).
    pub fn no_new_privs(mut self, no_new_privs: bool) -> Self {
        self.security_context().no_new_privs = no_new_privs;
        self
    }

    /// Uses the runtime's default seccomp profile (Kubernetes `seccompProfile: RuntimeDefault`).
    pub fn seccomp_runtime_default(mut self) -> Self {
        self.security_context().seccomp = Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        });
        self
    }

    /// Disables seccomp explicitly (Kubernetes `seccompProfile: Unconfined`).
    pub fn seccomp_unconfined(mut self) -> Self {
        self.security_context().seccomp = Some(SecurityProfile {
            profile_type: ProfileType::Unconfined as i32,
            localhost_ref: String::new(),
        });
        self
    }

    /// Changes anything else in the CRI config, keeping the builder style.
    pub fn with(mut self, change: impl FnOnce(&mut ContainerConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// The CRI config as it stands.
    pub fn config(&self) -> &ContainerConfig {
        &self.config
    }

    /// The CRI config, to change in place.
    pub fn config_mut(&mut self) -> &mut ContainerConfig {
        &mut self.config
    }

    /// The CRI config, consumed.
    pub fn into_config(self) -> ContainerConfig {
        self.config
    }

    /// The Linux security context, created on first use.
    pub fn security_context(&mut self) -> &mut LinuxContainerSecurityContext {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    fn capabilities(&mut self) -> &mut Capability {
        self.security_context()
            .capabilities
            .get_or_insert_with(Default::default)
    }
}

impl From<ContainerSpec> for ContainerConfig {
    fn from(spec: ContainerSpec) -> Self {
        spec.config
    }
}

/// A fresh pod uid: unique across tests, processes and runs.
fn fresh_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:08x}-{:04x}-{:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos as u64
    )
}

impl Testbed {
    /// Runs a pod sandbox named `name` in Kubernetes namespace `namespace` and returns it.
    ///
    /// There is no CNI here, so the pod uses the host network; its hostname is left empty
    /// (containerd cannot set one without a private UTS namespace). The uid is fresh, the log
    /// directory lives under the test bed directory and the cgroup parent is the test bed's own
    /// ([`Testbed::cgroup_parent`]).
    pub async fn run_pod(&self, name: &str, namespace: &str) -> anyhow::Result<Pod> {
        self.run_pod_with(name, namespace, |_| {}).await
    }

    /// Like [`Testbed::run_pod`], with a privileged sandbox (needed for privileged containers).
    pub async fn run_privileged_pod(&self, name: &str, namespace: &str) -> anyhow::Result<Pod> {
        self.run_pod_with(name, namespace, |config| {
            if let Some(context) = config
                .linux
                .as_mut()
                .and_then(|linux| linux.security_context.as_mut())
            {
                context.privileged = true;
            }
        })
        .await
    }

    /// Like [`Testbed::run_pod`], after `change` has edited the sandbox config (labels,
    /// annotations, security context...).
    pub async fn run_pod_with(
        &self,
        name: &str,
        namespace: &str,
        change: impl FnOnce(&mut PodSandboxConfig),
    ) -> anyhow::Result<Pod> {
        let uid = fresh_uid();
        let log_directory = self.dir().join("logs").join(&uid);
        std::fs::create_dir_all(&log_directory)
            .with_context(|| format!("while creating {}", log_directory.display()))?;
        let mut config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid,
                namespace: namespace.to_string(),
                attempt: 0,
            }),
            hostname: String::new(),
            log_directory: log_directory.to_string_lossy().into_owned(),
            labels: HashMap::from([("app".to_string(), name.to_string())]),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent().to_string(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        change(&mut config);
        let response = self
            .cri()
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .with_context(|| format!("while running pod {namespace}/{name}"))?;
        Ok(Pod {
            id: response.into_inner().pod_sandbox_id,
            config,
        })
    }

    /// Creates a container in `pod`; returns its id, or the gRPC status the runtime (or an NRI
    /// plugin, through it) answered, so tests can assert e.g. `Code::PermissionDenied`.
    pub async fn create_container(
        &self,
        pod: &Pod,
        spec: impl Into<ContainerConfig>,
    ) -> Result<String, Status> {
        let response = self
            .cri()
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.id.clone(),
                config: Some(spec.into()),
                sandbox_config: Some(pod.config.clone()),
            })
            .await?;
        Ok(response.into_inner().container_id)
    }

    /// Starts a created container (NRI StartContainer runs here and may refuse it).
    pub async fn start_container(&self, id: &str) -> Result<(), Status> {
        self.cri()
            .start_container(StartContainerRequest {
                container_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Creates and starts a container; returns its id.
    pub async fn run_container(
        &self,
        pod: &Pod,
        spec: impl Into<ContainerConfig>,
    ) -> Result<String, Status> {
        let id = self.create_container(pod, spec).await?;
        self.start_container(&id).await?;
        Ok(id)
    }

    /// The runtime's status of container `id` (state, exit code, start time...).
    pub async fn container_status(&self, id: &str) -> anyhow::Result<ContainerStatus> {
        self.cri()
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .with_context(|| format!("while asking for the status of container {id}"))?
            .into_inner()
            .status
            .with_context(|| format!("no status for container {id}"))
    }

    /// Runs `cmd` in a running container and returns `(exit_code, stdout, stderr)`.
    ///
    /// A non-zero exit code is not an error; a command running over 30 s is.
    pub async fn exec_sync<I, S>(&self, id: &str, cmd: I) -> Result<(i32, String, String), Status>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let response = self
            .cri()
            .exec_sync(ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.into_iter().map(Into::into).collect(),
                timeout: EXEC_TIMEOUT_SECONDS,
            })
            .await?
            .into_inner();
        Ok((
            response.exit_code,
            String::from_utf8_lossy(&response.stdout).into_owned(),
            String::from_utf8_lossy(&response.stderr).into_owned(),
        ))
    }

    /// Stops a container at once (SIGKILL: a `sleep` as PID 1 ignores SIGTERM anyway).
    pub async fn stop_container(&self, id: &str) -> Result<(), Status> {
        self.cri()
            .stop_container(StopContainerRequest {
                container_id: id.to_string(),
                timeout: 0,
            })
            .await?;
        Ok(())
    }

    /// Removes a stopped (or created, never started) container.
    pub async fn remove_container(&self, id: &str) -> Result<(), Status> {
        self.cri()
            .remove_container(RemoveContainerRequest {
                container_id: id.to_string(),
            })
            .await?;
        Ok(())
    }

    /// Stops the pod (killing its containers) and removes it with everything in it.
    pub async fn stop_and_remove_pod(&self, pod: &Pod) -> Result<(), Status> {
        self.cri()
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await?;
        self.cri()
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await?;
        Ok(())
    }
}

/// The value of the `name` line (e.g. `Seccomp:`) of a `/proc/<pid>/status` text, trimmed;
/// empty when there is none.
pub fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_defaults_look_like_a_kubelet_container() {
        let config = ContainerSpec::new("app", "busybox").into_config();
        assert_eq!(config.metadata.unwrap().name, "app");
        assert_eq!(config.image.unwrap().image, "busybox");
        assert_eq!(config.log_path, "app.log");
        let context = config.linux.unwrap().security_context.unwrap();
        let namespaces = context.namespace_options.unwrap();
        assert_eq!(namespaces.network, NamespaceMode::Node as i32);
        assert_eq!(namespaces.pid, NamespaceMode::Container as i32);
        assert!(!context.privileged);
        assert!(context.run_as_user.is_none());
    }

    #[test]
    fn builder_sets_security_fields() {
        let config = ContainerSpec::new("app", "busybox")
            .command(["sleep", "3600"])
            .annotation("a", "b")
            .privileged(true)
            .add_capabilities(["NET_ADMIN"])
            .drop_capabilities(["ALL"])
            .run_as_user(1000)
            .with(|config| config.working_dir = "/tmp".into())
            .into_config();
        assert_eq!(config.command, ["sleep", "3600"]);
        assert_eq!(config.annotations["a"], "b");
        assert_eq!(config.working_dir, "/tmp");
        let context = config.linux.unwrap().security_context.unwrap();
        assert!(context.privileged);
        assert_eq!(context.run_as_user.unwrap().value, 1000);
        let caps = context.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, ["NET_ADMIN"]);
        assert_eq!(caps.drop_capabilities, ["ALL"]);
    }

    #[test]
    fn uids_are_unique() {
        assert_ne!(fresh_uid(), fresh_uid());
    }
}
