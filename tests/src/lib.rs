//! Test harness: real OpenBao and PostgreSQL servers, minted service-account tokens.
