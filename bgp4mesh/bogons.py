"""Canonical bogon data (NLNOG BGP filter guide), kept as data so the policy
model can name it and tests can check it; templates only iterate over it."""

from ipaddress import ip_network

# Prefixes that must never be accepted from an upstream, nor any more-specific.
BOGON_PREFIXES_V4 = tuple(
    ip_network(p)
    for p in (
        "0.0.0.0/8",  # RFC 1122 "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # RFC 6598 CGN
        "127.0.0.0/8",  # RFC 1122 loopback
        "169.254.0.0/16",  # RFC 3927 link local
        "172.16.0.0/12",  # RFC 1918
        "192.0.2.0/24",  # RFC 5737 TEST-NET-1
        "192.88.99.0/24",  # RFC 7526 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # RFC 2544 benchmarking
        "198.51.100.0/24",  # RFC 5737 TEST-NET-2
        "203.0.113.0/24",  # RFC 5737 TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved
    )
)

BOGON_PREFIXES_V6 = tuple(
    ip_network(p)
    for p in (
        "::/8",
        "100::/64",  # RFC 6666 discard-only
        "2001:2::/48",  # RFC 5180 benchmarking
        "2001:10::/28",  # RFC 4843 ORCHID
        "2001:db8::/32",  # RFC 3849 documentation
        "2002::/16",  # RFC 7526 6to4
        "3ffe::/16",  # RFC 3701 old 6bone
        "3fff::/20",  # RFC 9637 documentation
        "5f00::/16",  # RFC 9602 SRv6 SIDs
        "fc00::/7",  # RFC 4193 ULA
        "fe80::/10",  # RFC 4291 link local
        "fec0::/10",  # RFC 3879 site local
        "ff00::/8",  # RFC 4291 multicast
    )
)

# ASN ranges (inclusive) that must not appear anywhere in an AS path.
BOGON_ASNS = (
    (0, 0),  # RFC 7607
    (23456, 23456),  # RFC 6793 AS_TRANS
    (64496, 64511),  # RFC 5398 documentation
    (64512, 65534),  # RFC 6996 private
    (65535, 65535),  # RFC 7300 last 16-bit
    (65536, 65551),  # RFC 5398 documentation
    (65552, 131071),  # IANA reserved
    (4200000000, 4294967294),  # RFC 6996 private
    (4294967295, 4294967295),  # RFC 7300 last 32-bit
)
