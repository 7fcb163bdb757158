//! Is one seccomp profile at least as strict as another?
//!
//! Two callers ask: the grant checker (a plugin's profile against the one the container already
//! has, e.g. containerd's RuntimeDefault) and the merge (a later plugin's profile against an
//! earlier one's). A wrong "yes" silently weakens a container, a wrong "no" only refuses a
//! plugin's profile; so the comparison is **sound but incomplete**: it may call a stricter
//! profile "not comparable", never a looser one "stricter".
//!
//! For every syscall either profile names, and for all the syscalls neither names (the default
//! action), the set of argument values the candidate lets through must lie inside the set the
//! current profile lets through. Exact sets are not computed; the candidate's set is
//! **over-approximated** and the current profile's **under-approximated**, each by one of the
//! [`Region`] shapes below, so that `over(candidate) ⊆ under(current)` implies the real
//! inclusion. The two sides also read actions differently: for the candidate anything that does
//! not stop the call (allow, log, trace, notify) lets it through; for the current profile only
//! allow and log do — a supervisor (notify) or tracer may still refuse.
//!
//! Architectures: a profile applies its rules to the architectures it lists (plus the native
//! one); calls from other architectures are refused. A candidate listing an architecture the
//! current profile does not would open that ABI, so it is not stricter.

use std::collections::BTreeSet;

use crate::decision::{SeccompAction, SeccompArg, SeccompOperator, SeccompProfile};

/// The argument values of one syscall that a profile lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Region<'a> {
    /// Every call.
    All,
    /// No call.
    Nothing,
    /// Calls matching at least one of these condition lists (each a conjunction).
    AnyOf(Vec<&'a [SeccompArg]>),
    /// Calls matching none of these condition lists.
    AllExcept(Vec<&'a [SeccompArg]>),
}

/// Which side of the comparison a profile is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The profile proposed: its permissions are over-approximated.
    Candidate,
    /// The profile in force: its permissions are under-approximated.
    Current,
}

impl Side {
    /// Whether `action` lets the call run, as this side must read it.
    fn lets_through(self, action: SeccompAction) -> bool {
        match action {
            SeccompAction::Allow | SeccompAction::Log => true,
            SeccompAction::Trace | SeccompAction::Notify => self == Side::Candidate,
            SeccompAction::KillProcess
            | SeccompAction::KillThread
            | SeccompAction::Trap
            | SeccompAction::Errno => false,
        }
    }
}

/// Whether `candidate` lets through nothing that `current` refuses (see the module docs for how
/// this is decided soundly).
pub fn at_least_as_strict(candidate: &SeccompProfile, current: &SeccompProfile) -> bool {
    if !candidate
        .architectures
        .iter()
        .all(|arch| current.architectures.contains(arch))
    {
        return false;
    }
    let names: BTreeSet<&str> = candidate
        .syscalls
        .iter()
        .chain(&current.syscalls)
        .flat_map(|rule| rule.names.iter().map(String::as_str))
        .collect();
    names.into_iter().map(Some).chain([None]).all(|syscall| {
        within(
            &region(candidate, syscall, Side::Candidate),
            &region(current, syscall, Side::Current),
        )
    })
}

/// The region of `syscall` (`None`: a syscall no rule names) that `profile` lets through, as
/// `side` approximates it.
fn region<'a>(profile: &'a SeccompProfile, syscall: Option<&str>, side: Side) -> Region<'a> {
    let default_through = side.lets_through(profile.default_action);
    let Some(syscall) = syscall else {
        return if default_through {
            Region::All
        } else {
            Region::Nothing
        };
    };
    let rules = profile
        .syscalls
        .iter()
        .filter(|rule| rule.names.iter().any(|name| name == syscall));
    let (through, stopped): (Vec<_>, Vec<_>) =
        rules.partition(|rule| side.lets_through(rule.action));
    let through: Vec<&[SeccompArg]> = through.iter().map(|r| r.args.as_slice()).collect();
    let stopped: Vec<&[SeccompArg]> = stopped.iter().map(|r| r.args.as_slice()).collect();
    let unconditional = |conditions: &[&[SeccompArg]]| conditions.iter().any(|c| c.is_empty());
    match (side, default_through) {
        // Over-approximation. Calls matching no rule follow the default; calls matching both a
        // permitting and a stopping rule may go either way, so they count as let through.
        (Side::Candidate, true) if through.is_empty() => {
            if unconditional(&stopped) {
                Region::Nothing
            } else {
                Region::AllExcept(stopped)
            }
        }
        (Side::Candidate, true) => Region::All,
        (Side::Candidate, false) if unconditional(&through) => Region::All,
        (Side::Candidate, false) if through.is_empty() => Region::Nothing,
        (Side::Candidate, false) => Region::AnyOf(through),
        // Under-approximation. A call matching no stopping rule is let through either by the
        // default or by a permitting rule.
        (Side::Current, true) if unconditional(&stopped) => Region::Nothing,
        (Side::Current, true) if stopped.is_empty() => Region::All,
        (Side::Current, true) => Region::AllExcept(stopped),
        // With a stopping default, only calls that match a permitting rule and no stopping rule
        // are surely let through; with stopping rules present, claim nothing.
        (Side::Current, false) if !stopped.is_empty() || through.is_empty() => Region::Nothing,
        (Side::Current, false) if unconditional(&through) => Region::All,
        (Side::Current, false) => Region::AnyOf(through),
    }
}

