//! Reading a pod's annotations by [`Key`] and [`Family`]: every read goes
//! through [`Annotations`], so where a key may be written is decided here
//! and nowhere else.

use std::collections::BTreeMap;

use super::keys::{Family, Key, Prefix};
use super::values::{self, Checked};
use crate::denial::{Denial, Result};

/// A pod's annotations.
#[derive(Debug, Clone, Copy)]
pub struct Annotations<'a> {
    map: &'a BTreeMap<String, String>,
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
        Self { map }
    }

    /// The annotation `key`.
    pub fn get(&self, key: Key) -> Option<Entry<'a>> {
        self.lookup(key.prefix, key.name, "")
    }

    /// The member of `family` for `suffix`, e.g. the secret `db`.
    pub fn member(&self, family: Family, suffix: &str) -> Option<Entry<'a>> {
        self.lookup(family.prefix, family.stem, suffix)
    }

    fn lookup(&self, prefix: Prefix, name: &str, suffix: &str) -> Option<Entry<'a>> {
        let key = format!("{}{name}{suffix}", prefix.as_str());
        self.map
            .get_key_value(&key)
            .map(|(key, value)| Entry { key, value })
    }

    /// Every annotation under our prefixes, with its prefix and the name after it.
    pub fn ours(&self) -> impl Iterator<Item = (Prefix, &'a str, Entry<'a>)> + use<'a> {
        self.map.iter().filter_map(|(key, value)| {
            let (prefix, name) = Prefix::split(key)?;
            Some((prefix, name, Entry { key, value }))
        })
    }

    /// The members of `family`, by suffix.
    pub fn members(&self, family: Family) -> impl Iterator<Item = (&'a str, Entry<'a>)> + use<'a> {
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
