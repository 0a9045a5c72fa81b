//! The machine's interface addresses and what go-sockaddr does with them:
//! its attributes, filters, sort orders and the named address lookups.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::net::if_::InterfaceFlags;
use regex::Regex;

/// One address on one interface (go-sockaddr's `IfAddr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IfAddr {
    /// The interface's name.
    pub(super) name: String,
    /// The interface's index: Go lists interfaces in this order.
    pub(super) index: u32,
    /// Go's `net.Flags` of the interface.
    pub(super) flags: Flags,
    /// The address.
    pub(super) ip: IpAddr,
    /// The prefix length of its network.
    pub(super) prefix: u8,
}

/// Go's `net.Flags`, in the order Go prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Flags(u8);

impl Flags {
    pub(super) const UP: Flags = Flags(1);
    pub(super) const BROADCAST: Flags = Flags(1 << 1);
    pub(super) const LOOPBACK: Flags = Flags(1 << 2);
    pub(super) const POINT_TO_POINT: Flags = Flags(1 << 3);
    pub(super) const MULTICAST: Flags = Flags(1 << 4);
    pub(super) const RUNNING: Flags = Flags(1 << 5);
    const NAMES: [&'static str; 6] = [
        "up",
        "broadcast",
        "loopback",
        "pointtopoint",
        "multicast",
        "running",
    ];

    /// The flags Go reads from the kernel's interface flags.
    fn from_kernel(kernel: InterfaceFlags) -> Self {
        [
            (InterfaceFlags::IFF_UP, Self::UP),
            (InterfaceFlags::IFF_BROADCAST, Self::BROADCAST),
            (InterfaceFlags::IFF_LOOPBACK, Self::LOOPBACK),
            (InterfaceFlags::IFF_POINTOPOINT, Self::POINT_TO_POINT),
            (InterfaceFlags::IFF_MULTICAST, Self::MULTICAST),
            (InterfaceFlags::IFF_RUNNING, Self::RUNNING),
        ]
        .into_iter()
        .filter(|(k, _)| kernel.contains(*k))
        .fold(Flags::default(), |acc, (_, f)| acc.with(f))
    }

    pub(super) const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Go's `Flags.String`: the names joined by `|`, or `0`.
    fn to_go_string(self) -> String {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| *name)
            .collect();
        if names.is_empty() {
            "0".to_owned()
        } else {
            names.join("|")
        }
    }
}

/// Why a sockaddr function failed, in go-sockaddr's words.
pub(super) type Result<T> = std::result::Result<T, String>;

/// Every address on every interface, ordered as Go's `net.Interfaces`
/// lists them: by interface index, then in the kernel's order.
pub(super) fn all_interfaces() -> Result<Vec<IfAddr>> {
    let found = nix::ifaddrs::getifaddrs()
        .map_err(|e| format!("unable to query interface addresses: {e}"))?;
    let mut addrs = Vec::new();
    for ifa in found {
        let (Some(address), Some(netmask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (ip, prefix) = if let (Some(a), Some(m)) =
            (address.as_sockaddr_in(), netmask.as_sockaddr_in())
        {
            (IpAddr::V4(a.ip()), u32::from(m.ip()).leading_ones())
        } else if let (Some(a), Some(m)) = (address.as_sockaddr_in6(), netmask.as_sockaddr_in6()) {
            (IpAddr::V6(a.ip()), u128::from(m.ip()).leading_ones())
        } else {
            continue;
        };
        let index = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0);
        addrs.push(IfAddr {
            name: ifa.interface_name,
            index,
            flags: Flags::from_kernel(ifa.flags),
            ip,
            prefix: u8::try_from(prefix).unwrap_or(u8::MAX),
        });
    }
    addrs.sort_by_key(|a| a.index);
    Ok(addrs)
}

/// The interface of the IPv4 default route (what go-sockaddr reads from
/// `ip route`), from the kernel's routing table.
fn default_interface_name() -> Result<String> {
    let table = std::fs::read_to_string("/proc/net/route").map_err(|e| e.to_string())?;
    default_route_interface(&table).ok_or_else(|| "No default interface found".to_owned())
}

/// The interface of the first route to `0.0.0.0/0` in `/proc/net/route`.
fn default_route_interface(table: &str) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.len() > 7 && fields[1] == "00000000" && fields[7] == "00000000")
            .then(|| fields[0].to_owned())
    })
}

