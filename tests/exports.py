"""Small Exchange Management Shell exports, written the way Export-Csv writes them."""

from __future__ import annotations

from pathlib import Path

SERVERS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"PSComputerName","RunspaceId","PSShowComputerName","Name","Fqdn","ServerRole","Site","AdminDisplayVersion","ExchangeVersion","Edition","IsExchange2007OrLater"\r\n'
    '"ex2016a.contoso.local","5b1c","False","EX2016A","ex2016a.contoso.local","Mailbox","contoso.local/Configuration/Sites/HQ","Version 15.1 (Build 2507.6)","0.1 (14.0.100.0)","Enterprise","True"\r\n'
    '"ex2016a.contoso.local","5b1c","False","EX2010A","ex2010a.contoso.local","Mailbox, ClientAccess, HubTransport","contoso.local/Configuration/Sites/HQ","Version 14.3 (Build 123.4)","0.1 (14.0.100.0)","Enterprise","True"\r\n'
    '"ex2016a.contoso.local","5b1c","False","EX03","ex03.contoso.local","None",,"Version 6.5 (Build 7638.2: Service Pack 2)","0.0 (6.5.6500.0)","Standard","False"\r\n'
)

MAILBOXES = (
    '"Identity","Name","DisplayName","Alias","PrimarySmtpAddress","UserPrincipalName","SamAccountName","ExchangeGuid","Database","ServerName","OrganizationalUnit","RecipientTypeDetails","EmailAddresses"\r\n'
    '"contoso.local/Europe/London/Tony Smith","Tony Smith","Smith, Tony","tsmith","Tony.Smith@contoso.com","tsmith@contoso.local","tsmith","5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92","MDB01","ex2010a","contoso.local/Europe/London","UserMailbox","System.Collections.ArrayList"\r\n'
    '"contoso.local/Europe/Munich/Björn Größer","Björn Größer","Größer, Björn","bgroesser","bjoern.groesser@contoso.com","bgroesser@contoso.local","bgroesser","0b7e4d21-93c6-4f0a-8b15-2e9d6c4a7f38","DB2016-01","ex2016a","contoso.local/Europe/Munich","UserMailbox","System.Collections.ArrayList"\r\n'
    '"contoso.local/Users/Kim Akers","Kim Akers","Katherine ""Kate"" Akers","kakers","kim.akers@contoso.com","kakers@contoso.local","kakers","9f1a2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b","EX03\\First Storage Group\\Mailbox Store (EX03)",,"contoso.local/Users","LegacyMailbox","System.Collections.ArrayList"\r\n'
)

# Get-MobileDeviceStatistics (2013+), en-US dates, one device partnered with two mailboxes.
DEVICES = (
    "#TYPE Deserialized.Microsoft.Exchange.Management.Tasks.MobileDeviceConfiguration\r\n"
    '"Identity","DeviceId","DeviceType","DeviceModel","DeviceOS","DeviceUserAgent","DeviceFriendlyName","DeviceImei","ClientVersion","ClientType","FirstSyncTime","LastSuccessSync","LastSyncAttemptTime","DeviceAccessState","DeviceAccessStateReason","DevicePolicyApplied","Status"\r\n'
    '"contoso.local/Europe/London/Tony Smith/ExchangeActiveSyncDevices/iPhone§ApplF17LTTCGFFG8","ApplF17LTTCGFFG8","iPhone","iPhone15C2","iOS 17.5.1 21F90","Apple-iPhone15C2/2106.90","Tony\'s iPhone, work","356938035643809","16.1","EAS","3/14/2019 9:12:44 AM","11/24/2026 4:05:07 PM","11/24/2026 4:05:07 PM","Allowed","Global","Default","DeviceOK"\r\n'
    '"contoso.local/Europe/Munich/Björn Größer/ExchangeActiveSyncDevices/REST§Outlook§5eec4e941e0748a264512fd83770d5ac","5eec4e941e0748a264512fd83770d5ac","Outlook","Outlook for iOS and Android","iOS 17.4","Outlook-iOS-Android/1.0","iPhone von Björn",,"16.1","Outlook","1/2/2024 8:00:00 AM","11/24/2026 7:30:00 AM",,"Allowed","Global","Default","DeviceOK"\r\n'
    '"contoso.local/Europe/Munich/Björn Größer/ExchangeActiveSyncDevices/iPhone§ApplF17LTTCGFFG8","ApplF17LTTCGFFG8","iPhone","iPhone15C2","iOS 17.5.1 21F90","Apple-iPhone15C2/2106.90","Tony\'s iPhone, work","356938035643809","16.1","EAS","5/1/2025 10:00:00 AM","11/20/2026 1:00:00 PM",,"Quarantined","Global","Default","DeviceOK"\r\n'
)

