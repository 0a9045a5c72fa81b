//! Every template the agent will run, parsed at admission: the user's inline
//! templates and the default templates generated for bare secret paths alike,
//! so that a syntax error denies the pod and the path policy sees the calls
//! the agent will really make.

use keyhole_agent::template::Template;

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
    /// Text from an annotation, or generated for a secret path.
    Parsed(Template),
    /// A file inside the agent container, which only the agent can read.
    File(&'a str),
}

/// Parses the template that `secret` renders, as the agent will run it.
pub fn parse(secret: &Secret) -> Result<Parsed<'_>, Denial> {
    let annotation = secret.annotation.clone();
    let body = match (&secret.template, template_contents(secret)) {
        (TemplateText::File(file), _) => Body::File(file),
        (_, text) => Template::parse(
            &secret.name,
            &text.unwrap_or_default(),
            &secret.left_delimiter,
            &secret.right_delimiter,
        )
        .map(Body::Parsed)
        .map_err(|e| Denial::new(&annotation, e))?,
    };
    Ok(Parsed {
        secret,
        annotation,
        body,
    })
}