/// The addresses on the interface of the default route.
pub(super) fn default_interfaces() -> Result<Vec<IfAddr>> {
    let name = default_interface_name()?;
    let mut addrs = all_interfaces()?;
    addrs.retain(|a| a.name == name);
    Ok(addrs)
}

/// Forwardable, up IP addresses, the default route's first, in RFC 6890
/// (`private`) or not.
pub(super) fn routable_interfaces(private: bool) -> Result<Vec<IfAddr>> {
    let mut addrs = all_interfaces()?;
    addrs.retain(|a| is_forwardable(a) && a.flags.contains(Flags::UP));
    let default = default_interface_name().ok();
    sort_by(
        &mut addrs,
        &[
            Order::Asc(Key::Default(default)),
            Order::Asc(Key::Type),
            Order::Asc(Key::Size),
        ],
    );
    addrs.retain(|a| in_rfc(6890, a) == private);
    Ok(addrs)
}

/// The addresses of all interfaces in RFC 6890 (`private`) or not, IPv4
/// first, larger networks first, joined by spaces; private ones only if
/// forwardable.
pub(super) fn all_ips(private: bool) -> Result<String> {
    let mut addrs = all_interfaces()?;
    sort_by(&mut addrs, &[Order::Asc(Key::Type), Order::Asc(Key::Size)]);
    addrs.retain(|a| in_rfc(6890, a) == private && (!private || is_forwardable(a)));
    Ok(join_addresses(&addrs))
}

/// The addresses of the interfaces whose name matches `pattern`, IPv4
/// first, larger networks first; only forwardable ones for `forwardable`.
pub(super) fn interface_ips(pattern: &str, forwardable: bool) -> Result<Vec<IfAddr>> {
    let re = compile("name", pattern)?;
    let mut addrs = all_interfaces()?;
    addrs.retain(|a| re.is_match(&a.name) && (!forwardable || is_forwardable(a)));
    sort_by(&mut addrs, &[Order::Asc(Key::Type), Order::Asc(Key::Size)]);
    Ok(addrs)
}

/// The addresses joined by spaces.
pub(super) fn join_addresses(addrs: &[IfAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.ip.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn compile(what: &str, pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| format!("Unable to compile {what} regexp {pattern:?}: {e}"))
}

/// `attr name`: the attribute of one address.
pub(super) fn attr(a: &IfAddr, name: &str) -> Result<String> {
    let name = name.to_lowercase();
    Ok(match name.as_str() {
        "name" => a.name.clone(),
        "flags" => a.flags.to_go_string(),
        "address" | "host" => a.ip.to_string(),
        "network" => from_bits(a.ip, network(a)).to_string(),
        "mask_bits" => a.prefix.to_string(),
        "netmask" => from_bits(a.ip, mask(a)).to_string(),
        "port" => "0".to_owned(),
        "type" => type_name(a).to_owned(),
        "string" => string(a),
        _ => return Err(format!("unsupported attribute name {name:?}")),
    })
}

/// How Go prints an address in a list: its `String`, then the interface as
/// `{index mtu name hardware-address flags}`.
pub(super) fn go_string(a: &IfAddr) -> String {
    let sys = |file: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{}/{file}", a.name)).unwrap_or_default()
    };
    let mtu = sys("mtu").trim().parse::<u32>().unwrap_or(0);
    // Go leaves out a hardware address of only zeros (the loopback's).
    let hw = sys("address").trim().to_owned();
    let hw = if hw.bytes().all(|b| b == b'0' || b == b':') {
        String::new()
    } else {
        hw
    };
    format!(
        "{} {{{} {mtu} {} {hw} {}}}",
        string(a),
        a.index,
        a.name,
        a.flags.to_go_string()
    )
}