VDIRS = (
    '"Server","Name","Identity","InternalUrl","ExternalUrl","BasicAuthEnabled","WindowsAuthEnabled"\r\n'
    '"EX2016A","Microsoft-Server-ActiveSync (Default Web Site)","EX2016A\\Microsoft-Server-ActiveSync (Default Web Site)","https://ex2016a.contoso.local/Microsoft-Server-ActiveSync","https://mail.contoso.com/Microsoft-Server-ActiveSync","True","False"\r\n'
    '"EX2016A","Microsoft-Server-ActiveSync (Exchange Back End)","EX2016A\\Microsoft-Server-ActiveSync (Exchange Back End)","https://ex2016a.contoso.local:444/Microsoft-Server-ActiveSync",,"False","True"\r\n'
    '"EX2010A","Microsoft-Server-ActiveSync (Default Web Site)","EX2010A\\Microsoft-Server-ActiveSync (Default Web Site)","https://ex2010a.contoso.local/Microsoft-Server-ActiveSync","https://legacy.contoso.com/Microsoft-Server-ActiveSync","True","True"\r\n'
)

CERTIFICATES = (
    '"Thumbprint","Subject","Issuer","NotBefore","NotAfter","Services","Status","IsSelfSigned","FriendlyName"\r\n'
    '"9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C","CN=mail.contoso.com, O=Contoso, C=DE","CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US","1/15/2026 12:00:00 AM","1/15/2027 11:59:59 PM","IMAP, POP, IIS, SMTP","Valid","False","mail.contoso.com"\r\n'
    '"0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E","CN=EX2016A","CN=EX2016A","3/1/2021 12:00:00 AM","3/1/2026 12:00:00 AM","SMTP","Expired","True","Microsoft Exchange"\r\n'
)

MOVE_REQUESTS = (
    '"DisplayName","Alias","ExchangeGuid","Status","StatusDetail","SourceDatabase","TargetDatabase","QueuedTimestamp","CompletionTimestamp","BatchName"\r\n'
    '"Smith, Tony","tsmith","5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92","Completed","Completed","MDB01","DB2016-01","11/20/2026 9:26:00 PM","11/21/2026 1:02:00 AM","MigrationService:Batch-Q3"\r\n'
    '"Kim Akers","kakers","9f1a2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b","Failed","FailedOther","EX03\\First Storage Group\\Mailbox Store (EX03)","DB2016-01","11/20/2026 9:26:00 PM",,"MigrationService:Batch-Q3"\r\n'
)


def write(folder: Path, name: str, text: str, *, encoding: str = "utf-8-sig") -> Path:
    """Write an export as Windows PowerShell 5.1 -Encoding UTF8 does (BOM, CRLF kept)."""
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def inventory(folder: Path) -> list[Path]:
    return [
        write(folder, "devices.csv", DEVICES),
        write(folder, "mailboxes.csv", MAILBOXES),
        write(folder, "servers.csv", SERVERS, encoding="utf-16"),
    ]


# -- forests, namespaces and organisation-level exports ------------------------------------------

_CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration"
CONTOSO_CONFIG = f"CN=Contoso,{_CONFIG},DC=contoso,DC=local"
TAILSPIN_CONFIG = f"CN=Tailspin,{_CONFIG},DC=tailspin,DC=local"
TENANT_CONFIG = (
    "CN=Configuration,CN=contoso.onmicrosoft.com,CN=ConfigurationUnits,"
    "DC=EURPR05A001,DC=prod,DC=outlook,DC=com"
)

# Get-ExchangeServer of two forests: the forest from Site, from DistinguishedName (a 2003 server
# in the child domain emea.contoso.local: the DN still names the root), from Fqdn (least sure).
SERVERS_FORESTS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","Fqdn","ServerRole","Site","AdminDisplayVersion","DistinguishedName","Identity"\r\n'
    '"EX2016A","ex2016a.contoso.local","Mailbox","contoso.local/Configuration/Sites/HQ","Version 15.1 (Build 2507.6)",'
    f'"CN=EX2016A,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,{CONTOSO_CONFIG}","EX2016A"\r\n'
    '"TS2019A","ts2019a.tailspin.local","Mailbox","Tailspin.Local/Configuration/Sites/Berlin","Version 15.2 (Build 1544.4)",'
    f'"CN=TS2019A,CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,{TAILSPIN_CONFIG}","TS2019A"\r\n'
    '"EX03","ex03.emea.contoso.local","None",,"Version 6.5 (Build 7638.2: Service Pack 2)",'
    f'"CN=EX03,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,{CONTOSO_CONFIG}","EX03"\r\n'
    '"EX03B","ex03b.emea.contoso.local","None",,"Version 6.5 (Build 7638.2: Service Pack 2)",,"EX03B"\r\n'
)

# Get-ActiveSyncOrganizationSettings, on-premises (contoso.local) and the tenant's.
ORG_SETTINGS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.ActiveSyncOrganizationSettings\r\n"
    '"PSComputerName","RunspaceId","PSShowComputerName","DefaultAccessLevel","UserMailInsert","AdminMailRecipients","Name","DistinguishedName","Identity","WhenChanged","IsValid"\r\n'
    '"ex2016a.contoso.local","5b1c","False","Quarantine",,"System.Collections.ArrayList","Mobile Mailbox Settings",'
    f'"CN=Mobile Mailbox Settings,{CONTOSO_CONFIG}","Mobile Mailbox Settings","3/14/2019 9:12:44 AM","True"\r\n'
)
ORG_SETTINGS_EXO = (
    '"DefaultAccessLevel","Name","DistinguishedName","Identity"\r\n'
    f'"Allow","Mobile Mailbox Settings","CN=Mobile Mailbox Settings,{TENANT_CONFIG}","Mobile Mailbox Settings"\r\n'
)
# Select-Object DefaultAccessLevel: no DistinguishedName, the organisation must be told.
ORG_SETTINGS_NO_DN = '"DefaultAccessLevel"\r\n"Block"\r\n'

# Get-ThrottlingPolicy, 2013+: an Organization-scope policy that sets nothing inherits Global.
THROTTLING = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.ThrottlingPolicy\r\n"
    '"Name","ThrottlingPolicyScope","IsLegacyDefault","EasMaxConcurrency","EasMaxDevices","EasMaxDeviceDeletesPerMonth","DistinguishedName","Identity"\r\n'
    '"GlobalThrottlingPolicy_7d4b1c6e","Global","False","10","100","Unlimited",'
    f'"CN=GlobalThrottlingPolicy_7d4b1c6e,CN=Global Settings,{CONTOSO_CONFIG}","GlobalThrottlingPolicy_7d4b1c6e"\r\n'
    '"Contoso organisation","Organization","False",,,,'
    f'"CN=Contoso organisation,CN=Global Settings,{CONTOSO_CONFIG}","Contoso organisation"\r\n'
    '"Restricted phones","Regular","False","10","3","Unlimited",'
    f'"CN=Restricted phones,CN=Global Settings,{CONTOSO_CONFIG}","Restricted phones"\r\n'
)
# Get-ThrottlingPolicy, 2010 SP1+: the default policy is IsDefault; no DN exported.
THROTTLING_2010 = (
    '"Name","IsDefault","EasMaxConcurrency","EasMaxDevices"\r\n'
    '"DefaultThrottlingPolicy_5f0c9a3e","True","10","10"\r\n'
    '"Executives","False","20","Unlimited"\r\n'
)

