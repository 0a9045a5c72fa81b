//! Reading a pod's annotations by [`Key`] and [`Family`]: every read goes
//! through [`Annotations`], so where a key may be written is decided here
//! and nowhere else.
//!
//! A key declared under `vault.hashicorp.com/` is also read under
//! `openbao.org/`, the prefix of OpenBao's fork of vault-k8s. A pod may
//! write a setting under both only with one value ([`Annotations::agree`]);
//! an [`Entry`] keeps the key as the pod wrote it, so messages name that.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use super::keys::{Family, INJECT, Key, Prefix, VAULT_PREFIX};
use super::values::{self, Checked};
use crate::denial::{Denial, Result};

/// A pod's annotations.
#[derive(Debug, Clone)]
pub struct Annotations<'a> {
    map: &'a BTreeMap<String, String>,
    /// The annotations under our prefixes, split once, in the map's order:
    /// by prefix as written, then by name. A key is found by binary search
    /// among its prefix's, without writing out its text, however many keys
    /// a parse reads.
    ours: Vec<(Prefix, &'a str, Entry<'a>)>,
    /// Where each prefix's annotations are in `ours`, by [`slot`].
    spans: [Range<usize>; 3],
    /// The lengths of each prefix's names, by [`slot`], as bits: bit `n` for
    /// length `n`, the last bit for every longer name. A parse looks up a
    /// few hundred keys, nearly all absent, and most are ruled out here
    /// before a search.
    lengths: [u128; 3],
}

/// The bit of [`Annotations::lengths`] for a name of `len` bytes.
fn length_bit(len: usize) -> u128 {
    1 << len.min(127)
}

/// The prefixes in the order of [`Annotations::spans`].
const SLOTS: [Prefix; 3] = [Prefix::Vault, Prefix::OpenBao, Prefix::Keyhole];

/// The place of `prefix` in [`SLOTS`].
const fn slot(prefix: Prefix) -> usize {
    match prefix {
        Prefix::Vault => 0,
        Prefix::OpenBao => 1,
        Prefix::Keyhole => 2,
    }
}

/// One annotation as the pod wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The full key, e.g. `vault.hashicorp.com/agent-inject`.
    pub key: &'a str,
    /// Its value.
    pub value: &'a str,
}

impl Entry<'_> {
    /// The value as `check` reads it; a refusal is a denial naming the key.
    pub fn check<T>(self, check: impl FnOnce(&str) -> Checked<T>) -> Result<T> {
        check(self.value).map_err(|reason| self.deny(reason))
    }

    /// A denial naming this annotation.
    pub fn deny(self, reason: impl std::fmt::Display) -> Denial {
        Denial::new(self.key, reason)
    }
}

impl<'a> Annotations<'a> {
    /// Reads `map`, a pod's `metadata.annotations`.
    pub fn new(map: &'a BTreeMap<String, String>) -> Self {
        let ours = map
            .iter()
            .filter_map(|(key, value)| {
                let (prefix, name) = Prefix::split(key)?;
                Some((prefix, name, Entry { key, value }))
            })
            .collect::<Vec<_>>();
        // Each prefix's annotations are next to each other in the map.
        let spans = SLOTS.map(|prefix| {
            let start = ours.partition_point(|(p, _, _)| p.as_str() < prefix.as_str());
            let len = ours[start..].partition_point(|(p, _, _)| *p == prefix);
            start..start + len
        });
        let lengths = spans.clone().map(|span| {
            ours[span]
                .iter()
                .fold(0, |bits, (_, name, _)| bits | length_bit(name.len()))
        });
        Self {
            map,
            ours,
            spans,
            lengths,
        }
    }