/// go-sockaddr's `String` of an address: `ip/prefix`, the bare address for
/// a host mask.
fn string(a: &IfAddr) -> String {
    if u32::from(a.prefix) == width(a.ip) {
        a.ip.to_string()
    } else {
        format!("{}/{}", a.ip, a.prefix)
    }
}

fn type_name(a: &IfAddr) -> &'static str {
    match a.ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

fn width(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `ip`'s family with the low bits `value`.
fn from_bits(ip: IpAddr, value: u128) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

fn mask_of(ip: IpAddr, prefix: u8) -> u128 {
    let all = all_of(ip);
    all & !all.checked_shr(u32::from(prefix)).unwrap_or(0)
}

fn mask(a: &IfAddr) -> u128 {
    mask_of(a.ip, a.prefix)
}

fn network(a: &IfAddr) -> u128 {
    bits(a.ip) & mask(a)
}

/// Every bit of `ip`'s family set.
fn all_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(_) => u128::from(u32::MAX),
        IpAddr::V6(_) => u128::MAX,
    }
}

/// Whether the network of `inner` lies within `outer/prefix` (go-sockaddr's
/// `Contains`): the same family, its first and last address inside.
fn contains(outer: IpAddr, prefix: u8, inner: &IfAddr) -> bool {
    if outer.is_ipv4() != inner.ip.is_ipv4() {
        return false;
    }
    let outer_mask = mask_of(outer, prefix);
    let outer_first = bits(outer) & outer_mask;
    let outer_last = outer_first | (all_of(outer) & !outer_mask);
    let inner_first = network(inner);
    let inner_last = inner_first | (all_of(inner.ip) & !mask(inner));
    outer_first <= inner_first && inner_last <= outer_last
}

/// The networks go-sockaddr knows by RFC number, as `(rfc, network)`.
const RFC_NETWORKS: &[(u32, &str)] = &[
    (919, "255.255.255.255/32"),
    (1112, "224.0.0.0/4"),
    (1122, "0.0.0.0/8"),
    (1122, "127.0.0.0/8"),
    (1918, "10.0.0.0/8"),
    (1918, "172.16.0.0/12"),
    (1918, "192.168.0.0/16"),
    (2544, "198.18.0.0/15"),
    (2765, "::ffff:0:0/96"),
    (2928, "2001::/16"),
    (2928, "2001::/23"),
    (2928, "2001:200::/23"),
    (2928, "2001:400::/23"),
    (2928, "2001:600::/23"),
    (2928, "2001:800::/23"),
    (2928, "2001:fe00::/23"),
    (3056, "2002::/16"),
    (3068, "192.88.99.0/24"),
    (3068, "2002:c058:6301::/120"),
    (3171, "224.0.0.0/4"),
    (3330, "0.0.0.0/8"),
    (3330, "10.0.0.0/8"),
    (3330, "127.0.0.0/8"),
    (3330, "169.254.0.0/16"),
    (3330, "172.16.0.0/12"),
    (3330, "192.0.2.0/24"),
    (3330, "192.88.99.0/24"),
    (3330, "192.168.0.0/16"),
    (3330, "198.18.0.0/15"),
    (3330, "224.0.0.0/4"),
    (3330, "240.0.0.0/4"),
    (3849, "2001:db8::/32"),
    (3927, "169.254.0.0/16"),
    (4038, "::ffff:0:0/96"),
    (4193, "fc00::/7"),
    (4291, "::/128"),
    (4291, "::1/128"),
    (4291, "::/96"),
    (4291, "::ffff:0:0/96"),
    (4291, "fe80::/10"),
    (4291, "fec0::/10"),
    (4291, "ff00::/8"),
    (4380, "2001::/32"),
    (4773, "2001::/23"),
    (4843, "2001:10::/28"),
    (5180, "2001:200::/48"),
    (5735, "192.0.2.0/24"),
    (5735, "198.51.100.0/24"),
    (5735, "203.0.113.0/24"),
    (5735, "198.18.0.0/15"),
    (5737, "192.0.2.0/24"),
    (5737, "198.51.100.0/24"),
    (5737, "203.0.113.0/24"),
    (6052, "64:ff9b::/96"),
    (6333, "192.0.0.0/29"),
    (6598, "100.64.0.0/10"),
    (6666, "100::/64"),
    (6890, "0.0.0.0/8"),
    (6890, "10.0.0.0/8"),
    (6890, "100.64.0.0/10"),
    (6890, "127.0.0.0/8"),
    (6890, "169.254.0.0/16"),
    (6890, "172.16.0.0/12"),
    (6890, "192.0.0.0/24"),
    (6890, "192.0.0.0/29"),
    (6890, "192.0.2.0/24"),
    (6890, "192.88.99.0/24"),
    (6890, "192.168.0.0/16"),
    (6890, "198.18.0.0/15"),
    (6890, "198.51.100.0/24"),
    (6890, "203.0.113.0/24"),
    (6890, "240.0.0.0/4"),
    (6890, "255.255.255.255/32"),
    (6890, "::1/128"),
    (6890, "::/128"),
    (6890, "64:ff9b::/96"),
    (6890, "::ffff:0:0/96"),
    (6890, "100::/64"),
    (6890, "2001::/16"),
    (6890, "2001:2::/48"),
    (6890, "2001:db8::/32"),
    (6890, "2001:10::/28"),
    (6890, "2002::/16"),
    (6890, "fc00::/7"),
    (6890, "fe80::/10"),
    (7335, "192.0.0.0/29"),
];