# Get-MobileDeviceMailboxPolicy (2013+).
MAILBOX_POLICIES = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MobileMailboxPolicy\r\n"
    '"Name","IsDefault","AllowNonProvisionableDevices","PasswordEnabled","RequireDeviceEncryption","MinPasswordLength","AlphanumericPasswordRequired","DistinguishedName","Identity"\r\n'
    f'"Default","True","True","False","False",,"False","CN=Default,CN=Mobile Mailbox Policies,{CONTOSO_CONFIG}","Default"\r\n'
    f'"Executives","False","False","True","True","6","True","CN=Executives,CN=Mobile Mailbox Policies,{CONTOSO_CONFIG}","Executives"\r\n'
)
# Get-ActiveSyncMailboxPolicy (2010): other column names for the same facts.
ACTIVESYNC_POLICIES_2010 = (
    '"Name","IsDefaultPolicy","AllowNonProvisionableDevices","DevicePasswordEnabled","RequireDeviceEncryption","MinDevicePasswordLength","DistinguishedName"\r\n'
    f'"default","True","True","True","False","4","CN=Default,CN=Mobile Mailbox Policies,{CONTOSO_CONFIG}"\r\n'
)

# Get-OrganizationRelationship after the Hybrid Configuration Wizard, plus a partner's.
ORG_RELATIONSHIPS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.OrganizationRelationship\r\n"
    '"Name","DomainNames","FreeBusyAccessEnabled","Enabled","TargetApplicationUri","TargetAutodiscoverEpr","TargetOwaURL","DistinguishedName","Identity"\r\n'
    '"On-premises to O365 - 0b7e4d21","contoso.mail.onmicrosoft.com","True","True","outlook.com",'
    '"https://autodiscover-s.outlook.com/autodiscover/autodiscover.svc/WSSecurity",,'
    f'"CN=On-premises to O365 - 0b7e4d21,CN=Federation,{CONTOSO_CONFIG}","On-premises to O365 - 0b7e4d21"\r\n'
    '"Fabrikam","fabrikam.com;fabrikam.de","True","True","FYDIBOHF25SPDLT.fabrikam.com",'
    '"https://autodiscover.fabrikam.com/autodiscover/autodiscover.svc/WSSecurity",,'
    f'"CN=Fabrikam,CN=Federation,{CONTOSO_CONFIG}","Fabrikam"\r\n'
)
# Get-HybridConfiguration: an object exists only once the wizard ran.
HYBRID_CONFIGURATION = (
    "#TYPE Deserialized.Microsoft.Exchange.Management.Hybrid.HybridConfiguration\r\n"
    '"ClientAccessServers","ReceivingTransportServers","SendingTransportServers","OnPremisesSmartHost","Domains","Features","TlsCertificateName","ServiceInstance","Name","DistinguishedName","Identity"\r\n'
    '"System.Collections.ArrayList","System.Collections.ArrayList","System.Collections.ArrayList","mail.contoso.com",'
    '"System.Collections.ArrayList","System.Collections.ArrayList","<I>CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1<S>CN=mail.contoso.com","0","Hybrid Configuration",'
    f'"CN=Hybrid Configuration,CN=Hybrid Configuration,{CONTOSO_CONFIG}","Hybrid Configuration"\r\n'
)