    /// The annotation `key`, in the first spelling of its prefix the pod
    /// wrote it with.
    pub fn get(&self, key: Key) -> Option<Entry<'a>> {
        self.written(key).next().map(|(_, entry)| entry)
    }

    /// The member of `family` for `suffix`, e.g. the secret `db`.
    pub fn member(&self, family: Family, suffix: &str) -> Option<Entry<'a>> {
        self.spellings(family.prefix, family.stem, suffix)
            .next()
            .map(|(_, entry)| entry)
    }

    /// The annotation `key` in every spelling of its prefix the pod wrote it
    /// with, the declared one first.
    pub fn written(&self, key: Key) -> impl Iterator<Item = (Prefix, Entry<'a>)> + use<'_, 'a> {
        self.spellings(key.prefix, key.name, "")
    }

    fn spellings<'s>(
        &'s self,
        prefix: Prefix,
        name: &'s str,
        suffix: &'s str,
    ) -> impl Iterator<Item = (Prefix, Entry<'a>)> + use<'a, 's> {
        prefix
            .spellings()
            .iter()
            .filter_map(move |&p| Some((p, self.lookup(p, name, suffix)?)))
    }

    fn lookup(&self, prefix: Prefix, name: &str, suffix: &str) -> Option<Entry<'a>> {
        let slot = slot(prefix);
        if self.lengths[slot] & length_bit(name.len() + suffix.len()) == 0 {
            return None;
        }
        let under = &self.ours[self.spans[slot].clone()];
        let found = under
            .binary_search_by(|(_, n, _)| cmp_joined(n, &[name, suffix]))
            .ok()?;
        Some(under[found].2)
    }

    /// Denies `key` when the pod wrote it under two spellings of its prefix
    /// with different values, naming both.
    pub fn agree(&self, key: Key) -> Result<()> {
        let mut written = self.written(key).map(|(_, entry)| entry);
        match (written.next(), written.next()) {
            (Some(first), Some(second)) => same_value(first, second),
            _ => Ok(()),
        }
    }

    /// [`Self::agree`] for every annotation under our prefixes, families included.
    pub fn all_agree(&self) -> Result<()> {
        for (prefix, name, alias) in self.ours() {
            if prefix == prefix.canonical() {
                continue;
            }
            if let Some(declared) = self.lookup(prefix.canonical(), name, "") {
                same_value(declared, alias)?;
            }
        }
        Ok(())
    }

    /// The keys a patch sets `key` under: every spelling the pod wrote it
    /// with or, when it wrote none, the spelling of the prefix it asked for
    /// injection with, so a pod written for OpenBao's injector gets an
    /// annotation that injector reads.
    pub fn keys_to_set(&self, key: Key) -> Vec<String> {
        let written: Vec<String> = self
            .written(key)
            .map(|(_, entry)| entry.key.to_owned())
            .collect();
        if written.is_empty() {
            vec![key.spelled(self.asked_with()).to_string()]
        } else {
            written
        }
    }

    /// `denial` naming its annotation as the pod spells it ([`Self::spell`]).
    pub fn as_written(&self, denial: Denial) -> Denial {
        Denial {
            annotation: self.spell(&denial.annotation),
            ..denial
        }
    }

    /// The full key `key` as the pod spells it: under `openbao.org/` when
    /// the pod wrote it so or, for a key it did not write (a missing role, a
    /// family), when it asked for injection so. Other text is returned as is.
    pub fn spell(&self, key: &str) -> String {
        match Prefix::split(key) {
            Some((Prefix::Vault, name)) if !self.map.contains_key(key) => {
                match self.lookup(Prefix::OpenBao, name, "") {
                    Some(entry) => entry.key.to_owned(),
                    None => format!("{}{name}", self.asked_with().as_str()),
                }
            }
            _ => key.to_owned(),
        }
    }

    /// `text` with each `vault.hashicorp.com/<name>` in it spelled as the
    /// pod spells that key ([`Self::spell`]), for messages that name keys
    /// besides their own.
    pub fn spell_keys_in(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find(VAULT_PREFIX) {
            out.push_str(&rest[..start]);
            let after = &rest[start + VAULT_PREFIX.len()..];
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(after.len());
            let key = &rest[start..start + VAULT_PREFIX.len() + len];
            out.push_str(&self.spell(key.trim_end_matches('.')));
            out.push_str(&key[key.trim_end_matches('.').len()..]);
            rest = &rest[start + key.len()..];
        }
        out.push_str(rest);
        out
    }

    /// The prefix of the `agent-inject` the pod wrote first.
    fn asked_with(&self) -> Prefix {
        self.written(INJECT)
            .next()
            .map_or(INJECT.prefix, |(p, _)| p)
    }

    /// Every annotation under our prefixes, with its prefix as written and the name after it.
    pub fn ours(&self) -> impl Iterator<Item = (Prefix, &'a str, Entry<'a>)> + use<'_, 'a> {
        self.ours.iter().copied()
    }

    /// The members of `family`, by suffix; a member written under two
    /// spellings of the prefix comes once for each.
    pub fn members(
        &self,
        family: Family,
    ) -> impl Iterator<Item = (&'a str, Entry<'a>)> + use<'_, 'a> {
        self.ours()
            .filter_map(move |(prefix, name, entry)| Some((family.suffix(prefix, name)?, entry)))
    }

    /// The annotation `key` unless its value is blank, which vault-k8s takes
    /// as absent for values it defaults to "".
    pub fn non_empty(&self, key: Key) -> Option<Entry<'a>> {
        self.get(key).filter(|e| !e.value.trim().is_empty())
    }

    /// The boolean `key`, `None` when absent.
    pub fn opt_bool(&self, key: Key) -> Result<Option<bool>> {
        self.get(key).map(|e| e.check(values::boolean)).transpose()
    }

    /// The boolean `key`, `default` when absent.
    pub fn bool(&self, key: Key, default: bool) -> Result<bool> {
        Ok(self.opt_bool(key)?.unwrap_or(default))
    }

    /// The duration `key`, `None` when absent or blank.
    pub fn duration(&self, key: Key) -> Result<Option<String>> {
        self.non_empty(key)
            .map(|e| e.check(values::duration))
            .transpose()
    }

    /// The quantity `key`: `default` when absent, none when empty. A bad
    /// default is refused in the annotation's name, as the value it stands for.
    pub fn quantity(&self, key: Key, default: Option<&str>) -> Result<Option<String>> {
        match self.get(key) {
            Some(e) if e.value.is_empty() => Ok(None),
            Some(e) => e.check(values::quantity).map(Some),
            None => default
                .map(|v| values::quantity(v).map_err(|reason| Denial::new(key, reason)))
                .transpose(),
        }
    }

    /// The user or group id `key`, `default` when absent.
    pub fn id(&self, key: Key, default: i64) -> Result<i64> {
        self.get(key).map_or(Ok(default), |e| e.check(values::id))
    }
}

