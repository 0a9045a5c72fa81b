//! Sprig's certificate generators: a CA, self-signed and CA-signed
//! certificates with new RSA 2048 keys or keys given in PEM, and
//! `buildCustomCert` to bring a certificate made elsewhere. Each returns
//! sprig's `certificate` (`.Cert`, `.Key`), both in PEM.
//!
//! The certificates are what sprig's template makes: the common name as
//! the whole subject, the IP addresses and DNS names as subject
//! alternative names, valid from now for the given number of days, a
//! random 128-bit serial, key usages key encipherment and digital
//! signature (and certificate signing for a CA), extended key usages
//! server and client authentication, and basic constraints marked CA or
//! not CA.

use std::net::IpAddr;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::super::super::value::{Certificate, Value};
use super::super::args::{FnResult, string_arg};
use super::keys::{DSA_UNSUPPORTED_PUBLIC_KEY, PrivateKey, pem_text};
use super::{int_arg, strval};

/// The RSA key size of the certificates made with a new key.
const GENERATED_RSA_BITS: usize = 2048;

/// `basicConstraints` (RFC 5280, 4.2.1.9).
const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];

/// `genCA cn days`: a self-signed CA certificate and its new RSA key.
pub(in super::super) fn gen_ca<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (cn, days) = (string_arg(&args[0])?, int_arg(&args[1])?);
    let key = new_rsa_key()?;
    ca(cn, days, &key)
}

/// `genCAWithKey cn days key`: a self-signed CA certificate for the
/// private key `key` (PEM).
pub(in super::super) fn gen_ca_with_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (cn, days) = (string_arg(&args[0])?, int_arg(&args[1])?);
    let key = key_arg(&args[2])?;
    ca(cn, days, &key)
}

/// `genSelfSignedCert cn ips dnsNames days`: a self-signed certificate and
/// its new RSA key.
pub(in super::super) fn gen_self_signed_cert<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let base = base_args(args)?;
    let key = new_rsa_key()?;
    self_signed(&base, &key)
}

/// `genSelfSignedCertWithKey cn ips dnsNames days key`: a self-signed
/// certificate for the private key `key` (PEM).
pub(in super::super) fn gen_self_signed_cert_with_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let base = base_args(args)?;
    let key = key_arg(&args[4])?;
    self_signed(&base, &key)
}

/// `genSignedCert cn ips dnsNames days ca`: a certificate signed by `ca`
/// (from `genCA` or `buildCustomCert`) and its new RSA key.
pub(in super::super) fn gen_signed_cert<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let base = base_args(args)?;
    let ca = certificate_arg(&args[4])?;
    let key = new_rsa_key()?;
    signed(&base, &key, ca)
}

/// `genSignedCertWithKey cn ips dnsNames days ca key`: a certificate for
/// the private key `key` (PEM), signed by `ca`.
pub(in super::super) fn gen_signed_cert_with_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let base = base_args(args)?;
    let ca = certificate_arg(&args[4])?;
    let key = key_arg(&args[5])?;
    signed(&base, &key, ca)
}

/// `buildCustomCert cert key`: a `certificate` of a PEM certificate and
/// its PEM private key, both base64-encoded, to sign with `genSignedCert`.
pub(in super::super) fn build_custom_cert<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let (b64_cert, b64_key) = (string_arg(&args[0])?, string_arg(&args[1])?);
    let cert =
        go_base64(b64_cert).ok_or_else(|| "unable to decode base64 certificate".to_owned())?;
    let key = go_base64(b64_key).ok_or_else(|| "unable to decode base64 private key".to_owned())?;
    let block = pem::parse(&cert).map_err(|_| "unable to decode certificate".to_owned())?;
    X509Certificate::from_der(block.contents())
        .map_err(|e| format!("error parsing certificate: decodedCert.Bytes: {e}"))?;
    let key = String::from_utf8_lossy(&key).into_owned();
    PrivateKey::from_pem(&key).map_err(|e| format!("error parsing private key: {e}"))?;
    Ok(Value::Certificate(Rc::new(Certificate {
        cert: String::from_utf8_lossy(&cert).into_owned(),
        key,
    })))
}

