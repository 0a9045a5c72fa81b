//! The Vault requests templates make, the results a render may use, and
//! what one render asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vault::Secret;

/// A Vault request a template makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Request {
    /// `secret "path"`: a logical read. The path is as written, including
    /// any `?version=N` query; KV v2 path rewriting is the client's job.
    Read {
        /// The Vault path.
        path: String,
    },
    /// `secret "path" "k=v"...`: a logical write with string parameters.
    Write {
        /// The Vault path.
        path: String,
        /// The parameters, keys and values trimmed.
        data: BTreeMap<String, String>,
    },
    /// `pkiCert "path" "k=v"...`: a write that issues a certificate, unless
    /// the template's destination still holds a good one (see
    /// [`reusable_certificate`](super::reusable_certificate)). The template
    /// reads `certificate`, `private_key` and `issuing_ca` from the answer.
    PkiCert {
        /// The Vault path.
        path: String,
        /// The parameters, keys and values trimmed.
        data: BTreeMap<String, String>,
        /// The file the template renders to, where a certificate issued
        /// earlier may be found.
        destination: Option<PathBuf>,
    },
    /// `secrets "path"`: a LIST returning key names.
    List {
        /// The Vault path.
        path: String,
    },
}

impl Request {
    /// The Vault path of the request.
    pub fn path(&self) -> &str {
        match self {
            Request::Read { path }
            | Request::Write { path, .. }
            | Request::PkiCert { path, .. }
            | Request::List { path } => path,
        }
    }
}

/// Results of Vault requests available to renders, and the requests the
/// last render could not find.
#[derive(Debug, Default)]
pub struct RenderContext {
    secrets: HashMap<Request, Result<Arc<Secret>, String>>,
    lists: HashMap<Request, Result<Vec<String>, String>>,
    missing: Vec<Request>,
    used: BTreeSet<Request>,
}

impl RenderContext {
    /// An empty context: every request is missing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the result of a read or write. An `Err` makes the template
    /// call fail with that message (e.g. permission denied), after the call
    /// and its path when the template wrote the path as a string constant; a
    /// computed path may be a secret, so it is left out.
    pub fn insert(&mut self, request: Request, result: Result<Arc<Secret>, String>) {
        self.secrets.insert(request, result);
    }

    /// Stores the result of a [`Request::List`]: the key names, sorted.
    pub fn insert_list(&mut self, request: Request, result: Result<Vec<String>, String>) {
        self.lists.insert(request, result);
    }

    /// Requests the last render asked for but did not find, sorted and
    /// without duplicates. While this is non-empty, a render error may be a
    /// consequence of the nil values and should not be reported yet.
    pub fn missing(&self) -> &[Request] {
        &self.missing
    }

    /// Every request the last render made, found or not: the template's
    /// dependencies, which decide when it must render again.
    pub fn used(&self) -> &BTreeSet<Request> {
        &self.used
    }

    /// The view of this context one render gets. `literal_paths` are the
    /// paths the template writes as string constants; `destination` is the
    /// file it renders to.
    pub(crate) fn requests<'a>(
        &'a self,
        literal_paths: &'a BTreeSet<String>,
        destination: Option<&'a Path>,
    ) -> Requests<'a> {
        Requests {
            ctx: self,
            literal_paths,
            destination,
            missing: BTreeSet::new(),
            used: BTreeSet::new(),
        }
    }

    /// Keeps what a finished render asked for, for [`Self::missing`] and
    /// [`Self::used`].
    pub(crate) fn remember(&mut self, asked: Asked) {
        self.missing = asked.missing.into_iter().collect();
        self.used = asked.used;
    }
}

/// What the Vault functions of one render see: the results fetched so far,
/// and a record of each request they make.
pub(crate) struct Requests<'a> {
    ctx: &'a RenderContext,
    literal_paths: &'a BTreeSet<String>,
    destination: Option<&'a Path>,
    missing: BTreeSet<Request>,
    used: BTreeSet<Request>,
}

/// The requests one render made, and those it did not find.
pub(crate) struct Asked {
    missing: BTreeSet<Request>,
    used: BTreeSet<Request>,
}

impl<'a> Requests<'a> {
    /// The file the template renders to, if the render has one.
    pub(crate) fn destination(&self) -> Option<&'a Path> {
        self.destination
    }

    /// The result of a read or write, or `None` (recorded as missing) when
    /// it has not been fetched yet.
    pub(crate) fn secret(&mut self, request: &Request) -> Option<Result<&'a Secret, &'a str>> {
        let ctx = self.ctx;
        let found = ctx.secrets.get(request);
        self.record(request, found.is_some());
        found.map(|r| r.as_deref().map_err(String::as_str))
    }

    /// The key names of a [`Request::List`], or `None` (recorded as
    /// missing) when it has not been fetched yet.
    pub(crate) fn list(&mut self, request: &Request) -> Option<Result<&'a [String], &'a str>> {
        let ctx = self.ctx;
        let found = ctx.lists.get(request);
        self.record(request, found.is_some());
        found.map(|r| r.as_deref().map_err(String::as_str))
    }

    /// Whether the template writes `path` as the string constant path of a
    /// Vault call. Any other path was computed while rendering, and may be
    /// a secret.
    pub(crate) fn is_literal_path(&self, path: &str) -> bool {
        self.literal_paths.contains(path)
    }

    /// Ends the render: what it asked for.
    pub(crate) fn asked(self) -> Asked {
        Asked {
            missing: self.missing,
            used: self.used,
        }
    }

    fn record(&mut self, request: &Request, found: bool) {
        if !found {
            self.missing.insert(request.clone());
        }
        self.used.insert(request.clone());
    }
}
