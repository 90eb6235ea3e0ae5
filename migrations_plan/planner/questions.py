"""The facts a prediction may be missing, as questions: what is missing, where it is answered.

A reason that cannot be decided (outcome `unknown`) or that could not be checked (a warning)
names one of these questions. The planner never guesses the answer; ranges.py evaluates the
planner under each value a question can take, and the batch page lists the open questions
ranked by how many devices each would decide. `where` is a place key the web layer turns into
a link (Organisation -> Namespaces, Client profiles, Servers, Imports).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUESTIONS", "Question"]


@dataclass(frozen=True)
class Question:
    id: str
    fact: str  # what is missing, as a noun phrase
    where: str  # place key: namespaces, client-profiles, servers, organisation, imports
    how: str  # how to answer it, one sentence

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "fact": self.fact, "where": self.where, "how": self.how}


_Q = (
    Question(
        "namespace",
        "which EAS host name the phones use",
        "namespaces",
        "Record it on Organisation → Namespaces: mark the host name phones are configured "
        "with (and the servers that answer it).",
    ),
    Question(
        "target-external-url",
        "whether the target site publishes an EAS ExternalUrl",
        "imports",
        "Import Get-ActiveSyncVirtualDirectory | Export-Csv for the target site's servers "
        "(an imported directory without ExternalUrl means the site proxies).",
    ),
    Question(
        "device-eas",
        "the device's EAS protocol version",
        "imports",
        "Import Get-MobileDeviceStatistics / Get-MobileDevice (ClientVersion, 2013 and later) "
        "or Get-ActiveSyncDeviceStatistics (DeviceActiveSyncVersion, 2007/2010).",
    ),
    Question(
        "front-end-build",
        "the exact build (rollup) of the server answering the phone",
        "servers",
        "Record the ExSetup.exe file version (Get-Command ExSetup | fl FileVersion) on "
        "Organisation → Servers; 2007/2010 AdminDisplayVersion shows only the service pack.",
    ),
    Question(
        "server-version",
        "a server's Exchange version",
        "imports",
        "Import Get-ExchangeServer | Export-Csv (Name, AdminDisplayVersion).",
    ),
    Question(
        "site",
        "the AD sites of the source and target servers",
        "imports",
        "Import Get-ExchangeServer | Export-Csv with its Site column.",
    ),
    Question(
        "forest",
        "the forest of a server (a move to another forest must be re-created)",
        "servers",
        "Import Get-ExchangeServer | Export-Csv with Site or DistinguishedName, or declare the "
        "server's forest on Organisation → Servers.",
    ),
    Question(
        "hybrid",
        "whether hybrid is configured (an organisation relationship to Exchange Online)",
        "organisation",
        "Import Get-OrganizationRelationship or Get-HybridConfiguration, or record it on "
        "Organisation.",
    ),
    Question(
        "device-capability",
        "the highest EAS version the device can speak",
        "client-profiles",
        "Record it in a client profile for this model on Organisation → Client profiles, or "
        "import Get-MobileDevice from a 2016 or later server (which offers 16.1).",
    ),
    Question(
        "modern-auth",
        "whether the mail app supports modern authentication",
        "client-profiles",
        "Record it in a client profile for this model on Organisation → Client profiles.",
    ),
    Question(
        "honours-451",
        "whether the mail app follows an HTTP 451 redirect",
        "client-profiles",
        "Test one device of this model and record the result in a client profile.",
    ),
    Question(
        "certificate",
        "the certificate on the host name the phones use",
        "imports",
        "Import Get-ExchangeCertificate | Export-Csv (with a Server column, or --server) for "
        "the servers answering the host name.",
    ),
    Question(
        "hybrid-server",
        "which on-premises server is the hybrid server",
        "organisation",
        "Record the server the Hybrid Configuration Wizard configured as the hybrid server of "
        "the source organisation on Organisation (exsync does not guess it from the versions).",
    ),
    Question(
        "iwa-2003",
        "Integrated Windows Authentication on the 2003 Microsoft-Server-ActiveSync directory",
        "servers",
        "Check IIS on the 2003 server and record IWA on Organisation → Servers.",
    ),
    Question(
        "default-access",
        "the target organisation's DefaultAccessLevel",
        "organisation",
        "Import Get-ActiveSyncOrganizationSettings | Export-Csv, or record it on Organisation.",
    ),
    Question(
        "device-allowed",
        "whether the device is already allowed on the target",
        "imports",
        "Import Get-CASMailbox with ActiveSyncAllowedDeviceIDs and ActiveSyncBlockedDeviceIDs "
        "joined (@{n='ActiveSyncAllowedDeviceIDs';e={$_.ActiveSyncAllowedDeviceIDs -join ';'}}, "
        "the same for Blocked) for a move within the organisation, and "
        "Get-ActiveSyncDeviceAccessRule of the target organisation; if neither allows the device, "
        "pre-approve it (Set-CASMailbox -ActiveSyncAllowedDeviceIDs, or an allow rule) and "
        "import again.",
    ),
    Question(
        "policy-compliance",
        "whether the device can comply with the target mobile device policy",
        "client-profiles",
        "Record it in a client profile for this model on Organisation → Client profiles.",
    ),
    Question(
        "non-provisionable",
        "AllowNonProvisionableDevices on the target mobile device policy",
        "imports",
        "Import Get-MobileDeviceMailboxPolicy (2013+) or Get-ActiveSyncMailboxPolicy "
        "(2007/2010) | Export-Csv.",
    ),
    Question(
        "target-policy",
        "whether the target's mobile device policy asks more than the one phones have now",
        "imports",
        "Import Get-MobileDeviceMailboxPolicy (2013+) or Get-ActiveSyncMailboxPolicy "
        "(2007/2010) from both organisations, or choose the target policy on the batch.",
    ),
    Question(
        "policy-applied",
        "which mobile device policy the device applied last",
        "imports",
        "Import device statistics with DevicePolicyApplied.",
    ),
    Question(
        "partnership-count",
        "how many partnerships the user already has on the target",
        "imports",
        "Import the device statistics of the user's mailbox.",
    ),
    Question(
        "move-date",
        "the move date",
        "batch",
        "Set the batch's start.",
    ),
    Question(
        "se-cu",
        "whether the SE build is CU2 or later (build numbers not verified, Q-SE-CU)",
        "servers",
        "Check the SE cumulative update installed and retire the 2016/2019 servers first.",
    ),
    Question(
        "row",
        "a rule for this combination of versions and move kind",
        "batch",
        "Check the versions and the move kind; if they are right, the matrix needs a new row.",
    ),
    Question(
        "unsupported-path",
        "a supported path between these versions",
        "batch",
        "Check both servers' versions; move through a supported intermediate version.",
    ),
)
QUESTIONS: dict[str, Question] = {q.id: q for q in _Q}