/// How `key` sorts against the text `parts` joined, without joining them.
fn cmp_joined(key: &str, parts: &[&str]) -> Ordering {
    let mut rest = key.as_bytes();
    for part in parts {
        let part = part.as_bytes();
        let common = rest.len().min(part.len());
        let (head, tail) = rest.split_at(common);
        match head.cmp(&part[..common]) {
            Ordering::Equal if common < part.len() => return Ordering::Less,
            Ordering::Equal => rest = tail,
            unequal => return unequal,
        }
    }
    if rest.is_empty() {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// Denies two spellings of one annotation with different values. The
/// values are left out: a template's text would drown the message.
fn same_value(first: Entry<'_>, second: Entry<'_>) -> Result<()> {
    if first.value == second.value {
        return Ok(());
    }
    Err(first.deny(format!(
        "{} gives another value; keyhole reads both as one setting, so write it once or \
         give both the same value",
        second.key
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::keys::SECRET;

    fn mk_map(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|key| ((*key).to_owned(), format!("value of {key}")))
            .collect()
    }

    #[test]
    fn finds_keys_and_family_members_among_neighbours() {
        let map = mk_map(&[
            "keyhole.dev/native-sidecar",
            "openbao.org/agent-inject-secret-db",
            "vault.hashicorp.com/agent-inject",
            "vault.hashicorp.com/agent-inject-secret-d",
            "vault.hashicorp.com/agent-inject-secret-db",
            "vault.hashicorp.com/agent-inject-secret-db2",
            "vault.hashicorp.com/role",
        ]);
        let a = Annotations::new(&map);
        let secret = |suffix| a.member(SECRET, suffix).map(|e| e.key);

        assert_eq!(
            secret("d"),
            Some("vault.hashicorp.com/agent-inject-secret-d")
        );
        assert_eq!(
            secret("db"),
            Some("vault.hashicorp.com/agent-inject-secret-db")
        );
        assert_eq!(
            secret("db2"),
            Some("vault.hashicorp.com/agent-inject-secret-db2")
        );
        assert_eq!(secret("db3"), None);
        assert_eq!(secret(""), None);
        assert_eq!(
            a.get(INJECT).map(|e| e.value),
            Some("value of vault.hashicorp.com/agent-inject")
        );
        let written: Vec<_> = a
            .spellings(Prefix::Vault, "agent-inject-secret-", "db")
            .map(|(_, e)| e.key)
            .collect();
        assert_eq!(
            written,
            [
                "vault.hashicorp.com/agent-inject-secret-db",
                "openbao.org/agent-inject-secret-db"
            ]
        );
    }

    #[test]
    fn each_prefix_has_its_slot() {
        for (i, prefix) in SLOTS.into_iter().enumerate() {
            assert_eq!(slot(prefix), i, "{prefix:?}");
        }
    }

    #[test]
    fn compares_a_key_with_joined_parts() {
        let parts = ["agent-inject-", "secret-", "db"];
        for (key, expected) in [
            ("agent-inject-secret-db", Ordering::Equal),
            ("agent-inject-secret-d", Ordering::Less),
            ("agent-inject-secret-db2", Ordering::Greater),
            ("agent-inject", Ordering::Less),
            ("agent-inject-secrets", Ordering::Greater),
            ("role", Ordering::Greater),
            ("", Ordering::Less),
        ] {
            let joined = parts.concat();
            assert_eq!(key.cmp(joined.as_str()), expected, "{key}");
            assert_eq!(cmp_joined(key, &parts), expected, "{key}");
        }
    }
}