# Get-AcceptedDomain: the hybrid coexistence domain is an on-premises accepted domain too.
ACCEPTED_DOMAINS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomain\r\n"
    '"Name","DomainName","DomainType","Default","AddressBookEnabled","MatchSubDomains","DistinguishedName","Identity"\r\n'
    f'"contoso.com","contoso.com","Authoritative","True","True","False","CN=contoso.com,CN=Accepted Domains,CN=Transport Settings,{CONTOSO_CONFIG}","contoso.com"\r\n'
    f'"Partner relay","Partner.Contoso.com","ExternalRelay","False","False","False","CN=Partner relay,CN=Accepted Domains,CN=Transport Settings,{CONTOSO_CONFIG}","Partner relay"\r\n'
    '"contoso.mail.onmicrosoft.com","contoso.mail.onmicrosoft.com","Authoritative","False","True","False",'
    f'"CN=contoso.mail.onmicrosoft.com,CN=Accepted Domains,CN=Transport Settings,{CONTOSO_CONFIG}","contoso.mail.onmicrosoft.com"\r\n'
)

# Get-Mailbox | Get-MailboxRegionalConfiguration through a remote session (the mailboxes of
# MAILBOXES): TimeZone is the Windows time zone id; Kim never chose one (all four $null).
REGIONAL_CONFIGURATIONS = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Storage.Management.MailboxRegionalConfiguration\r\n"
    '"PSComputerName","RunspaceId","PSShowComputerName","DateFormat","Language","DefaultFolderNameMatchingUserLanguage","TimeFormat","TimeZone","Identity","IsValid","ObjectState"\r\n'
    '"ex2016a.contoso.local","5b1c","False","dd/MM/yyyy","en-GB","False","HH:mm","GMT Standard Time","contoso.local/Europe/London/Tony Smith","True","Unchanged"\r\n'
    '"ex2016a.contoso.local","5b1c","False","dd.MM.yyyy","de-DE","True","HH:mm","W. Europe Standard Time","contoso.local/Europe/Munich/Björn Größer","True","Unchanged"\r\n'
    '"ex2016a.contoso.local","5b1c","False",,,"False",,,"contoso.local/Users/Kim Akers","True","Unchanged"\r\n'
)

# -- readiness facts (issue 15): databases, storage groups ----------------------------------------

# Get-ExchangeServer of an SBS 2008 box (Exchange 2007 SP2 on it), for the 2007 exports below.
SERVERS_2007 = (
    "#TYPE Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","Fqdn","ServerRole","Site","AdminDisplayVersion","ExchangeVersion","Edition","IsExchange2007OrLater"\r\n'
    '"EX2007A","ex2007a.contoso.local","Mailbox, ClientAccess, HubTransport","contoso.local/Configuration/Sites/HQ","Version 8.2 (Build 176.2)","0.1 (8.0.535.0)","Standard","True"\r\n'
)

# Get-MailboxDatabase -Status through a remote session (2010 and 2016), en-US: MDB01 was never
# backed up (LastFullBackup $null while Mounted says -Status was read).
MAILBOX_DATABASES = (
    "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase\r\n"
    '"PSComputerName","RunspaceId","PSShowComputerName","Name","Server","MasterServerOrAvailabilityGroup","Recovery","CircularLoggingEnabled","EdbFilePath","LogFolderPath","Mounted","BackupInProgress","LastFullBackup","LastIncrementalBackup","DatabaseSize","AdminDisplayVersion","Identity","Guid"\r\n'
    '"ex2016a.contoso.local","5b1c","False","DB2016-01","EX2016A","EX2016A","False","False","D:\\DB\\DB2016-01\\DB2016-01.edb","L:\\Logs\\DB2016-01","True","False","11/23/2026 10:00:12 PM","11/24/2026 4:00:03 AM","212.4 GB (228,063,870,976 bytes)","Version 15.1 (Build 2507.6)","DB2016-01","3c8d2f10-6a4b-4e5c-9d7e-0f1a2b3c4d5e"\r\n'
    '"ex2016a.contoso.local","5b1c","False","MDB01","EX2010A","EX2010A","False","True","E:\\MDB01\\MDB01.edb","E:\\MDB01","True","False",,,"88.02 GB (94,511,579,136 bytes)","Version 14.3 (Build 123.4)","MDB01","7a1b9c0d-2e3f-4a5b-8c6d-9e0f1a2b3c4d"\r\n'
)

