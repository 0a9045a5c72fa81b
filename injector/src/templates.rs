//! Every template the agent will run, parsed at admission: the user's inline
//! templates and the default templates generated for bare secret paths alike,
//! so that a syntax error denies the pod and the path policy sees the calls
//! the agent will really make.
//!
//! The pods of one ReplicaSet carry the same templates, so a rollout or a
//! scale-up would parse the same texts once per pod. What admission keeps of
//! a parse, the Vault calls, is remembered by the text in a bounded memo;
//! a template that does not parse is parsed again each time, for its
//! message names the pod's own annotation.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use keyhole_agent::template::{Template, VaultCall};

use crate::agent_config::template_contents;
use crate::annotations::spec::{Secret, TemplateText};
use crate::denial::Denial;

/// One secret's template as the agent will run it.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The secret it renders.
    pub secret: &'a Secret,
    /// The annotation that supplied its text or, for a default template, its path.
    pub annotation: String,
    /// The template, parsed unless it is a file.
    pub body: Body<'a>,
}

/// A template's body as far as admission can see it.
#[derive(Debug)]
pub enum Body<'a> {
    /// Text from an annotation, or generated for a secret path: the Vault
    /// calls it makes, in the order written.
    Parsed(Arc<[VaultCall]>),
    /// A file inside the agent container, which only the agent can read.
    File(&'a str),
}

/// Parses the template that `secret` renders, as the agent will run it.
pub fn parse(secret: &Secret) -> Result<Parsed<'_>, Denial> {
    let annotation = secret.annotation.clone();
    let body = match (&secret.template, template_contents(secret)) {
        (TemplateText::File(file), _) => Body::File(file),
        (_, text) => {
            let text = text.unwrap_or_default();
            let key = memo_key(&text, &secret.left_delimiter, &secret.right_delimiter);
            let remembered = MEMO
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key);
            match remembered {
                Some(calls) => Body::Parsed(calls),
                None => {
                    let template = Template::parse(
                        &secret.name,
                        &text,
                        &secret.left_delimiter,
                        &secret.right_delimiter,
                    )
                    .map_err(|e| Denial::new(&annotation, e))?;
                    let calls: Arc<[VaultCall]> = template.vault_calls().into();
                    MEMO.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key, Arc::clone(&calls));
                    Body::Parsed(calls)
                }
            }
        }
    };
    Ok(Parsed {
        secret,
        annotation,
        body,
    })
}

/// The most template text the memo's newer half holds before it becomes the
/// older half and the older half is dropped: the memo holds at most twice
/// this, plus the calls.
const MEMO_BYTES: usize = 256 * 1024;

/// The most templates the memo's newer half holds, for the same.
const MEMO_ENTRIES: usize = 1024;

static MEMO: LazyLock<Mutex<Memo>> = LazyLock::new(Mutex::default);

/// The Vault calls of templates parsed lately, by text and delimiters.
///
/// Two halves, the newer and the older, instead of a least-recently-used
/// list: a hit in the older half moves its entry to the newer, and when the
/// newer is full the older is dropped. What pods keep sending stays; texts
/// that a hostile pod makes up by the thousand push out only each other and
/// what no pod has sent lately, and never take more than the bound.
#[derive(Default)]
struct Memo {
    newer: HashMap<String, Arc<[VaultCall]>>,
    older: HashMap<String, Arc<[VaultCall]>>,
    newer_bytes: usize,
}

impl Memo {
    fn get(&mut self, key: &str) -> Option<Arc<[VaultCall]>> {
        if let Some(calls) = self.newer.get(key) {
            return Some(Arc::clone(calls));
        }
        let (key, calls) = self.older.remove_entry(key)?;
        self.insert(key, Arc::clone(&calls));
        Some(calls)
    }

    fn insert(&mut self, key: String, calls: Arc<[VaultCall]>) {
        if self.newer_bytes + key.len() > MEMO_BYTES || self.newer.len() >= MEMO_ENTRIES {
            self.older = std::mem::take(&mut self.newer);
            self.newer_bytes = 0;
        }
        self.newer_bytes += key.len();
        self.newer.insert(key, calls);
    }
}

/// The memo's key for a template: its delimiters and text, with the
/// delimiters' lengths first so that no two inputs give the same key.
fn memo_key(text: &str, left: &str, right: &str) -> String {
    format!("{}:{}:{left}{right}{text}", left.len(), right.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(path: &str) -> Arc<[VaultCall]> {
        Template::parse(
            "t",
            &format!("{{{{ with secret {path:?} }}}}{{{{ end }}}}"),
            "",
            "",
        )
        .expect("parses")
        .vault_calls()
        .into()
    }

    #[test]
    fn keys_of_different_delimiters_and_texts_differ() {
        assert_ne!(memo_key("{a", "[[", ""), memo_key("a", "[[{", ""));
        assert_ne!(memo_key("x", "<", ">"), memo_key("x", "<>", ""));
        assert_eq!(memo_key("x", "", ""), "0:0:x");
    }

    #[test]
    fn the_memo_keeps_what_is_asked_for_and_stays_bounded() {
        let mut memo = Memo::default();
        memo.insert("kept".to_owned(), calls("secret/data/kept"));
        for n in 0..MEMO_ENTRIES * 3 {
            memo.insert(format!("made-up-{n}"), calls("secret/data/x"));
            // A template that pods keep sending is never dropped.
            let kept = memo.get("kept").expect("kept");
            assert_eq!(kept[0].path.as_deref(), Some("secret/data/kept"));
            assert!(memo.newer.len() + memo.older.len() <= 2 * MEMO_ENTRIES);
        }
        assert!(
            memo.get("made-up-0").is_none(),
            "dropped with the older half"
        );

        let mut memo = Memo::default();
        let large = "x".repeat(MEMO_BYTES / 4);
        for n in 0..20 {
            memo.insert(format!("{n}{large}"), calls("secret/data/x"));
            assert!(memo.newer_bytes <= MEMO_BYTES);
        }
        assert!(memo.newer.len() + memo.older.len() <= 8);
    }
}