/// The networks a router does not forward (go-sockaddr's
/// `ForwardingBlacklist`, taken from RFC 6890's tables).
const NOT_FORWARDABLE: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "::/128",
    "::ffff:0:0/96",
    "2001::/23",
    "2001:db8::/32",
    "2001:10::/28",
    "fe80::/10",
];

/// `network` written `ip/prefix`, or a bare address (a host network).
fn parse_network(network: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = match network.split_once('/') {
        Some((ip, prefix)) => (ip.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
        None => (network.parse::<IpAddr>().ok()?, None),
    };
    let width = u8::try_from(width(ip)).ok()?;
    let prefix = prefix.unwrap_or(width);
    (prefix <= width).then_some((ip, prefix))
}

fn in_networks<'n>(mut networks: impl Iterator<Item = &'n str>, a: &IfAddr) -> bool {
    networks.any(|n| parse_network(n).is_some_and(|(ip, prefix)| contains(ip, prefix, a)))
}

fn is_forwardable(a: &IfAddr) -> bool {
    !in_networks(NOT_FORWARDABLE.iter().copied(), a)
}

/// Whether `a` lies in one of the networks of RFC `rfc`.
fn in_rfc(rfc: u32, a: &IfAddr) -> bool {
    in_networks(
        RFC_NETWORKS
            .iter()
            .filter(|(n, _)| *n == rfc)
            .map(|(_, network)| *network),
        a,
    )
}

/// Go's `net.IP` classifications the `flag` selector tests.
fn is_link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x02,
    }
}

fn is_interface_local_multicast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x01)
}

fn is_global_unicast(ip: IpAddr) -> bool {
    ip != IpAddr::V4(Ipv4Addr::BROADCAST)
        && !ip.is_unspecified()
        && !ip.is_loopback()
        && !ip.is_multicast()
        && !is_link_local_unicast(ip)
}