# Get-MailboxDatabase -Status in the Exchange 2007 shell of an SBS 2008 server, exported with
# -UseCulture on de-DE (';', dd.MM.yyyy); no CircularLoggingEnabled: a storage-group property.
MAILBOX_DATABASES_2007 = (
    "#TYPE Microsoft.Exchange.Data.Directory.SystemConfiguration.MailboxDatabase\r\n"
    '"Name";"Server";"ServerName";"StorageGroup";"StorageGroupName";"Mounted";"BackupInProgress";"LastFullBackup";"EdbFilePath";"Identity"\r\n'
    '"Mailbox Database";"EX2007A";"EX2007A";"EX2007A\\First Storage Group";"First Storage Group";"True";"False";"22.11.2026 23:15:40";"C:\\Program Files\\Microsoft\\Exchange Server\\Mailbox\\First Storage Group\\Mailbox Database.edb";"EX2007A\\First Storage Group\\Mailbox Database"\r\n'
    '"Archive";"EX2007A";"EX2007A";"EX2007A\\Second Storage Group";"Second Storage Group";"True";"False";;"D:\\Archive\\Archive.edb";"EX2007A\\Second Storage Group\\Archive"\r\n'
)

# Get-StorageGroup (Exchange 2007), local shell: SBS 2008 turned circular logging on in the
# first group and nobody ran its backup wizard.
STORAGE_GROUPS = (
    "#TYPE Microsoft.Exchange.Data.Directory.SystemConfiguration.StorageGroup\r\n"
    '"Name","Server","ServerName","LogFolderPath","SystemFolderPath","CircularLoggingEnabled","ZeroDatabasePages","LogFilePrefix","Recovery","Identity"\r\n'
    '"First Storage Group","EX2007A","EX2007A","C:\\Program Files\\Microsoft\\Exchange Server\\Mailbox\\First Storage Group","C:\\Program Files\\Microsoft\\Exchange Server\\Mailbox\\First Storage Group","True","False","E00","False","EX2007A\\First Storage Group"\r\n'
    '"Second Storage Group","EX2007A","EX2007A","D:\\Logs\\Second Storage Group","D:\\Logs\\Second Storage Group","False","False","E01","False","EX2007A\\Second Storage Group"\r\n'
)


# -- stale marking (issue 16 point 3) ------------------------------------------------------------


def device_export(partnerships: list[tuple[str, str]]) -> str:
    """A Get-MobileDeviceStatistics export (DEVICES' header) of one iPhone per (mailbox
    Identity, DeviceId) pair: to list exactly the partnerships a test means."""
    header = "".join(DEVICES.splitlines(keepends=True)[:2])
    rows = "".join(
        f'"{identity}/ExchangeActiveSyncDevices/iPhone§{device_id}","{device_id}","iPhone",'
        '"iPhone15C2","iOS 17.5.1 21F90","Apple-iPhone15C2/2106.90","iPhone",,"16.1","EAS",'
        '"3/14/2019 9:12:44 AM","11/24/2026 4:05:07 PM","11/24/2026 4:05:07 PM","Allowed",'
        '"Global","Default","DeviceOK"\r\n'
        for identity, device_id in partnerships
    )
    return header + rows


# -- community scripts' device reports (issue 16 point 5; devices/importers/community.py) -----
# Column names as each script writes them; values realistic for the MAILBOXES above, plus
# COMMUNITY_MAILBOXES: two people who share the display name "Alex Wilber".

COMMUNITY_MAILBOXES = (
    '"Identity","Name","DisplayName","Alias","PrimarySmtpAddress","UserPrincipalName","SamAccountName","ExchangeGuid","Database","ServerName","OrganizationalUnit","RecipientTypeDetails"\r\n'
    '"contoso.local/Sales/Alex Wilber","Alex Wilber","Alex Wilber","awilber","alex.wilber@contoso.com","awilber@contoso.local","awilber","3c8e1f4a-6b2d-4e7f-9a1c-5d0b7e2f8a41","DB2016-01","ex2016a","contoso.local/Sales","UserMailbox"\r\n'
    '"contoso.local/Support/Alex Wilber2","Alex Wilber2","Alex Wilber","awilber2","alex.wilber2@contoso.com","awilber2@contoso.local","awilber2","d41f7b0e-2c9a-4b53-8e6d-1a7c3f9e0b25","DB2016-01","ex2016a","contoso.local/Support","UserMailbox"\r\n'
)