/// Whether every call in `inner` is in `outer`.
fn within(inner: &Region<'_>, outer: &Region<'_>) -> bool {
    match (inner, outer) {
        (Region::Nothing, _) | (_, Region::All) => true,
        (_, Region::Nothing) | (Region::All, _) => false,
        // Each permitted conjunction must be narrower than some permitted conjunction of outer.
        (Region::AnyOf(narrow), Region::AnyOf(wide)) => {
            narrow.iter().all(|n| wide.iter().any(|w| implies(n, w)))
        }
        // Outer's holes must each lie inside one of inner's holes.
        (Region::AllExcept(inner_holes), Region::AllExcept(outer_holes)) => outer_holes
            .iter()
            .all(|hole| inner_holes.iter().any(|h| implies(hole, h))),
        // Everything inner permits must miss every hole of outer.
        (Region::AnyOf(permitted), Region::AllExcept(holes)) => permitted
            .iter()
            .all(|p| holes.iter().all(|h| disjoint(p, h))),
        // A co-finite set is never inside a finite union of conjunctions we can name.
        (Region::AllExcept(_), Region::AnyOf(_)) => false,
    }
}

/// Whether every call satisfying all of `narrow` satisfies all of `wide`: each condition of
/// `wide` appears in `narrow` (syntactically; sound, not complete).
fn implies(narrow: &[SeccompArg], wide: &[SeccompArg]) -> bool {
    wide.iter().all(|condition| narrow.contains(condition))
}

/// Whether no call can satisfy both condition lists: one argument is pinned to two different
/// values, or pinned to a value the other list excludes.
fn disjoint(a: &[SeccompArg], b: &[SeccompArg]) -> bool {
    a.iter().any(|x| b.iter().any(|y| contradict(x, y)))
}

