"""Cell values of the organisation-level exports, and which forest an object belongs to."""

from __future__ import annotations

import pytest

from devices.importers import values
from devices.importers.kinds import server_forest
from devices.importers.values import BadValue

CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration"


@pytest.mark.parametrize(
    ("site", "forest"),
    [
        ("tailspin.local/Configuration/Sites/HQ", "tailspin.local"),
        ("Contoso.Local/Configuration/Sites/Default-First-Site-Name", "contoso.local"),
        ("HQ", None),  # a bare site name: no domain part
        ("/Configuration/Sites/HQ", None),
    ],
)
def test_forest_from_site(site, forest):
    assert values.forest_from_site(site) == forest


@pytest.mark.parametrize(
    ("dn", "expected"),
    [
        (
            f"CN=EX1,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
            f"CN=Administrative Groups,CN=Contoso,{CONFIG},DC=contoso,DC=local",
            ("contoso.local", False),
        ),
        (
            f"CN=Mobile Mailbox Settings,CN=Fabrikam\\, Inc.,{CONFIG},DC=Fabrikam,DC=COM",
            ("fabrikam.com", False),
        ),
        (
            "CN=Mobile Mailbox Settings,CN=Configuration,CN=contoso.onmicrosoft.com,"
            "CN=ConfigurationUnits,DC=EURPR05A001,DC=prod,DC=outlook,DC=com",
            (None, True),
        ),
        (
            "CN=Default,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,"
            "DC=NAMPR001,DC=PROD,DC=OUTLOOK,DC=COM",
            (None, True),
        ),
        # An on-premises accepted domain named after the tenant is still on-premises.
        (
            f"CN=contoso.mail.onmicrosoft.com,CN=Accepted Domains,CN=Transport Settings,"
            f"CN=Contoso,{CONFIG},DC=contoso,DC=local",
            ("contoso.local", False),
        ),
        ("CN=Default,CN=Mobile Mailbox Policies", (None, False)),
    ],
    ids=[
        "server",
        "escaped comma",
        "tenant config unit",
        "tenant OU",
        "coexistence domain",
        "no DC",
    ],
)
def test_forest_from_distinguished_name(dn, expected):
    assert values.forest_from_dn(dn) == expected


@pytest.mark.parametrize(
    ("fqdn", "forest"),
    [
        ("ex1.contoso.local", "contoso.local"),
        ("EX1.EMEA.Contoso.Local.", "emea.contoso.local"),  # a child domain, not the root
        ("ex1", None),
    ],
)
def test_forest_from_fqdn_is_the_server_domain(fqdn, forest):
    assert values.forest_from_fqdn(fqdn) == forest


def _server(**cells):
    row = dict.fromkeys(("site", "distinguished_name", "identity", "fqdn"))
    return row | cells


def test_server_forest_prefers_site_then_dn_then_fqdn():
    dn = f"CN=EX03,CN=Servers,CN=First Administrative Group,{CONFIG},DC=contoso,DC=local"
    assert server_forest(
        _server(site="tailspin.local/Configuration/Sites/HQ", distinguished_name=dn)
    ) == ("tailspin.local", "Site")
    assert server_forest(
        _server(site=None, distinguished_name=dn, fqdn="ex03.emea.contoso.local")
    ) == ("contoso.local", "DistinguishedName")
    assert server_forest(_server(fqdn="ex03.emea.contoso.local")) == ("emea.contoso.local", "Fqdn")
    assert server_forest(_server(site="HQ")) == (None, None)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Mail.Contoso.com/Microsoft-Server-ActiveSync", "mail.contoso.com"),
        ("https://legacy.contoso.com:443/Microsoft-Server-ActiveSync", "legacy.contoso.com"),
        ("http://ex2010a/Microsoft-Server-ActiveSync", "ex2010a"),
    ],
)
def test_url_host(url, host):
    assert values.url_host(url) == host


@pytest.mark.parametrize("url", ["mail.contoso.com", "https://", "ftp://mail.contoso.com/x"])
def test_url_host_refuses_what_is_not_a_web_url(url):
    with pytest.raises(BadValue, match="is not a URL like https://"):
        values.url_host(url)


def test_enums_in_any_case_come_back_as_exchange_spells_them():
    assert values.access_level("quarantine") == "Quarantine"
    assert values.domain_type("EXTERNALRELAY") == "ExternalRelay"
    assert values.throttling_scope("organization") == "Organization"
    with pytest.raises(BadValue, match=r"'Internal' is not a domain type \(Authoritative, "):
        values.domain_type("Internal")


def test_limits_and_domains():
    assert values.integer_or_unlimited("100") == 100
    assert values.integer_or_unlimited("unlimited") == values.UNLIMITED
    with pytest.raises(BadValue, match="is not a whole number or Unlimited"):
        values.integer_or_unlimited("-1")
    assert values.domain_name("Partner.Contoso.COM") == "partner.contoso.com"
    assert values.domain_name("*.contoso.com") == "*.contoso.com"
    with pytest.raises(BadValue, match="is not a domain name"):
        values.domain_name("contoso com")