/// The addresses `selector` `param` matches, then those it does not
/// (go-sockaddr's `IfBy*` functions behind `include` and `exclude`).
pub(super) fn partition(
    selector: &str,
    param: &str,
    addrs: &[IfAddr],
) -> Result<(Vec<IfAddr>, Vec<IfAddr>)> {
    let by = |test: &dyn Fn(&IfAddr) -> bool| -> (Vec<IfAddr>, Vec<IfAddr>) {
        addrs.iter().cloned().partition(|a| test(a))
    };
    Ok(match selector.to_lowercase().as_str() {
        "address" => {
            let re = compile("address", param)?;
            by(&|a| re.is_match(&string(a)))
        }
        "flag" | "flags" => by_flags(param, addrs)?,
        "name" => {
            let re = compile("name", param)?;
            by(&|a| re.is_match(&a.name))
        }
        "network" => by_network(param, addrs)?,
        "port" => {
            let re = compile("port", param)?;
            by(&|_| re.is_match("0"))
        }
        "rfc" | "rfcs" => by_rfcs(param, addrs)?,
        "size" => {
            let size: u8 = param.parse().map_err(|e| {
                format!("invalid exclude size argument ({param:?}): strconv.ParseUint: parsing {param:?}: {e}")
            })?;
            if let Some(a) = addrs.iter().find(|a| u32::from(size) > width(a.ip)) {
                return Err(format!(
                    "mask size out of bounds for {} address: {size}",
                    type_name(a)
                ));
            }
            by(&|a| a.prefix == size)
        }
        "type" => by_type(param, addrs)?,
        _ => return Err(format!("invalid selector {selector:?}")),
    })
}

/// The `flag` selector: interface flags that must all be set, address
/// classes of which one must hold; an address passes either test.
fn by_flags(param: &str, addrs: &[IfAddr]) -> Result<(Vec<IfAddr>, Vec<IfAddr>)> {
    let mut want: Option<Flags> = None;
    let mut classes: Vec<fn(&IfAddr) -> bool> = Vec::new();
    let require = |flags: &mut Option<Flags>, f: Flags| {
        *flags = Some(flags.unwrap_or_default().with(f));
    };
    for name in param.to_lowercase().split('|') {
        match name {
            "broadcast" => require(&mut want, Flags::BROADCAST),
            // go-sockaddr clears `up` from the wanted flags, which then
            // every interface has.
            "down" => want = Some(want.unwrap_or_default().without(Flags::UP)),
            "forwardable" => classes.push(is_forwardable),
            "global unicast" => classes.push(|a| is_global_unicast(a.ip)),
            "interface-local multicast" => classes.push(|a| is_interface_local_multicast(a.ip)),
            "link-local multicast" => classes.push(|a| is_link_local_multicast(a.ip)),
            "link-local unicast" => classes.push(|a| is_link_local_unicast(a.ip)),
            "loopback" => {
                require(&mut want, Flags::LOOPBACK);
                classes.push(|a| a.ip.is_loopback());
            }
            "multicast" => {
                require(&mut want, Flags::MULTICAST);
                classes.push(|a| a.ip.is_multicast());
            }
            "point-to-point" => require(&mut want, Flags::POINT_TO_POINT),
            "unspecified" => classes.push(|a| a.ip.is_unspecified()),
            "up" => require(&mut want, Flags::UP),
            _ => return Err(format!("Unknown interface flag: {name:?}")),
        }
    }
    Ok(addrs.iter().cloned().partition(|a| {
        want.is_some_and(|w| a.flags.contains(w)) || classes.iter().any(|class| class(a))
    }))
}

fn by_network(param: &str, addrs: &[IfAddr]) -> Result<(Vec<IfAddr>, Vec<IfAddr>)> {
    let (mut included, mut excluded) = (Vec::new(), Vec::new());
    for network in param.split('|') {
        let (ip, prefix) = parse_network(network)
            .ok_or_else(|| format!("unable to create an IP address from {network:?}"))?;
        for a in addrs {
            if contains(ip, prefix, a) {
                included.push(a.clone());
            } else {
                excluded.push(a.clone());
            }
        }
    }
    Ok((included, excluded))
}

fn by_rfcs(param: &str, addrs: &[IfAddr]) -> Result<(Vec<IfAddr>, Vec<IfAddr>)> {
    let (mut included, mut excluded) = (Vec::new(), Vec::new());
    for rfc in param.split('|') {
        let number: u32 = rfc
            .parse()
            .map_err(|_| format!("unable to lookup RFC number {rfc:?}"))?;
        if !RFC_NETWORKS.iter().any(|(n, _)| *n == number) {
            return Err(format!(
                "unable to lookup RFC number {rfc:?}: unsupported RFC {number}"
            ));
        }
        let (i, e): (Vec<IfAddr>, Vec<IfAddr>) =
            addrs.iter().cloned().partition(|a| in_rfc(number, a));
        included.extend(i);
        excluded.extend(e);
    }
    Ok((included, excluded))
}

