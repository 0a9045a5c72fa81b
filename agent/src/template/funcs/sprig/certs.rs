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
    let parts = leaf_args(args)?;
    let key = new_rsa_key()?;
    self_signed(&parts, &key)
}

/// `genSelfSignedCertWithKey cn ips dnsNames days key`: a self-signed
/// certificate for the private key `key` (PEM).
pub(in super::super) fn gen_self_signed_cert_with_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let parts = leaf_args(args)?;
    let key = key_arg(&args[4])?;
    self_signed(&parts, &key)
}

/// `genSignedCert cn ips dnsNames days ca`: a certificate signed by `ca`
/// (from `genCA` or `buildCustomCert`) and its new RSA key.
pub(in super::super) fn gen_signed_cert<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let parts = leaf_args(args)?;
    let ca = certificate_arg(&args[4])?;
    let key = new_rsa_key()?;
    signed(&parts, &key, ca)
}

/// `genSignedCertWithKey cn ips dnsNames days ca key`: a certificate for
/// the private key `key` (PEM), signed by `ca`.
pub(in super::super) fn gen_signed_cert_with_key<'a>(args: &[Value<'a>]) -> FnResult<'a> {
    let parts = leaf_args(args)?;
    let ca = certificate_arg(&args[4])?;
    let key = key_arg(&args[5])?;
    signed(&parts, &key, ca)
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
struct Leaf<'a> {
    cn: &'a str,
    ips: Vec<Value<'a>>,
    dns_names: Vec<Value<'a>>,
    days: i64,
}

/// The common name, IP addresses, DNS names and days of validity the leaf
/// certificate functions take first.
fn leaf_args<'v, 'a>(args: &'v [Value<'a>]) -> Result<Leaf<'v>, String>
where
    'a: 'v,
{
    Ok(Leaf {
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

/// Sprig's CA: the base template with no alternative names, marked CA and
/// allowed to sign certificates, signed by its own key.
fn ca<'a>(cn: &str, days: i64, key: &PrivateKey) -> FnResult<'a> {
    let leaf = Leaf {
        cn,
        ips: Vec::new(),
        dns_names: Vec::new(),
        days,
    };
    let (mut params, _) = base_params(&leaf)?;
    params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pair = key.key_pair().map_err(creating)?;
    let cert = params.self_signed(&pair).map_err(creating)?;
    certificate(cert.der(), key)
}

fn self_signed<'a>(leaf: &Leaf<'_>, key: &PrivateKey) -> FnResult<'a> {
    let (params, dns_names) = base_params(leaf)?;
    let pair = key.key_pair().map_err(creating)?;
    check_dns_names(&dns_names)?;
    let cert = params.self_signed(&pair).map_err(creating)?;
    certificate(cert.der(), key)
}

fn signed<'a>(leaf: &Leaf<'_>, key: &PrivateKey, ca: &Certificate) -> FnResult<'a> {
    let block = pem::parse(&ca.cert).map_err(|_| "unable to decode certificate".to_owned())?;
    let (_, ca_cert) = X509Certificate::from_der(block.contents())
        .map_err(|e| format!("error parsing certificate: decodedSignerCert.Bytes: {e}"))?;
    let ca_key =
        PrivateKey::from_pem(&ca.key).map_err(|e| format!("error parsing private key: {e}"))?;
    let (mut params, dns_names) = base_params(leaf)?;
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
            && first == Some(leaf.cn)
    };
    params.use_authority_key_identifier_extension = ca_has_key_id && !same_subject;
    let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(block.contents()), ca_pair)
        .map_err(creating)?;
    let pair = key.key_pair().map_err(creating)?;
    let cert = params.signed_by(&pair, &issuer).map_err(creating)?;
    certificate(cert.der(), key)
}

/// Sprig's `getBaseCertTemplate`, for a certificate that is not a CA,
/// and the DNS names it was given.
fn base_params(leaf: &Leaf<'_>) -> Result<(CertificateParams, Vec<String>), String> {
    let ips: Vec<IpAddr> = leaf.ips.iter().map(parse_ip).collect::<Result<_, _>>()?;
    let dns_names: Vec<String> = leaf
        .dns_names
        .iter()
        .map(dns_name)
        .collect::<Result<_, _>>()?;
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| e.to_string())?;
    let not_before = OffsetDateTime::now_utc();
    let not_after = (leaf.days.checked_mul(86_400))
        .and_then(|seconds| not_before.checked_add(Duration::seconds(seconds)))
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| format!("{} days of validity end past year 9999", leaf.days))?;
    let mut subject = DistinguishedName::new();
    if !leaf.cn.is_empty() {
        subject.push(DnType::CommonName, subject_value(leaf.cn));
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
    // Go writes basic constraints with CA false (and no key identifier);
    // rcgen's `ExplicitNoCa` would add a key identifier.
    let mut not_ca = CustomExtension::from_oid_content(BASIC_CONSTRAINTS, vec![0x30, 0x00]);
    not_ca.set_criticality(true);
    params.custom_extensions = vec![not_ca];
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