/// What sprig's base template of a certificate takes from its caller:
/// the IP addresses and DNS names as given, checked when the template is
/// made, as in sprig.
struct Base<'a> {
    cn: &'a str,
    ips: Vec<Value<'a>>,
    dns_names: Vec<Value<'a>>,
    days: i64,
}

/// The common name, IP addresses, DNS names and days of validity the leaf
/// certificate functions take first.
fn base_args<'v, 'a>(args: &'v [Value<'a>]) -> Result<Base<'v>, String>
where
    'a: 'v,
{
    Ok(Base {
        cn: string_arg(&args[0])?,
        ips: list_arg(&args[1])?,
        dns_names: list_arg(&args[2])?,
        days: int_arg(&args[3])?,
    })
}

/// Sprig's `getNetIPs` for one address.
fn parse_ip(v: &Value<'_>) -> Result<IpAddr, String> {
    let Some(text) = string_item(v) else {
        return Err(format!("error parsing ip: {} is not a string", strval(v)?));
    };
    go_parse_ip(&text).ok_or_else(|| format!("error parsing ip: {text}"))
}

/// Sprig's `getAlternateDNSStrs` for one name.
fn dns_name(v: &Value<'_>) -> Result<String, String> {
    string_item(v).map_or_else(
        || {
            Err(format!(
                "error processing alternate dns name: {} is not a string",
                strval(v)?
            ))
        },
        Ok,
    )
}

/// A `[]interface{}` parameter: a list, or nil for none.
fn list_arg<'a>(v: &Value<'a>) -> Result<Vec<Value<'a>>, String> {
    match v {
        Value::Missing | Value::Nil => Ok(Vec::new()),
        Value::JsonList(_) | Value::List(_) => Ok(v.list_items().unwrap_or_default()),
        other => Err(format!(
            "wrong type for value; expected []interface {{}}; got {}",
            other.type_name()
        )),
    }
}

/// The text of a list element that is a Go `string`.
fn string_item(v: &Value<'_>) -> Option<String> {
    v.is_plain_string()
        .then(|| v.as_str().map(|s| s.into_owned()))
        .flatten()
}

/// Go's `net.ParseIP`, with an IPv4-mapped IPv6 address as the IPv4
/// address it maps (Go writes those as four bytes in a certificate).
fn go_parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// A sprig `certificate` parameter.
fn certificate_arg<'v>(v: &'v Value<'_>) -> Result<&'v Certificate, String> {
    match v {
        Value::Certificate(c) => Ok(c),
        Value::Missing => Err("invalid value; expected sprig.certificate".into()),
        other => Err(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            other.type_name()
        )),
    }
}

/// A PEM private key parameter.
fn key_arg(v: &Value<'_>) -> Result<PrivateKey, String> {
    PrivateKey::from_pem(string_arg(v)?).map_err(|e| format!("parsing private key: {e}"))
}

fn new_rsa_key() -> Result<PrivateKey, String> {
    PrivateKey::generate_rsa(GENERATED_RSA_BITS)
        .map_err(|e| format!("error generating rsa key: {e}"))
}

/// Sprig's CA: the base template of a CA with no alternative names,
/// signed by its own key.
fn ca<'a>(cn: &str, days: i64, key: &PrivateKey) -> FnResult<'a> {
    let base = Base {
        cn,
        ips: Vec::new(),
        dns_names: Vec::new(),
        days,
    };
    let (params, _) = base_params(&base, Role::Ca)?;
    let pair = key.key_pair().map_err(creating)?;
    let cert = params.self_signed(&pair).map_err(creating)?;
    certificate(cert.der(), key)
}

fn self_signed<'a>(base: &Base<'_>, key: &PrivateKey) -> FnResult<'a> {
    let (params, dns_names) = base_params(base, Role::Leaf)?;
    let pair = key.key_pair().map_err(creating)?;
    check_dns_names(&dns_names)?;
    let cert = params.self_signed(&pair).map_err(creating)?;
    certificate(cert.der(), key)
}