fn by_type(param: &str, addrs: &[IfAddr]) -> Result<(Vec<IfAddr>, Vec<IfAddr>)> {
    let types: Vec<String> = param.to_lowercase().split('|').map(str::to_owned).collect();
    if let Some(bad) = types
        .iter()
        .find(|t| !matches!(t.as_str(), "ip" | "ipv4" | "ipv6" | "unix"))
    {
        return Err(format!("unsupported type {bad:?} {param:?}"));
    }
    let (mut matched, mut remaining) = (Vec::new(), Vec::new());
    // go-sockaddr weighs each address once per listed type.
    for a in addrs {
        for t in &types {
            let hit = match t.as_str() {
                "ip" => true,
                "ipv4" => a.ip.is_ipv4(),
                "ipv6" => a.ip.is_ipv6(),
                _ => false,
            };
            if hit {
                matched.push(a.clone());
            } else {
                remaining.push(a.clone());
            }
        }
    }
    Ok((matched, remaining))
}

/// What a sort clause compares.
#[derive(Debug, Clone)]
pub(super) enum Key {
    Address,
    /// Addresses on the named default-route interface first.
    Default(Option<String>),
    Name,
    Port,
    Private,
    Size,
    Type,
}

/// A sort clause: a key, ascending or descending.
#[derive(Debug, Clone)]
pub(super) enum Order {
    Asc(Key),
    Desc(Key),
}

/// `sort "clause,..."`: the clauses of go-sockaddr's `SortIfBy`.
pub(super) fn parse_sort(param: &str) -> Result<Vec<Order>> {
    param
        .split(',')
        .map(|clause| {
            let c = clause.trim().to_lowercase();
            let (desc, name) = match c.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, c.strip_prefix('+').unwrap_or(&c)),
            };
            let key = match name {
                "address" => Key::Address,
                "default" => Key::Default(default_interface_name().ok()),
                "name" => Key::Name,
                "port" => Key::Port,
                "private" => Key::Private,
                "size" => Key::Size,
                "type" => Key::Type,
                _ => return Err(format!("unknown sort type: {clause:?}")),
            };
            Ok(if desc {
                Order::Desc(key)
            } else {
                Order::Asc(key)
            })
        })
        .collect()
}