fn contradict(x: &SeccompArg, y: &SeccompArg) -> bool {
    use SeccompOperator::{EqualTo, MaskedEqual, NotEqual};
    if x.index != y.index {
        return false;
    }
    match (x.op, y.op) {
        (EqualTo, EqualTo) => x.value != y.value,
        (EqualTo, NotEqual) | (NotEqual, EqualTo) => x.value == y.value,
        // The same mask must give two different results.
        (MaskedEqual, MaskedEqual) => x.value == y.value && x.value_two != y.value_two,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::SeccompSyscall;

    fn rule(names: &[&str], action: SeccompAction, args: Vec<SeccompArg>) -> SeccompSyscall {
        SeccompSyscall {
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            errno: None,
            args,
        }
    }

    fn profile(default: SeccompAction, rules: Vec<SeccompSyscall>) -> SeccompProfile {
        SeccompProfile {
            default_action: default,
            default_errno: None,
            architectures: Vec::new(),
            syscalls: rules,
        }
    }

    fn allow_list(names: &[&str]) -> SeccompProfile {
        profile(
            SeccompAction::Errno,
            vec![rule(names, SeccompAction::Allow, vec![])],
        )
    }

    fn deny_list(names: &[&str]) -> SeccompProfile {
        profile(
            SeccompAction::Allow,
            vec![rule(names, SeccompAction::Errno, vec![])],
        )
    }

    fn arg(index: u32, op: SeccompOperator, value: u64) -> SeccompArg {
        SeccompArg {
            index,
            value,
            value_two: 0,
            op,
        }
    }

    /// The shape of containerd's RuntimeDefault for `clone`: allowed only when no namespace
    /// flag is set (`flags & CLONE_NEW* == 0`).
    fn clone_without_namespaces() -> SeccompSyscall {
        rule(
            &["clone"],
            SeccompAction::Allow,
            vec![SeccompArg {
                index: 0,
                value: 0x7E02_0000,
                value_two: 0,
                op: SeccompOperator::MaskedEqual,
            }],
        )
    }

    fn runtime_default_like() -> SeccompProfile {
        profile(
            SeccompAction::Errno,
            vec![
                rule(
                    &["read", "write", "exit_group"],
                    SeccompAction::Allow,
                    vec![],
                ),
                clone_without_namespaces(),
            ],
        )
    }

    #[test]
    fn defaults_and_named_syscalls() {
        assert!(!at_least_as_strict(
            &deny_list(&["mkdir"]),
            &allow_list(&["read"])
        ));
        assert!(at_least_as_strict(
            &deny_list(&["mkdir", "ptrace"]),
            &deny_list(&["mkdir"])
        ));
        assert!(!at_least_as_strict(
            &deny_list(&["mkdir"]),
            &deny_list(&["mkdir", "ptrace"])
        ));
        assert!(at_least_as_strict(
            &allow_list(&["read"]),
            &deny_list(&["mkdir"])
        ));
        assert!(!at_least_as_strict(
            &allow_list(&["mkdir"]),
            &deny_list(&["mkdir"])
        ));
        assert!(at_least_as_strict(&allow_list(&[]), &allow_list(&["read"])));
    }

    #[test]
    fn allow_all_is_never_stricter_than_a_filter() {
        let allow_all = profile(SeccompAction::Allow, vec![]);
        assert!(!at_least_as_strict(&allow_all, &runtime_default_like()));
        assert!(at_least_as_strict(&runtime_default_like(), &allow_all));
    }

    #[test]
    fn allow_by_default_with_one_errno_rule_is_looser_than_runtime_default() {
        let weak = deny_list(&["mount"]);
        assert!(!at_least_as_strict(&weak, &runtime_default_like()));
    }

    #[test]
    fn an_always_true_clone_rule_does_not_replace_a_flag_filter() {
        // The reported bypass: the candidate keeps the syscall list but allows clone whatever
        // its flags (a condition that every call satisfies).
        let mut open = runtime_default_like();
        open.syscalls[1] = rule(
            &["clone"],
            SeccompAction::Allow,
            vec![arg(0, SeccompOperator::GreaterEqual, 0)],
        );
        assert!(!at_least_as_strict(&open, &runtime_default_like()));
        // Without any condition it is plainly looser too.
        open.syscalls[1] = rule(&["clone"], SeccompAction::Allow, vec![]);
        assert!(!at_least_as_strict(&open, &runtime_default_like()));
    }

    #[test]
    fn conditional_rules_compare_asymmetrically() {
        let strict = runtime_default_like();
        // The same filter, and a narrower one (an extra condition), are at least as strict.
        assert!(at_least_as_strict(&strict, &strict));
        let mut narrower = strict.clone();
        narrower.syscalls[1]
            .args
            .push(arg(1, SeccompOperator::EqualTo, 0));
        assert!(at_least_as_strict(&narrower, &strict));
        // ... but the converse is not.
        assert!(!at_least_as_strict(&strict, &narrower));
        // Dropping clone altogether is stricter; the current profile dropping it makes the
        // conditional candidate looser.
        let no_clone = allow_list(&["read", "write", "exit_group"]);
        assert!(at_least_as_strict(&no_clone, &strict));
        assert!(!at_least_as_strict(&strict, &no_clone));
    }

    #[test]
    fn conditional_denies_compare_by_their_holes() {
        let deny_when = |conditions: Vec<SeccompArg>| {
            profile(
                SeccompAction::Allow,
                vec![rule(&["personality"], SeccompAction::Errno, conditions)],
            )
        };
        let narrow_hole = deny_when(vec![
            arg(0, SeccompOperator::EqualTo, 8),
            arg(1, SeccompOperator::EqualTo, 0),
        ]);
        let wide_hole = deny_when(vec![arg(0, SeccompOperator::EqualTo, 8)]);
        assert!(at_least_as_strict(&wide_hole, &narrow_hole));
        assert!(!at_least_as_strict(&narrow_hole, &wide_hole));
    }

    #[test]
    fn a_conditional_allow_is_inside_an_allow_all_but_a_disjoint_hole() {
        let current = profile(
            SeccompAction::Allow,
            vec![rule(
                &["personality"],
                SeccompAction::Errno,
                vec![arg(0, SeccompOperator::EqualTo, 8)],
            )],
        );
        let candidate_ok = profile(
            SeccompAction::Errno,
            vec![rule(
                &["personality"],
                SeccompAction::Allow,
                vec![arg(0, SeccompOperator::EqualTo, 0)],
            )],
        );
        assert!(at_least_as_strict(&candidate_ok, &current));
        let candidate_overlapping = profile(
            SeccompAction::Errno,
            vec![rule(
                &["personality"],
                SeccompAction::Allow,
                vec![arg(0, SeccompOperator::LessEqual, 8)],
            )],
        );
        assert!(!at_least_as_strict(&candidate_overlapping, &current));
    }

    #[test]
    fn notify_and_trace_count_against_the_candidate_and_for_nothing_in_force() {
        let notify = profile(
            SeccompAction::Errno,
            vec![rule(&["mkdir"], SeccompAction::Notify, vec![])],
        );
        // A candidate handing mkdir to a supervisor may let it through.
        assert!(!at_least_as_strict(&notify, &allow_list(&[])));
        // A current profile doing so is not relied on to let it through.
        assert!(!at_least_as_strict(&allow_list(&["mkdir"]), &notify));
    }

    #[test]
    fn a_candidate_may_not_add_architectures() {
        let mut current = allow_list(&["read"]);
        current.architectures = vec!["SCMP_ARCH_X86_64".into()];
        let mut candidate = allow_list(&["read"]);
        candidate.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()];
        assert!(!at_least_as_strict(&candidate, &current));
        candidate.architectures = vec!["SCMP_ARCH_X86_64".into()];
        assert!(at_least_as_strict(&candidate, &current));
        candidate.architectures.clear();
        assert!(at_least_as_strict(&candidate, &current));
    }
}
