//! A container's `securityContext` and `resources`, mapped onto CRI the way a kubelet maps them.

use anyhow::Context;
use k8s_cri::v1::{Capability, Int64Value, LinuxContainerResources};
use serde_json::Value;

use super::{check_fields, strings};
use crate::ContainerSpec;

/// Applies a container `securityContext` the way a kubelet maps it onto CRI.
pub(super) fn security_context(
    spec: &mut ContainerSpec,
    context: Option<&Value>,
) -> anyhow::Result<()> {
    let Some(context) = context else {
        return Ok(());
    };
    check_fields(
        context,
        &[
            "privileged",
            "readOnlyRootFilesystem",
            "allowPrivilegeEscalation",
            "runAsUser",
            "capabilities",
        ],
        &[],
        "securityContext",
    )?;
    let cri = spec.security_context();
    cri.privileged = context["privileged"].as_bool().unwrap_or(false);
    cri.readonly_rootfs = context["readOnlyRootFilesystem"].as_bool().unwrap_or(false);
    cri.no_new_privs = context["allowPrivilegeEscalation"] == Value::Bool(false);
    cri.run_as_user = context["runAsUser"]
        .as_i64()
        .map(|value| Int64Value { value });
    if let Some(capabilities) = context.get("capabilities") {
        cri.capabilities = Some(Capability {
            add_capabilities: strings(capabilities.get("add"))?,
            drop_capabilities: strings(capabilities.get("drop"))?,
            ..Default::default()
        });
    }
    Ok(())
}

/// Container `resources` as the cgroup settings a kubelet asks for: memory limit, CPU shares
/// from the request, CFS quota from the limit.
pub(super) fn resources(resources: Option<&Value>) -> anyhow::Result<LinuxContainerResources> {
    let mut cri = LinuxContainerResources::default();
    let Some(resources) = resources else {
        return Ok(cri);
    };
    if let Some(memory) = resources.pointer("/limits/memory").and_then(Value::as_str) {
        cri.memory_limit_in_bytes = memory_bytes(memory)?;
    }
    if let Some(cpu) = resources.pointer("/requests/cpu").and_then(quantity) {
        cri.cpu_shares = (milli_cpu(&cpu)? * 1024 / 1000).max(2);
    }
    if let Some(cpu) = resources.pointer("/limits/cpu").and_then(quantity) {
        cri.cpu_period = 100_000;
        cri.cpu_quota = (milli_cpu(&cpu)? * 100).max(1000);
    }
    Ok(cri)
}

/// A quantity written as a string (`"50m"`) or a number (`1`).
fn quantity(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A memory quantity in bytes: `256Mi`, `1G`, `1048576`.
fn memory_bytes(quantity: &str) -> anyhow::Result<i64> {
    let units: [(&str, i64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, factor)| Some((quantity.strip_suffix(suffix)?, *factor)))
        .unwrap_or((quantity, 1));
    let number: i64 = number
        .parse()
        .with_context(|| format!("memory quantity {quantity:?}"))?;
    Ok(number * factor)
}

/// A CPU quantity in thousandths of a CPU: `50m` is 50, `0.5` is 500, `2` is 2000.
fn milli_cpu(quantity: &str) -> anyhow::Result<i64> {
    if let Some(milli) = quantity.strip_suffix('m') {
        return Ok(milli.parse()?);
    }
    let cpus: f64 = quantity
        .parse()
        .with_context(|| format!("CPU quantity {quantity:?}"))?;
    Ok((cpus * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_are_read_as_kubernetes_writes_them() {
        assert_eq!(memory_bytes("256Mi").unwrap(), 256 << 20);
        assert_eq!(memory_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(memory_bytes("4096").unwrap(), 4096);
        assert_eq!(milli_cpu("50m").unwrap(), 50);
        assert_eq!(milli_cpu("0.5").unwrap(), 500);
        assert_eq!(milli_cpu("2").unwrap(), 2000);
        let cri = resources(Some(
            &json!({"requests": {"cpu": "50m"}, "limits": {"memory": "64Mi"}}),
        ))
        .unwrap();
        assert_eq!(cri.cpu_shares, 51);
        assert_eq!(cri.memory_limit_in_bytes, 64 << 20);
        assert_eq!(cri.cpu_quota, 0);
    }
}