/// Sorts `addrs` by the clauses as Go's `sort.Sort` sorts a machine's few
/// addresses: by insertion, so that ties keep their order and clauses
/// that order only some pairs (`address` across families) act the same.
pub(super) fn sort_by(addrs: &mut [IfAddr], orders: &[Order]) {
    let less = |a: &IfAddr, b: &IfAddr| {
        orders
            .iter()
            .map(|order| match order {
                Order::Asc(key) => compare(key, a, b),
                Order::Desc(key) => compare(key, a, b).reverse(),
            })
            .find(|o| o.is_ne())
            == Some(Ordering::Less)
    };
    for i in 1..addrs.len() {
        let mut j = i;
        while j > 0 && less(&addrs[j], &addrs[j - 1]) {
            addrs.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn compare(key: &Key, a: &IfAddr, b: &IfAddr) -> Ordering {
    let same_family = a.ip.is_ipv4() == b.ip.is_ipv4();
    match key {
        Key::Address if same_family => bits(a.ip).cmp(&bits(b.ip)),
        Key::Default(Some(name)) => (b.name == *name).cmp(&(a.name == *name)),
        Key::Name => a.name.cmp(&b.name),
        Key::Private => {
            let (pa, pb) = (in_rfc(6890, a), in_rfc(6890, b));
            if same_family {
                pb.cmp(&pa)
            } else if pa {
                Ordering::Less
            } else {
                Ordering::Equal
            }
        }
        Key::Size if same_family => a.prefix.cmp(&b.prefix),
        Key::Type => a.ip.is_ipv6().cmp(&b.ip.is_ipv6()),
        _ => Ordering::Equal,
    }
}

/// `unique "address"|"name"`: drops an address equal to the one before it.
pub(super) fn unique(selector: &str, addrs: &[IfAddr]) -> Result<Vec<IfAddr>> {
    let key: fn(&IfAddr) -> String = match selector.to_lowercase().as_str() {
        "address" => string,
        "name" => |a: &IfAddr| a.name.clone(),
        _ => return Err(format!("unsupported unique constraint {selector:?}")),
    };
    let mut out: Vec<IfAddr> = Vec::new();
    let mut last = String::new();
    for a in addrs {
        let k = key(a);
        if last.is_empty() || last != k {
            last = k;
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// `offset n`: drops the first `n` addresses, or keeps the last `-n`.
pub(super) fn offset(n: i64, addrs: &[IfAddr]) -> Result<Vec<IfAddr>> {
    let off = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if off > addrs.len() {
        return Err(format!(
            "unable to seek past the end of the interface array: offset ({off}) exceeds the number of interfaces ({})",
            addrs.len()
        ));
    }
    Ok(if n < 0 {
        addrs[addrs.len() - off..].to_vec()
    } else {
        addrs[off..].to_vec()
    })
}

/// `math "address" "+n"`: every address moved by `n`, wrapping within its
/// family; the network stays.
pub(super) fn math(operation: &str, value: &str, addrs: &[IfAddr]) -> Result<Vec<IfAddr>> {
    if !operation.eq_ignore_ascii_case("address") {
        return Err(format!("unsupported math operation: {operation:?}"));
    }
    if !value.trim_start().starts_with(['+', '-']) {
        return Err(format!(
            "sign (+/-) is required for operation {operation:?}"
        ));
    }
    let delta: i128 = value.parse().map_err(|e| {
        format!("unable to convert {value:?} to int for operation {operation:?}: {e}")
    })?;
    Ok(addrs
        .iter()
        .map(|a| IfAddr {
            ip: from_bits(a.ip, bits(a.ip).wrapping_add_signed(delta) & all_of(a.ip)),
            ..a.clone()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(in super::super) fn mk_addr(name: &str, index: u32, flags: Flags, cidr: &str) -> IfAddr {
        let (ip, prefix) = parse_network(cidr).expect("a network");
        IfAddr {
            name: name.to_owned(),
            index,
            flags,
            ip,
            prefix,
        }
    }

    #[test]
    fn finds_the_default_route_interface_in_the_kernel_table() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn prints_attributes_as_go_sockaddr() {
        let up = Flags::UP.with(Flags::BROADCAST).with(Flags::RUNNING);
        let v4 = mk_addr("eth0", 2, up, "10.1.2.3/20");
        let v6 = mk_addr("eth0", 2, up, "fd00::2/64");
        let shown = |a: &IfAddr, attrs: &[&str]| -> Vec<String> {
            attrs
                .iter()
                .map(|n| attr(a, n).expect("an attribute"))
                .collect()
        };
        let names = [
            "address",
            "network",
            "netmask",
            "mask_bits",
            "type",
            "string",
            "flags",
            "Name",
        ];
        assert_eq!(
            shown(&v4, &names),
            [
                "10.1.2.3",
                "10.1.0.0",
                "255.255.240.0",
                "20",
                "IPv4",
                "10.1.2.3/20",
                "up|broadcast|running",
                "eth0"
            ]
        );
        assert_eq!(
            shown(&v6, &names[..6]),
            [
                "fd00::2",
                "fd00::",
                "ffff:ffff:ffff:ffff::",
                "64",
                "IPv6",
                "fd00::2/64"
            ]
        );
        assert_eq!(
            attr(&v4, "mtu"),
            Err("unsupported attribute name \"mtu\"".to_owned())
        );
    }

    #[test]
    fn classifies_rfc_networks_and_forwarding() {
        let a = |cidr| mk_addr("x", 1, Flags::UP, cidr);
        assert!(in_rfc(1918, &a("172.20.0.5/16")));
        assert!(!in_rfc(1918, &a("172.32.0.5/16")));
        // A network wider than the RFC's is not inside it.
        assert!(!in_rfc(1918, &a("10.0.0.1/7")));
        assert!(in_rfc(6890, &a("fd00::2/64")));
        assert!(!is_forwardable(&a("127.0.0.1/8")));
        assert!(!is_forwardable(&a("fe80::1/64")));
        assert!(is_forwardable(&a("10.0.0.1/8")));
    }

    #[test]
    fn sorts_like_go_sockaddr_keeping_ties_in_order() {
        let f = Flags::UP;
        let mut addrs = vec![
            mk_addr("b", 2, f, "fd00::2/64"),
            mk_addr("b", 2, f, "10.0.0.2/24"),
            mk_addr("a", 1, f, "10.0.0.1/8"),
            mk_addr("c", 3, f, "10.0.0.3/8"),
        ];
        sort_by(&mut addrs, &parse_sort("type,-size").expect("clauses"));
        let order: Vec<String> = addrs.iter().map(string).collect();
        assert_eq!(
            order,
            ["10.0.0.2/24", "10.0.0.1/8", "10.0.0.3/8", "fd00::2/64"]
        );
        assert_eq!(
            parse_sort("size,bogus").err(),
            Some("unknown sort type: \"bogus\"".to_owned())
        );
    }

    #[test]
    fn filters_by_flags_type_and_network() {
        let addrs = vec![
            mk_addr("lo", 1, Flags::UP.with(Flags::LOOPBACK), "127.0.0.1/8"),
            mk_addr("eth0", 2, Flags::UP.with(Flags::BROADCAST), "10.0.0.2/24"),
            mk_addr("eth1", 3, Flags::BROADCAST, "192.168.1.2/24"),
        ];
        let names = |r: Result<(Vec<IfAddr>, Vec<IfAddr>)>| -> (Vec<String>, Vec<String>) {
            let (i, e) = r.expect("a filter");
            (
                i.into_iter().map(|a| a.name).collect(),
                e.into_iter().map(|a| a.name).collect(),
            )
        };
        assert_eq!(names(partition("flag", "up|broadcast", &addrs)).0, ["eth0"]);
        assert_eq!(names(partition("flags", "loopback", &addrs)).0, ["lo"]);
        assert_eq!(names(partition("flag", "forwardable", &addrs)).1, ["lo"]);
        assert_eq!(
            names(partition("type", "IPv6", &addrs)).0,
            Vec::<String>::new()
        );
        assert_eq!(
            names(partition("network", "10.0.0.0/8", &addrs)).0,
            ["eth0"]
        );
        assert_eq!(names(partition("rfc", "1918", &addrs)).0, ["eth0", "eth1"]);
        assert_eq!(
            partition("flag", "shiny", &addrs).err(),
            Some("Unknown interface flag: \"shiny\"".to_owned())
        );
        assert_eq!(
            partition("colour", "red", &addrs).err(),
            Some("invalid selector \"colour\"".to_owned())
        );
    }

    #[test]
    fn offsets_and_moves_addresses() {
        let addrs = vec![
            mk_addr("a", 1, Flags::UP, "10.0.0.255/24"),
            mk_addr("b", 2, Flags::UP, "255.255.255.255/32"),
        ];
        assert_eq!(offset(-1, &addrs).expect("in range")[0].name, "b");
        assert_eq!(offset(1, &addrs).expect("in range")[0].name, "b");
        assert!(offset(3, &addrs).is_err());
        let moved = math("address", "+1", &addrs).expect("moves");
        assert_eq!(string(&moved[0]), "10.0.1.0/24");
        assert_eq!(string(&moved[1]), "0.0.0.0");
        assert_eq!(
            math("address", "1", &addrs).err(),
            Some("sign (+/-) is required for operation \"address\"".to_owned())
        );
    }
}