# cunninghamp/Get-EASDeviceReport.ps1 (Export-Csv -NoTypeInformation -Encoding UTF8).
EAS_DEVICE_REPORT = (
    '"Display Name","Email Address","Sync Age (Days)","DeviceID","DeviceAccessState","DeviceAccessStateReason","DeviceModel","DeviceType","DeviceFriendlyName","DeviceOS","LastSyncAttemptTime","LastSuccessSync"\r\n'
    '"Smith, Tony","Tony.Smith@contoso.com","0","ApplF17LTTCGFFG8","Allowed","Global","iPhone15C2","iPhone","Tony\'s iPhone","iOS 17.5.1 21F90","11/24/2026 4:05:07 PM","11/24/2026 4:05:07 PM"\r\n'
    '"Alex Wilber","alex.wilber2@contoso.com","12","SEC1A2B3C4D5E6F7","Allowed","DeviceRule","SM-G991B","SAMSUNGSMG991B","Galaxy S21","Android 13","11/12/2026 8:15:00 AM","11/12/2026 8:15:00 AM"\r\n'
)

# JeremyTBradshaw/PowerShell Get-MDevStats.ps1 -All | Export-Csv -NTI -Encoding UTF8.
MDEVSTATS = (
    '"UserDisplayName","LastSuccessSync","DeviceAccessState","DeviceAccessStateReason","Status","DeviceModel","DeviceImei","DevicePhoneNumber","DeviceOS","DeviceType","DeviceID","DeviceUserAgent","DeviceFriendlyName","DeviceMobileOperator","DevicePolicyApplied","DevicePolicyApplicationStatus","LastDeviceWipeRequestor","ClientVersion","NumberOfFoldersSynced","ClientType","Guid","UserGuid","UserUPN"\r\n'
    '"Alex Wilber","11/23/2026 6:40:12 PM","Allowed","Global","DeviceOK","iPhone14C5",,,"iOS 16.6 20G75","iPhone","C39XK2ABCDEF","Apple-iPhone14C5/2006.75","Alex\'s iPhone","Contoso Mobile","Default","AppliedInFull",,"16.1","5","EAS","7e2d9c41-0b3a-4f6e-8d15-2a9c7b4e6f03","a4b1c2d3-e5f6-4a7b-8c9d-0e1f2a3b4c5d","awilber@contoso.local"\r\n'
)

# 12Knocksinna/Office365itpros Report-MobileDevices.PS1 ($Report | Export-CSV -NoTypeInformation).
O365ITPROS_MOBILE_DEVICES = (
    '"DeviceId","DeviceOS","Model","UA","User","UPN","FirstSync","DaysSinceFirstSync","LastSync","DaysSinceLastSync","SyncStatus","Status","Policy","State","LastPolicy"\r\n'
    '"5eec4e941e0748a264512fd83770d5ac","iOS 17.4","Outlook for iOS and Android","Outlook-iOS-Android/1.0","Alex Wilber","awilber2@contoso.local","1/2/2024 8:00:00 AM","1057","11/24/2026 7:30:00 AM","0","OK","DeviceOK","Default","Allowed","11/1/2026 9:00:00 AM"\r\n'
)