fn signed<'a>(base: &Base<'_>, key: &PrivateKey, ca: &Certificate) -> FnResult<'a> {
    let block = pem::parse(&ca.cert).map_err(|_| "unable to decode certificate".to_owned())?;
    let (_, ca_cert) = X509Certificate::from_der(block.contents())
        .map_err(|e| format!("error parsing certificate: decodedSignerCert.Bytes: {e}"))?;
    let ca_key =
        PrivateKey::from_pem(&ca.key).map_err(|e| format!("error parsing private key: {e}"))?;
    let (mut params, dns_names) = base_params(base, Role::Leaf)?;
    let ca_pair = ca_key.key_pair().map_err(creating)?;
    if key.is_dsa() {
        return Err(creating(DSA_UNSUPPORTED_PUBLIC_KEY));
    }
    if ca_pair.subject_public_key_info() != ca_cert.public_key().raw {
        return Err(creating(
            "x509: provided PrivateKey doesn't match parent's PublicKey",
        ));
    }
    check_dns_names(&dns_names)?;
    // Go names the CA's key when the CA has a key identifier and is
    // another subject.
    let ca_has_key_id = ca_cert
        .extensions()
        .iter()
        .any(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER);
    let same_subject = {
        let mut names = ca_cert.subject().iter_common_name();
        let first = names.next().and_then(|n| n.as_str().ok());
        ca_cert.subject().iter_attributes().count() == 1
            && names.next().is_none()
            && first == Some(base.cn)
    };
    params.use_authority_key_identifier_extension = ca_has_key_id && !same_subject;
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(block.contents()), ca_pair)
        .map_err(creating)?;
    let pair = key.key_pair().map_err(creating)?;
    let cert = params.signed_by(&pair, &issuer).map_err(creating)?;
    certificate(cert.der(), key)
}

/// Whether a certificate is a CA.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ca,
    Leaf,
}

/// Sprig's `getBaseCertTemplate`, with a CA's key usage and basic
/// constraints for a CA, and the DNS names it was given.
fn base_params(base: &Base<'_>, role: Role) -> Result<(CertificateParams, Vec<String>), String> {
    let ips: Vec<IpAddr> = base.ips.iter().map(parse_ip).collect::<Result<_, _>>()?;
    let dns_names: Vec<String> = base
        .dns_names
        .iter()
        .map(dns_name)
        .collect::<Result<_, _>>()?;
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| e.to_string())?;
    let not_before = OffsetDateTime::now_utc();
    let not_after = (base.days.checked_mul(86_400))
        .and_then(|seconds| not_before.checked_add(Duration::seconds(seconds)))
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| format!("{} days of validity end past year 9999", base.days))?;
    let mut subject = DistinguishedName::new();
    if !base.cn.is_empty() {
        subject.push(DnType::CommonName, subject_value(base.cn));
    }
    let mut names: Vec<SanType> = ips.into_iter().map(SanType::IpAddress).collect();
    // Names Go cannot write fail later, with Go's message.
    names.extend(
        dns_names
            .iter()
            .filter_map(|name| Ia5String::try_from(name.as_str()).ok())
            .map(SanType::DnsName),
    );
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = subject;
    params.subject_alt_names = names;
    params.not_before = not_before;
    params.not_after = not_after;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    match role {
        Role::Ca => {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        Role::Leaf => {
            // Go writes basic constraints with CA false (and no key
            // identifier); rcgen's `ExplicitNoCa` would add a key
            // identifier.
            let mut not_ca = CustomExtension::from_oid_content(BASIC_CONSTRAINTS, vec![0x30, 0x00]);
            not_ca.set_criticality(true);
            params.custom_extensions = vec![not_ca];
        }
    }
    Ok((params, dns_names))
}

/// Go's `x509` refuses a DNS name that is not ASCII.
fn check_dns_names(dns_names: &[String]) -> Result<(), String> {
    match dns_names.iter().find(|name| !name.is_ascii()) {
        Some(name) => Err(creating(format!(
            "x509: {name:?} cannot be encoded as an IA5String"
        ))),
        None => Ok(()),
    }
}