# michevnew/PowerShell Mobile_devices_inventoryV2.ps1 (-UseCulture: ';' in de-DE; dd.MM.yyyy).
MICHEV_MOBILE_DEVICES = (
    '"FriendlyName";"UserDisplayName";"DeviceId";"DeviceOS";"DeviceType";"DeviceUserAgent";"DeviceModel";"DistinguishedName";"Identity";"OrganizationId";"FirstSyncTime";"DeviceAccessState";"DeviceAccessStateReason";"DeviceAccessControlRule";"ClientType";"LastSuccessSync";"Status";"DevicePolicyApplied";"DevicePolicyApplicationStatus";"UserPrincipalName";"PrimarySmtpAddress"\r\n'
    '"iPhone von Björn";"Größer, Björn";"ApplDNPX12345678";"iOS 17.5.1 21F90";"iPhone";"Apple-iPhone16C1/2106.90";"iPhone16C1";"CN=iPhone§ApplDNPX12345678,CN=ExchangeActiveSyncDevices,CN=bgroesser,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,DC=prod,DC=outlook,DC=com";"bgroesser\\ExchangeActiveSyncDevices\\iPhone§ApplDNPX12345678";"EURPR01A001.prod.outlook.com/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com - EURPR01A001.prod.outlook.com/ConfigurationUnits/contoso.onmicrosoft.com/Configuration";"02.03.2025 09:14:00";"Allowed";"Global";;"EAS";"Never";"DeviceOK";"Default";"AppliedInFull";"bgroesser@contoso.local";"bjoern.groesser@contoso.com"\r\n'
    '"Alex\'s Pixel";"Alex Wilber";"androidc1234567890";"Android 14";"Android";"Android-Mail/2024.05";"Pixel 8";"CN=Android§androidc1234567890,CN=ExchangeActiveSyncDevices,CN=awilber,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,DC=prod,DC=outlook,DC=com";"awilber\\ExchangeActiveSyncDevices\\Android§androidc1234567890";"EURPR01A001.prod.outlook.com/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com - EURPR01A001.prod.outlook.com/ConfigurationUnits/contoso.onmicrosoft.com/Configuration";"15.06.2025 17:02:11";"Allowed";"Global";;"EAS";"23.11.2026 18:40:12";"DeviceOK";"Default";"AppliedInFull";"awilber@contoso.local";"alex.wilber@contoso.com"\r\n'
)

# garrint/Activesync-Device-report EXO_MobileDevice_Inventory_3.6.ps1 (export-csv -notypeinformation:
# ASCII in Windows PowerShell 5.1, so RemovalId has '?' where '§' was).
EXO_MOBILE_DEVICE_INVENTORY = (
    '"DisplayName","User","UserId","PrimarySMTPAddress","FriendlyName","UserAgent","FirstSyncTime","LastPolicyUpdate","DeviceOS","ClientProtocolVersion","ClientType","DeviceModel","DeviceId","AccessState","AccessReason","ActivesyncSuppressReadReceipt","ActivesyncDebugLogging","Managed","DistinguishedName","RemovalId"\r\n'
    '"Kim Akers","kakers","kakers","kim.akers@contoso.com","Kim\'s iPad","Apple-iPad13C1/2106.90","4/2/2025 11:20:31 AM","11/20/2026 3:10:00 PM","iOS 17.5.1 21F90","16.1","EAS","iPad13C1","DMPXK9ABCDEF","Allowed","Global","False","False","False","CN=kakers,OU=contoso.onmicrosoft.com,OU=Microsoft Exchange Hosted Organizations,DC=EURPR01A001,DC=prod,DC=outlook,DC=com","kakers\\ExchangeActiveSyncDevices\\iPad?DMPXK9ABCDEF"\r\n'
)

# A shape exsync does not know: an MDM console's export, mapped by an admin into a profile.
MDM_EXPORT = (
    '"Handset","Owner","Owner mailbox GUID","Platform","Protocol","Enrolled"\r\n'
    '"HTC-0042-AB","Smith, Tony","5f0c9a3e-2b7d-4c11-9e8a-7d4b1c6e0f92","Android 12","14.1","3/14/2024 9:12:44 AM"\r\n'
    '"HTC-0077-CD","Alex Wilber","3c8e1f4a-6b2d-4e7f-9a1c-5d0b7e2f8a41","Android 13","16.1","5/2/2024 10:00:00 AM"\r\n'
)