/// The common name as Go writes it: a `PrintableString` when it can be
/// one, else a `UTF8String`.
fn subject_value(cn: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(cn) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(cn.to_owned()),
    }
}

/// Sprig's message for a certificate that could not be made.
fn creating(err: impl std::fmt::Display) -> String {
    format!("error creating certificate: {err}")
}

/// The `certificate` value of a new certificate and its key.
fn certificate<'a>(der: &[u8], key: &PrivateKey) -> FnResult<'a> {
    Ok(Value::Certificate(Rc::new(Certificate {
        cert: pem_text("CERTIFICATE", der),
        key: key.to_pem()?,
    })))
}

/// Go's `base64.StdEncoding.DecodeString`: padded, line breaks skipped,
/// the unused bits of the last character ignored.
fn go_base64(text: &str) -> Option<Vec<u8>> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let text: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    ENGINE.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;
    use x509_parser::oid_registry::{
        OID_PKCS1_SHA256WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ED25519,
        OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    };
    use x509_parser::public_key::PublicKey;

    use super::super::keys::gen_private_key;
    use super::*;

    fn issued(result: FnResult<'_>) -> Rc<Certificate> {
        match result {
            Ok(Value::Certificate(c)) => c,
            Ok(other) => panic!("a {}, not a certificate", other.type_name()),
            Err(err) => panic!("{err}"),
        }
    }

    fn der(text: &str) -> Vec<u8> {
        pem::parse(text).expect("PEM").into_contents()
    }

    fn parsed(der: &[u8]) -> X509Certificate<'_> {
        X509Certificate::from_der(der).expect("a certificate").1
    }

    fn list(items: &[&'static str]) -> Value<'static> {
        Value::List(Rc::new(items.iter().map(|s| Value::Str(s)).collect()))
    }

    fn new_key(key_type: &'static str) -> String {
        match gen_private_key(&[Value::Str(key_type)]) {
            Ok(Value::String(pem)) => pem.to_string(),
            _ => panic!("no {key_type} key"),
        }
    }

    fn common_name<'c>(cert: &'c X509Certificate<'_>) -> Option<&'c str> {
        cert.subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    }

    fn validity_seconds(cert: &X509Certificate<'_>) -> i64 {
        cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()
    }

    #[test]
    fn gen_ca_is_a_self_signed_rsa_2048_ca_valid_for_the_days_given() {
        let ca = issued(gen_ca(&[Value::Str("parity-ca"), Value::Int(30)]));
        let der = der(&ca.cert);
        let cert = parsed(&der);
        assert_eq!(common_name(&cert), Some("parity-ca"));
        assert_eq!(cert.subject().iter_attributes().count(), 1);
        assert_eq!(cert.issuer().as_raw(), cert.subject().as_raw());
        assert!(cert.is_ca());
        let constraints = cert.basic_constraints().expect("valid").expect("present");
        assert!(constraints.critical);
        assert_eq!(constraints.value.path_len_constraint, None);
        let usage = cert.key_usage().expect("valid").expect("present").value;
        assert!(usage.digital_signature() && usage.key_encipherment() && usage.key_cert_sign());
        let extended = cert
            .extended_key_usage()
            .expect("valid")
            .expect("present")
            .value;
        assert!(extended.server_auth && extended.client_auth);
        assert!(cert.subject_alternative_name().expect("valid").is_none());
        assert_eq!(validity_seconds(&cert), 30 * 86_400);
        assert!(cert.raw_serial().len() <= 17);
        assert_eq!(cert.signature_algorithm.algorithm, OID_PKCS1_SHA256WITHRSA);
        match cert.public_key().parsed().expect("an RSA key") {
            PublicKey::RSA(rsa) => assert_eq!(rsa.key_size(), 2048),
            _ => panic!("not an RSA key"),
        }
        cert.verify_signature(None).expect("signed by its own key");
        assert!(ca.key.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    }

    #[test]
    fn self_signed_cert_names_its_ips_and_dns_names_and_is_not_a_ca() {
        let cert = issued(gen_self_signed_cert(&[
            Value::Str("svc"),
            list(&["10.0.0.1", "::1", "::ffff:1.2.3.4"]),
            list(&["svc.example", "*.svc.example"]),
            Value::Int(3),
        ]));
        let der = der(&cert.cert);
        let parsed = parsed(&der);
        assert_eq!(common_name(&parsed), Some("svc"));
        let names = &parsed
            .subject_alternative_name()
            .expect("valid")
            .expect("present")
            .value
            .general_names;
        assert_eq!(
            names,
            &[
                GeneralName::IPAddress(&[10, 0, 0, 1]),
                GeneralName::IPAddress(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                GeneralName::IPAddress(&[1, 2, 3, 4]),
                GeneralName::DNSName("svc.example"),
                GeneralName::DNSName("*.svc.example"),
            ]
        );
        assert!(!parsed.is_ca());
        let constraints = parsed.basic_constraints().expect("valid").expect("present");
        assert!(constraints.critical && !constraints.value.ca);
        let usage = parsed.key_usage().expect("valid").expect("present").value;
        assert!(usage.digital_signature() && usage.key_encipherment() && !usage.key_cert_sign());
        assert!(
            parsed
                .extensions()
                .iter()
                .all(|e| e.oid != x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        );
        assert_eq!(validity_seconds(&parsed), 3 * 86_400);
        parsed
            .verify_signature(None)
            .expect("signed by its own key");
    }

    #[test]
    fn signed_cert_verifies_against_its_ca_and_names_the_ca_key() {
        let ca = issued(gen_ca(&[Value::Str("parity-ca"), Value::Int(30)]));
        let leaf = issued(gen_signed_cert(&[
            Value::Str("leaf"),
            Value::Nil,
            list(&["leaf.example"]),
            Value::Int(2),
            Value::Certificate(ca.clone()),
        ]));
        let (ca_der, leaf_der) = (der(&ca.cert), der(&leaf.cert));
        let (ca_cert, leaf_cert) = (parsed(&ca_der), parsed(&leaf_der));
        assert_eq!(leaf_cert.issuer().as_raw(), ca_cert.subject().as_raw());
        assert_eq!(common_name(&leaf_cert), Some("leaf"));
        leaf_cert
            .verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
        assert!(leaf_cert.verify_signature(None).is_err());
        assert!(
            leaf_cert
                .extensions()
                .iter()
                .any(|e| e.oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER)
        );
        assert_ne!(leaf.key, ca.key);
        assert_eq!(validity_seconds(&leaf_cert), 2 * 86_400);
    }

    #[test]
    fn certificates_sign_with_the_algorithm_of_the_key_given() {
        for (key_type, algorithm) in [
            ("ecdsa", OID_SIG_ECDSA_WITH_SHA256),
            ("ed25519", OID_SIG_ED25519),
        ] {
            let key = new_key(key_type);
            let ca = issued(gen_ca_with_key(&[
                Value::Str("ca"),
                Value::Int(1),
                Value::Str(&key),
            ]));
            assert_eq!(ca.key, key, "{key_type}");
            let der = der(&ca.cert);
            let cert = parsed(&der);
            assert_eq!(cert.signature_algorithm.algorithm, algorithm, "{key_type}");
            cert.verify_signature(None).expect("signed by its own key");
        }
    }

    #[test]
    fn a_pkcs8_rsa_key_comes_back_as_pkcs1() {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("a key");
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS #8");
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("PKCS #1");
        let cert = issued(gen_self_signed_cert_with_key(&[
            Value::Str("svc"),
            Value::Nil,
            Value::Nil,
            Value::Int(1),
            Value::Str(&pkcs8),
        ]));
        assert_eq!(cert.key, *pkcs1);
    }

    #[test]
    fn build_custom_cert_takes_back_what_gen_ca_made() {
        let ca = issued(gen_ca(&[Value::Str("ca"), Value::Int(1)]));
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let (cert, key) = (encode(&ca.cert), encode(&ca.key));
        let built = issued(build_custom_cert(&[Value::Str(&cert), Value::Str(&key)]));
        assert_eq!((&built.cert, &built.key), (&ca.cert, &ca.key));
    }
}
